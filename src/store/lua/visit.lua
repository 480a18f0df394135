-- visit: join (idempotent) or report on a visitor's place; also the heartbeat.
-- ARGV: 1 visitor, 2 restore epoch ('' if none), 3 restore seq, 4 pre-queue score,
--       5 admit_per_minute, 6 max_active_users, 7 session ms, 8 opens_at ms (0: none),
--       9 restore max age ms, 10 join ('1': take a place if none; '0': only an
--       admission at once, so that callers without a queue cookie hold no place)
-- Returns {state, position (-1 unknown), queue_length, seq, epoch, immediate}
-- state: 1 waiting, 2 admitted, 3 scheduled, 4 paused
local v = ARGV[1]
local opens_at = tonumber(ARGV[8])
local scheduled = opens_at > now
-- One read of the room's settings: this script runs on every poll of every visitor.
local settings = redis.call('HMGET', state, 'paused', 'epoch', 'admit_per_minute', 'max_active_users', 'next_slot')
local paused = settings[1] == '1'
local epoch = settings[2]
if not epoch then
  epoch = int(now_us)
  redis.call('HSET', state, 'epoch', epoch)
end

local function answer(code, position, seq, immediate, ahead_pending)
  local length = redis.call('ZCARD', waiting) + (ahead_pending or pending())
  return {code, position, length, seq, tonumber(epoch), immediate}
end

local function start_session()
  redis.call('ZREM', revoked, v)
  redis.call('ZADD', active, now + tonumber(ARGV[7]), v)
end

local function in_line(score)
  redis.call('ZADD', seen, now, v)
  if scheduled then return answer(3, -1, score, 0) end
  local ahead = pending()
  local position = ahead + redis.call('ZRANK', waiting, v) + 1
  return answer(paused and 4 or 1, position, score, 0, ahead)
end

-- The common case first: a waiter polling.
local score = redis.call('ZSCORE', waiting, v)
if score then
  return in_line(tonumber(score))
end

-- Given a slot by a tick: claim it once it has come.
local slot = redis.call('ZSCORE', admitted, v)
if slot then
  slot = tonumber(slot)
  if slot <= now then
    redis.call('ZREM', admitted, v)
    redis.call('ZREM', seen, v)
    start_session()
    return answer(2, -1, 0, 0)
  end
  redis.call('ZADD', seen, now, v)
  local ahead = redis.call('ZCOUNT', admitted, '(' .. int(now), '(' .. int(slot))
  return answer(1, ahead + 1, 0, 0)
end

-- Already shopping (the token was lost, or this is a retried call): admitted again.
if redis.call('ZSCORE', active, v) then
  start_session()
  return answer(2, -1, 0, 0)
end

-- Joining. An open room (nobody ahead, capacity and rate budget left) lets them in at once.
local apm = tonumber(settings[3] or ARGV[5])
local capacity = tonumber(settings[4] or ARGV[6])
if not paused and not scheduled and apm > 0 and queue_length() == 0 then
  local next_slot = tonumber(settings[5] or '0')
  local used = redis.call('ZCARD', active) + redis.call('ZCARD', admitted)
  if next_slot <= now and used < capacity then
    redis.call('HSET', state, 'next_slot', string.format('%.3f', now + 60000 / apm))
    redis.call('HINCRBY', state, 'admitted_total', 1)
    start_session()
    return answer(2, -1, 0, 1)
  end
end

if ARGV[10] ~= '1' then
  return answer(scheduled and 3 or (paused and 4 or 1), -1, 0, 0)
end

local restore_seq = tonumber(ARGV[3])
if scheduled then
  score = tonumber(ARGV[4])
elseif ARGV[2] ~= '' and ARGV[2] ~= epoch and restore_seq and restore_seq * 1 >= now_us - tonumber(ARGV[9]) * 1000 then
  -- The room's data was lost since this visitor joined (new epoch): their signed cookie
  -- puts them back at their sequence.
  score = restore_seq
else
  local last = tonumber(redis.call('GET', seqkey) or '0')
  score = math.max(last + 1, now_us)
  redis.call('SET', seqkey, int(score))
end
redis.call('ZADD', waiting, int(score), v)
redis.call('HINCRBY', state, 'joins_total', 1)
return in_line(score)
