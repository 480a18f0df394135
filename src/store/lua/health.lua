-- health: one instance's sample of the room's origin traffic, added to the current
-- control window. The call that finds the window over ends it and gets the sums, the
-- room's admissions during it and the controller's state: one decision per window, by
-- whichever instance happened to end it.
-- ARGV: 1-12 the room (see prelude), 13 window ms, 14 requests, 15 errors, 16 delayed,
--       17 shed, 18 in-flight request-ms, 19.. one count per latency bucket (l1, l2, ...)
-- Returns the field names, then one row: {0} while the window goes on; else ended = 1,
--   window id, elapsed ms, requests, errors, delayed, shed, in_flight_ms, {latency counts},
--   admitted, queue_length, pinned, rate, phase, reason, health, baseline, cliff
room_epoch()
local window_ms = tonumber(ARGV[13])
local admitted_total = tonumber(redis.call('HGET', state, 'admitted_total') or '0')
local started = tonumber(redis.call('HGET', health, 'started') or '-1')
if started < 0 then
  redis.call('HSET', health, 'started', int(now), 'admitted_from', admitted_total)
  started = now
end
local counts = {'requests', 'errors', 'delayed', 'shed', 'in_flight_ms'}
for i, field in ipairs(counts) do
  if ARGV[13 + i] ~= '0' then redis.call('HINCRBY', health, field, ARGV[13 + i]) end
end
local buckets = {}
for i = 19, #ARGV do
  buckets[#buckets + 1] = 'l' .. (i - 18)
  if ARGV[i] ~= '0' then redis.call('HINCRBY', health, 'l' .. (i - 18), ARGV[i]) end
end
if now - started < window_ms then
  return {{'ended'}, 0}
end

local sums = redis.call('HMGET', health, 'window', 'requests', 'errors', 'delayed', 'shed', 'admitted_from',
  'in_flight_ms')
local latency = redis.call('HMGET', health, unpack(buckets))
for i = 1, #latency do latency[i] = tonumber(latency[i] or '0') end
local id = tonumber(sums[1] or '0') + 1
redis.call('DEL', health)
redis.call('HSET', health, 'window', id, 'started', int(now), 'admitted_from', admitted_total)
local control = redis.call('HMGET', state, 'admit_per_minute', 'adaptive_phase', 'adaptive_reason', 'origin_health',
  'adaptive_baseline', 'adaptive_cliff')
local admitted_since = admitted_total - tonumber(sums[6] or admitted_total)
return {{'ended', 'window', 'elapsed', 'requests', 'errors', 'delayed', 'shed', 'in_flight_ms', 'latency',
    'admitted', 'queue_length', 'pinned', 'rate', 'phase', 'reason', 'health', 'baseline', 'cliff'},
  1, id, now - started, tonumber(sums[2] or '0'), tonumber(sums[3] or '0'), tonumber(sums[4] or '0'),
  tonumber(sums[5] or '0'), tonumber(sums[7] or '0'), latency, math.max(admitted_since, 0), redis.call('ZCARD', waiting),
  control[1] and 1 or 0, admission_rate(ARGV[1], ARGV[12]), tonumber(control[2] or '0'),
  control[1] and 'manual' or (control[3] or 'start'), control[4] or 'unknown', tonumber(control[5] or '0'),
  tonumber(control[6] or '0')}
