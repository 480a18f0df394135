-- visit: for each visitor, join (idempotent) or report on their place; also the
-- heartbeat and the claim of an admission. Several visitors of one room per call: polls
-- that arrive together share one call (one TIME, one settings read).
-- ARGV: 1 admit_per_minute, 2 max_active_users, 3 session ms, 4 opens_at ms (0: none),
--       5 restore max age ms, then five per visitor: visitor, restore epoch ('' if none),
--       restore seq, pre-queue score, join ('1': take a place if none; '0': only an
--       admission at once, so that callers without a queue cookie hold no place)
-- Returns six integers per visitor: state, position (-1 unknown), queue_length, seq,
-- epoch, immediate; state: 1 waiting, 2 admitted, 3 scheduled, 4 paused, 5 closed
local session_ms = tonumber(ARGV[3])
local opens_at = tonumber(ARGV[4])
local max_age_us = tonumber(ARGV[5]) * 1000
local scheduled = opens_at > now
local settings = redis.call('HMGET', state, 'paused', 'epoch', 'admit_per_minute', 'max_active_users', 'closed')
local paused = settings[1] == '1'
local closed = settings[5] == '1'
local epoch = settings[2]
if not epoch then
  epoch = int(now_us)
  redis.call('HSET', state, 'epoch', epoch)
end
local apm = tonumber(settings[3] or ARGV[1])
local capacity = tonumber(settings[4] or ARGV[2])
-- Constant within this call: admissions are not added here, and claimed ones are past.
local ahead_pending = pending()
local waiting_count = redis.call('ZCARD', waiting)
local out = {}

local function answer(code, position, seq, immediate)
  local n = #out
  out[n + 1] = code
  out[n + 2] = position
  out[n + 3] = waiting_count + ahead_pending
  out[n + 4] = seq
  out[n + 5] = tonumber(epoch)
  out[n + 6] = immediate
end

local function visit(v, restore_epoch, restore_seq, prequeue_score, join)
  local function start_session()
    redis.call('ZREM', revoked, v)
    redis.call('ZADD', active, now + session_ms, v)
  end
  local function in_line(score)
    redis.call('ZADD', seen, now, v)
    if scheduled then return answer(3, -1, score, 0) end
    local position = ahead_pending + redis.call('ZRANK', waiting, v) + 1
    return answer(paused and 4 or 1, position, score, 0)
  end

  -- A closed room: those shopping go on; everyone else is told, and nothing is written.
  if closed then
    if redis.call('ZSCORE', active, v) then
      start_session()
      return answer(2, -1, 0, 0)
    end
    return answer(5, -1, 0, 0)
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
  if not paused and not scheduled and apm > 0 and waiting_count + ahead_pending == 0 then
    local next_slot = tonumber(redis.call('HGET', state, 'next_slot') or '0')
    local used = redis.call('ZCARD', active) + redis.call('ZCARD', admitted)
    if next_slot <= now and used < capacity then
      redis.call('HSET', state, 'next_slot', string.format('%.3f', now + 60000 / apm))
      redis.call('HINCRBY', state, 'admitted_total', 1)
      start_session()
      return answer(2, -1, 0, 1)
    end
  end

  if join ~= '1' then
    return answer(scheduled and 3 or (paused and 4 or 1), -1, 0, 0)
  end

  restore_seq = tonumber(restore_seq)
  if scheduled then
    score = tonumber(prequeue_score)
  elseif restore_epoch ~= '' and restore_epoch ~= epoch and restore_seq and restore_seq >= now_us - max_age_us then
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
  waiting_count = waiting_count + 1
  return in_line(score)
end

for i = 6, #ARGV, 5 do
  visit(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
end
return out
