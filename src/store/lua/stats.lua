-- stats: the room's live numbers; changes nothing.
-- ARGV: 1 admit_per_minute, 2 max_active_users, 3 the adaptive starting rate ('': fixed)
-- Returns the field names, then their values (as tick.lua, from queue_length to health).
local pinned, reason, origin_health = control_fields()
return {{'queue_length', 'active_sessions', 'admitted_unclaimed', 'admitted_total', 'joins_total', 'paused',
    'admit_per_minute', 'max_active_users', 'closed', 'epoch', 'recounting', 'pinned', 'reason', 'health', 'message'},
  redis.call('ZCARD', waiting), redis.call('ZCARD', active), redis.call('ZCARD', admitted),
  tonumber(redis.call('HGET', state, 'admitted_total') or '0'),
  tonumber(redis.call('HGET', state, 'joins_total') or '0'), is_paused() and 1 or 0,
  admission_rate(ARGV[1], ARGV[3]), effective('max_active_users', ARGV[2]), is_closed() and 1 or 0,
  tonumber(redis.call('HGET', state, 'epoch') or '0'), recounting() and 1 or 0, pinned, reason,
  origin_health, redis.call('HGET', state, 'message') or ''}
