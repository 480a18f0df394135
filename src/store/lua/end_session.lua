-- end_session: the origin revoked a session; free its capacity, refuse its tokens.
-- ARGV: 1 session id
redis.call('ZREM', active, visitor_of(ARGV[1]))
redis.call('ZADD', revoked, now, ARGV[1])
return 1
