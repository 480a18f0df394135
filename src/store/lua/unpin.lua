-- unpin: hands a pinned rate back to the controller, which goes on from the operator's
-- rate (additive increase from there, no new probing).
local pinned = redis.call('HGET', state, 'admit_per_minute')
if pinned then
  redis.call('HSET', state, 'adaptive_apm', pinned, 'adaptive_phase', 1, 'adaptive_reason', 'manual')
  redis.call('HDEL', state, 'admit_per_minute')
end
return 1
