-- tick: drop abandoned waiters, unclaimed admissions and expired sessions, then give
-- admission slots to the head of the line within the rate and the free capacity.
-- Safe when several instances tick at once: each call sees the state the last left.
-- ARGV: 1 admit_per_minute, 2 max_active_users, 3 abandon ms, 4 opens_at ms (0: none),
--       5 lookahead ms, 6 batch
-- Returns {admitted, abandoned, expired, queue_length, active, unclaimed, admitted_total,
--          paused, admit_per_minute, max_active_users, closed}
local apm = effective('admit_per_minute', ARGV[1])
local capacity = effective('max_active_users', ARGV[2])
local abandon_ms = tonumber(ARGV[3])
local opens_at = tonumber(ARGV[4])
local lookahead = tonumber(ARGV[5])
local batch = tonumber(ARGV[6])
local paused = is_paused()
local closed = is_closed()

local abandoned = 0
local stale = redis.call('ZRANGEBYSCORE', seen, '-inf', int(now - abandon_ms), 'LIMIT', 0, batch)
for _, v in ipairs(stale) do
  abandoned = abandoned + redis.call('ZREM', waiting, v) + redis.call('ZREM', admitted, v)
  redis.call('ZREM', seen, v)
end
local unclaimed = redis.call('ZRANGEBYSCORE', admitted, '-inf', int(now - abandon_ms), 'LIMIT', 0, batch)
for _, v in ipairs(unclaimed) do
  abandoned = abandoned + redis.call('ZREM', admitted, v)
  redis.call('ZREM', seen, v)
end
if abandoned > 0 then
  redis.call('HINCRBY', state, 'abandoned_total', abandoned)
end
local expired = redis.call('ZREMRANGEBYSCORE', active, '-inf', int(now))
redis.call('ZREMRANGEBYSCORE', revoked, '-inf', int(now))

-- Slots are spaced 60 s / admit_per_minute apart and never start in the past, so budget
-- left unused (empty line, full house, pause) is lost, not saved for a burst.
local admitted_now = 0
if not paused and not closed and opens_at <= now and apm > 0 then
  local free = capacity - redis.call('ZCARD', active) - redis.call('ZCARD', admitted)
  local want = math.min(free, batch)
  if want > 0 then
    local interval = 60000 / apm
    local start = math.max(tonumber(redis.call('HGET', state, 'next_slot') or '0'), now)
    local horizon = now + lookahead
    if start <= horizon then
      local n = math.min(math.floor((horizon - start) / interval) + 1, want)
      local heads = redis.call('ZRANGE', waiting, 0, n - 1)
      for i, v in ipairs(heads) do
        redis.call('ZADD', admitted, int(math.floor(start + (i - 1) * interval)), v)
        redis.call('ZREM', waiting, v)
      end
      admitted_now = #heads
      if admitted_now > 0 then
        redis.call('HSET', state, 'next_slot', string.format('%.3f', start + admitted_now * interval))
        redis.call('HINCRBY', state, 'admitted_total', admitted_now)
      end
    end
  end
end

return {admitted_now, abandoned, expired, queue_length(), redis.call('ZCARD', active),
  redis.call('ZCARD', admitted) - pending(), tonumber(redis.call('HGET', state, 'admitted_total') or '0'),
  paused and 1 or 0, apm, capacity, closed and 1 or 0}
