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
--  15 beats    hash chunk -> places counted in it; the chunk's heartbeats are the string
--               at `beats:CHUNK` (see "Heartbeats" below)
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
local clients, owners, beats = KEYS[13], KEYS[14], KEYS[15]

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

-- Order scores, all integers below 2^53 (exact in a double and in Lua):
--   joined after the opening: a dense sequence, counting on from the µs time of the first
--     join of the room's data (so it stays above every place of lost data brought back);
--   joined before the opening (pre-queue): PREQUEUE_FROM + r * PREQUEUE_SLOTS + n, with r
--     random below 2^17 (the order) and n the n-th pre-queue place of the data (the slot;
--     0 once 2^23 - 1 are taken: those places keep their heartbeat in `seen`).
-- Scores below PREQUEUE_FROM, or between the two ranges, come from older versions.
local PREQUEUE_FROM = 2 ^ 40
local PREQUEUE_SLOTS = 2 ^ 23
local PREQUEUE_ORDERS = 2 ^ 17
local OPENED_FROM = 1e15

-- Heartbeats. A place with a slot keeps its last heartbeat (ms, 6 bytes) at that slot of
-- a string of BEAT_CHUNK slots, not in `seen` (a sorted-set entry costs about 20 times
-- that). `beats` counts each chunk's places; a chunk with none left is deleted. A beat of
-- 0 means the place keeps its heartbeat in `seen` (no slot, or placed by an older version).
local BEAT_CHUNK = 16384
local BEAT_BYTES = 6

local function slot_of(score)
  if score >= OPENED_FROM then return score end
  if score >= PREQUEUE_FROM and score < PREQUEUE_FROM + PREQUEUE_ORDERS * PREQUEUE_SLOTS then
    local n = (score - PREQUEUE_FROM) % PREQUEUE_SLOTS
    if n > 0 then return n end
  end
  return nil
end

-- A slot's chunk: its field in `beats`, its key, and the slot's index in it.
local chunk_names = {}
local function chunk_of(slot)
  local chunk = math.floor(slot / BEAT_CHUNK)
  local names = chunk_names[chunk]
  if not names then
    names = { int(chunk) }
    names[2] = beats .. ':' .. names[1]
    chunk_names[chunk] = names
  end
  return names[1], names[2], slot - chunk * BEAT_CHUNK
end

-- A new place with a slot: counted in its chunk (a new chunk is made at its full size at
-- once: Redis would grow it by doubling), its first heartbeat written. False: no slot.
local function beat_new(score)
  local slot = slot_of(score)
  if not slot then return false end
  local field, key, at = chunk_of(slot)
  if redis.call('HINCRBY', beats, field, 1) == 1 then
    redis.call('SETRANGE', key, BEAT_CHUNK * BEAT_BYTES - 1, '\0')
  end
  redis.call('BITFIELD', key, 'SET', 'u48', '#' .. at, now)
  return true
end

-- The heartbeat at byte `p` of a run of slots read with GETRANGE (big-endian, as BITFIELD
-- writes it); 0 past its end.
local function beat_at(bytes, p)
  local b1, b2, b3, b4, b5, b6 = string.byte(bytes, p, p + BEAT_BYTES - 1)
  if not b6 then return 0 end
  return ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6
end

-- The last heartbeats of places (a list of scores), 0 for those without one in a chunk.
-- Slots close together (the line after the opening is dense) are read as one range of
-- bytes; scattered ones (the pre-queue's) with BITFIELD_RO, at most 1,000 at a time.
local function beats_of(scores)
  local groups, order, out = {}, {}, {}
  for i, score in ipairs(scores) do
    out[i] = 0
    local slot = slot_of(score)
    if slot then
      local _, key, at = chunk_of(slot)
      local g = groups[key]
      if not g then
        g = { lo = at, hi = at, at = {}, index = {} }
        groups[key] = g
        order[#order + 1] = key
      end
      if at < g.lo then g.lo = at end
      if at > g.hi then g.hi = at end
      g.at[#g.at + 1] = at
      g.index[#g.index + 1] = i
    end
  end
  for _, key in ipairs(order) do
    local g = groups[key]
    if g.hi - g.lo < 4 * #g.at + 64 then
      local bytes = redis.call('GETRANGE', key, g.lo * BEAT_BYTES, (g.hi + 1) * BEAT_BYTES - 1)
      for j, at in ipairs(g.at) do
        out[g.index[j]] = beat_at(bytes, (at - g.lo) * BEAT_BYTES + 1)
      end
    else
      for from = 1, #g.at, 1000 do
        local args = {}
        for j = from, math.min(from + 999, #g.at) do
          args[#args + 1] = 'GET'
          args[#args + 1] = 'u48'
          args[#args + 1] = '#' .. g.at[j]
        end
        local got = redis.call('BITFIELD_RO', key, unpack(args))
        for j, beat in ipairs(got) do out[g.index[from + j - 1]] = beat end
      end
    end
  end
  return out
end

-- Heartbeats of places held (lists of visitors and their scores): written at their slots,
-- one call per chunk. A beat that was 0 there belongs to a place without one (placed by an
-- older version): undone, and that heartbeat goes to `seen`; a chunk the write made (no
-- place of this version in it) is deleted again.
local function beat_held(visitors, scores)
  local seen_beats = {}
  local by_chunk, order = {}, {}
  for i, score in ipairs(scores) do
    local slot = slot_of(score)
    if slot then
      local field, key, at = chunk_of(slot)
      local c = by_chunk[key]
      if not c then
        c = { field = field, args = {}, visitors = {} }
        by_chunk[key] = c
        order[#order + 1] = key
      end
      c.args[#c.args + 1] = 'SET'
      c.args[#c.args + 1] = 'u48'
      c.args[#c.args + 1] = '#' .. at
      c.args[#c.args + 1] = now
      c.visitors[#c.visitors + 1] = visitors[i]
    else
      seen_beats[#seen_beats + 1] = now
      seen_beats[#seen_beats + 1] = visitors[i]
    end
  end
  for _, key in ipairs(order) do
    local c = by_chunk[key]
    local before = redis.call('BITFIELD', key, unpack(c.args))
    local undo = {}
    for j, old in ipairs(before) do
      if old == 0 then
        undo[#undo + 1] = 'SET'
        undo[#undo + 1] = 'u48'
        undo[#undo + 1] = c.args[j * 4 - 1]
        undo[#undo + 1] = 0
        seen_beats[#seen_beats + 1] = now
        seen_beats[#seen_beats + 1] = c.visitors[j]
      end
    end
    if #undo > 0 then
      if redis.call('HEXISTS', beats, c.field) == 1 then
        redis.call('BITFIELD', key, unpack(undo))
      else
        redis.call('DEL', key)
      end
    end
  end
  if #seen_beats > 0 then
    redis.call('ZADD', seen, unpack(seen_beats))
  end
end

-- A place with a heartbeat at its slot leaves: the slot is cleared and counted out.
local function beat_free(score)
  local field, key, at = chunk_of(slot_of(score))
  if redis.call('HINCRBY', beats, field, -1) <= 0 then
    redis.call('HDEL', beats, field)
    redis.call('DEL', key)
  else
    redis.call('BITFIELD', key, 'SET', 'u48', '#' .. at, 0)
  end
end

-- When a place was last heard from (ms): its slot's heartbeat, else `seen`'s; nil if never.
local function last_beat(v, score)
  local beat = beats_of({ score })[1]
  if beat > 0 then return beat end
  local at = redis.call('ZSCORE', seen, v)
  return at and tonumber(at)
end
