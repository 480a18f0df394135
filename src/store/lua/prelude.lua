-- Shared head of every anteroom script (src/store/redis.rs prepends it).
-- KEYS, all under the room's hash tag anteroom:{ROOM}:
--   1 waiting   zset visitor -> order score (join sequence, or random before opens_at)
--   2 seen      zset visitor -> last heartbeat (ms)
--   3 admitted  zset visitor -> when admitted (ms); claimed by the visitor's next visit
--   4 active    zset visitor -> session expiry (ms)
--   5 revoked   zset session id -> when revoked (ms); its tokens are refused
--   6 state     hash paused, closed, admit_per_minute, max_active_users, next_slot,
--               last_tick, window_used, epoch, recovered, recount_until, counters
--   7 seq       string: the last join sequence handed out
--   8 grants    list "ms:count" of admissions granted in the last 10 s
--   9 health    hash: the current control window's sums of the instances' samples
--               (requests, errors, delayed, shed, l1..lN latency buckets), when it
--               started, admitted_total then, and the id of the last window ended
--  10 dropped  zset "visitor:seq" -> when the place was dropped for silence (ms); the
--               visitor may take it back within the rejoin grace
--  11 proofs   zset proof-of-work id -> when its challenge expires (ms); a spent proof
--               buys no second place
--  12 claims   zset visitor -> when their admission was claimed (ms), kept for the reclaim
--               window: one more claim in it gets a token of the same session
--  13 clients  hash client (IPv4, IPv6 /64) -> places it holds in line (rooms that cap them)
--  14 owners   hash visitor -> the client whose place they hold, to count it down
-- The controller's state is in `state` too: adaptive_apm, adaptive_phase,
-- adaptive_reason, origin_health. A live admit_per_minute pins the rate.
-- ARGV 1-12 of visit, tick, renew and health describe the room (see Policy in
-- src/store/types.rs):
--   1 admit_per_minute, 2 max_active_users, 3 session ms, 4 abandon ms, 5 opens_at ms
--   (0: none), 6 recount ms, then what the calling instance remembers of the room:
--   7 epoch (0: nothing), 8 paused, 9 closed ('1'/'0'), 10 admit_per_minute override,
--   11 max_active_users override ('': none), 12 the adaptive controller's starting rate
--   ('': the room admits at a fixed rate)
local waiting, seen, admitted, active, revoked, state, seqkey, grants, health, dropped, proofs, claims =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local clients, owners = KEYS[13], KEYS[14]

-- A place in line leaves (admitted, dropped, left): its client holds one place less.
local function release_place(v)
  local client = redis.call('HGET', owners, v)
  if client then
    redis.call('HDEL', owners, v)
    if redis.call('HINCRBY', clients, client, -1) <= 0 then
      redis.call('HDEL', clients, client)
    end
  end
end

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

-- The admission rate: an operator's live override (which pins it); in an adaptive room
-- the controller's rate (`adaptive_start` until its first decision); else the configured.
local function admission_rate(configured, adaptive_start)
  local pinned = redis.call('HGET', state, 'admit_per_minute')
  if pinned then return tonumber(pinned) end
  if adaptive_start ~= '' then
    return tonumber(redis.call('HGET', state, 'adaptive_apm') or adaptive_start)
  end
  return tonumber(configured)
end

-- The controller's fields of a stats reply: pinned, reason, health.
local function control_fields()
  local c = redis.call('HMGET', state, 'admit_per_minute', 'adaptive_reason', 'origin_health')
  return c[1] and 1 or 0, c[1] and 'manual' or (c[2] or 'start'), c[3] or 'unknown'
end

local function is_paused()
  return redis.call('HGET', state, 'paused') == '1'
end

-- Closed: the sale is over; nobody new is admitted, sessions already open go on.
local function is_closed()
  return redis.call('HGET', state, 'closed') == '1'
end

local function recounting()
  return now < tonumber(redis.call('HGET', state, 'recount_until') or '0')
end

-- The store lost this room's data (or came up empty after a restart): admissions wait
-- ARGV[6] ms, while waiters come back with their signed cookies and shoppers' tokens are
-- counted again, then go on in the restored order. Once per epoch.
local function start_recount()
  redis.call('HSET', state, 'recovered', '1', 'recount_until', int(now + tonumber(ARGV[6])))
end

-- The room's epoch, made when its data is missing. If the caller knew another epoch,
-- the data was lost since: the operator's settings it remembers are put back (a paused or
-- closed room stays so) and the recount starts.
local function room_epoch()
  local epoch = redis.call('HGET', state, 'epoch')
  if not epoch then
    epoch = int(now_us)
    redis.call('HSET', state, 'epoch', epoch)
  end
  if ARGV[7] ~= '0' and ARGV[7] ~= epoch and redis.call('HGET', state, 'recovered') ~= '1' then
    if ARGV[8] == '1' then redis.call('HSET', state, 'paused', '1') end
    if ARGV[9] == '1' then redis.call('HSET', state, 'closed', '1') end
    if ARGV[10] ~= '' then redis.call('HSET', state, 'admit_per_minute', ARGV[10]) end
    if ARGV[11] ~= '' then redis.call('HSET', state, 'max_active_users', ARGV[11]) end
    start_recount()
  end
  return epoch
end

-- Admissions still allowed in the 10 s window ending now: at most ceil(apm / 6) in any
-- 10 s, counted by the time they are granted, whoever granted them.
local function window_budget(apm)
  local used = tonumber(redis.call('HGET', state, 'window_used') or '0')
  local trimmed = false
  while true do
    local head = redis.call('LINDEX', grants, 0)
    if not head then break end
    local at, n = string.match(head, '^(%d+):(%d+)$')
    if at and tonumber(at) > now - 10000 then break end
    redis.call('LPOP', grants)
    used = used - tonumber(n or '0')
    trimmed = true
  end
  if used < 0 then used = 0 end
  if trimmed then redis.call('HSET', state, 'window_used', used) end
  return math.ceil(apm / 6) - used
end

local function record_grant(n)
  redis.call('RPUSH', grants, int(now) .. ':' .. n)
  redis.call('HINCRBY', state, 'window_used', n)
  redis.call('HINCRBY', state, 'admitted_total', n)
end

-- Session ids are "visitor.start": the visitor holds the place in `active`.
local function visitor_of(session)
  return string.match(session, '^([^.]+)') or session
end
