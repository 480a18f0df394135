-- end_session: the origin revoked a session; free its capacity, refuse its renewal.
-- ARGV: 1 session, 2 revoke until ms
redis.call('ZREM', active, ARGV[1])
redis.call('ZADD', revoked, ARGV[2], ARGV[1])
return 1
