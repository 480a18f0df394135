-- leave: give up a place (one dropped for silence too, so that the cookie cannot bring it
-- back), a pending admission and the session.
-- ARGV: 1 visitor, 2 the session id of the visitor's token ('': none), 3 the sequence of
--       the place the visitor's cookie names ('': none)
local v = ARGV[1]
local score = redis.call('ZSCORE', waiting, v)
if score and beats_of({ tonumber(score) })[1] > 0 then
  beat_free(tonumber(score))
end
redis.call('ZREM', waiting, v)
redis.call('ZREM', seen, v)
redis.call('ZREM', admitted, v)
redis.call('ZREM', active, v)
redis.call('ZREM', claims, v)
release_place(v)
if ARGV[3] ~= '' then
  redis.call('ZREM', dropped, v .. ':' .. ARGV[3])
end
if ARGV[2] ~= '' then
  redis.call('ZADD', revoked, now, ARGV[2])
end
return 1
