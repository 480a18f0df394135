-- leave: give up a place, a pending admission and the session.
-- ARGV: 1 visitor (= session id), 2 revoke until ms
local v = ARGV[1]
redis.call('ZREM', waiting, v)
redis.call('ZREM', seen, v)
redis.call('ZREM', admitted, v)
if redis.call('ZREM', active, v) == 1 then
  redis.call('ZADD', revoked, ARGV[2], v)
end
return 1
