-- Shared head of every anteroom script (src/store/redis.rs prepends it).
-- KEYS, all under the room's hash tag anteroom:{ROOM}:
--   1 waiting   zset visitor -> order score (join sequence, or random before opens_at)
--   2 seen      zset visitor -> last heartbeat (ms)
--   3 admitted  zset visitor -> admission slot (ms)
--   4 active    zset session -> session expiry (ms)
--   5 revoked   zset session -> until (ms)
--   6 state     hash paused, closed, admit_per_minute, max_active_users, next_slot, epoch, counters
--   7 seq       string: the last join sequence handed out
local waiting, seen, admitted, active, revoked, state, seqkey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

-- One clock for every gateway instance: Redis's.
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now = math.floor(now_us / 1000)

-- Integers as text without Lua's exponent notation.
local function int(x)
  return string.format('%.0f', x)
end

-- A live override from the admin API, else the configured value.
local function effective(field, configured)
  local v = redis.call('HGET', state, field)
  if v then return tonumber(v) end
  return tonumber(configured)
end

local function is_paused()
  return redis.call('HGET', state, 'paused') == '1'
end

-- Closed: the sale is over; nobody new is admitted, sessions already open go on.
local function is_closed()
  return redis.call('HGET', state, 'closed') == '1'
end

-- Admissions whose slot is still ahead stand at the head of the line.
local function pending()
  return redis.call('ZCOUNT', admitted, '(' .. int(now), '+inf')
end

local function queue_length()
  return redis.call('ZCARD', waiting) + pending()
end
