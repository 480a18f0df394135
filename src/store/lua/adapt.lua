-- adapt: the controller's decision on the window just ended. Ignored when another window
-- has ended since (a late decision must not undo a newer one). While an operator pins the
-- rate only the verdict is kept; a room at a fixed rate sends no rate.
-- ARGV: 1 window id, 2 rate ('': none), 3 phase, 4 reason, 5 health, 6 latency baseline (µs),
--       7 cliff (the rate at the last hard limit crossed; 0: none)
if redis.call('HGET', health, 'window') ~= ARGV[1] then
  return 0
end
redis.call('HSET', state, 'origin_health', ARGV[5], 'adaptive_baseline', ARGV[6])
if ARGV[2] == '' or redis.call('HGET', state, 'admit_per_minute') then
  return 0
end
redis.call('HSET', state, 'adaptive_apm', ARGV[2], 'adaptive_phase', ARGV[3], 'adaptive_reason', ARGV[4],
  'adaptive_cliff', ARGV[7])
return 1
