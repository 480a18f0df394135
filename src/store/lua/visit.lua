-- visit: for each visitor, join (idempotent) or report on their place; also the
-- heartbeat and the claim of an admission. Several visitors of one room per call: polls
-- that arrive together share one call (one TIME, one settings read).
-- ARGV: 1-12 the room (see prelude), 13 restore grace ms, 14 rejoin grace ms, 15 reclaim
--       ms (an admission claimed this recently may be claimed once more: a lost answer),
--       16 places one client may hold (0: any), then nine per visitor: visitor,
--       restore epoch ('' if none), restore seq, restore seen ms, pre-queue draw (random), join
--       ('1': take a place if none; '0': only an admission at once, so that callers
--       without a queue cookie hold no place; 'k': keep a place held, nothing new),
--       proof id ('' none: a place needs no proof of work) and when its challenge expires,
--       client ('' unknown: not counted)
-- Returns the field names, then one row per visitor: state (WAITING, ADMITTED, SCHEDULED,
-- PAUSED, CLOSED or CLAIMED, defined by the gateway), position (-1 unknown), queue_length,
-- seq, epoch, immediate, rejoined, replayed, claimed (ms of the admission's claim, 0 if
-- not admitted), capped (no place: the client holds its share), joined (this visit made
-- the place), now (ms)
local epoch = room_epoch()
local session_ms = tonumber(ARGV[3])
local abandon_ms = tonumber(ARGV[4])
local opens_at = tonumber(ARGV[5])
local restore_grace = tonumber(ARGV[13])
local rejoin_ms = tonumber(ARGV[14])
local reclaim_ms = tonumber(ARGV[15])
local max_per_client = tonumber(ARGV[16])
local scheduled = opens_at > now
local settings = redis.call('HMGET', state, 'paused', 'admit_per_minute', 'max_active_users', 'closed',
  'recount_until', 'recovered', 'adaptive_apm')
local paused = settings[1] == '1'
local closed = settings[4] == '1'
-- As admission_rate() in the prelude, from the settings read above.
local apm = tonumber(settings[2] or (ARGV[12] ~= '' and (settings[7] or ARGV[12])) or ARGV[1])
local capacity = tonumber(settings[3] or ARGV[2])
local recount = now < tonumber(settings[5] or '0')
local recovered = settings[6] == '1'
local waiting_count = redis.call('ZCARD', waiting)
local out = {{'state', 'position', 'queue_length', 'seq', 'epoch', 'immediate', 'rejoined', 'replayed', 'claimed',
  'capped', 'joined', 'now'}}

-- extra: immediate, rejoined, replayed, capped, joined (1 or nil), claimed (ms)
local function answer(code, position, seq, extra)
  extra = extra or {}
  local n = #out
  out[n + 1] = code
  out[n + 2] = position
  out[n + 3] = waiting_count
  out[n + 4] = seq
  out[n + 5] = tonumber(epoch)
  out[n + 6] = extra.immediate or 0
  out[n + 7] = extra.rejoined or 0
  out[n + 8] = extra.replayed or 0
  out[n + 9] = extra.claimed or 0
  out[n + 10] = extra.capped or 0
  out[n + 11] = extra.joined or 0
  out[n + 12] = now
end

-- A proof of work buys one place: spent here, refused the second time.
local function spend(proof, until_ms)
  if proof == '' then return true end
  if redis.call('ZSCORE', proofs, proof) then return false end
  redis.call('ZADD', proofs, until_ms, proof)
  return true
end

-- A visitor with a place in line: where it is (the heartbeat is the caller's).
local function standing_in_line(v, score, extra)
  if scheduled then return answer(SCHEDULED, -1, score, extra) end
  local position = redis.call('ZRANK', waiting, v) + 1
  return answer(paused and PAUSED or WAITING, position, score, extra)
end

local function visit(v, restore_epoch, restore_seq, restore_seen, prequeue_score, join, proof, proof_until, client)
  -- The client holds one place more (counted only where the room caps them).
  local function hold_place()
    if max_per_client > 0 and client ~= '' then
      redis.call('HINCRBY', clients, client, 1)
      redis.call('HSET', owners, v, client)
    end
  end
  -- The admission is claimed now: the session starts, and for `reclaim_ms` one more
  -- claim (an answer lost on its way) gets a token of the same session.
  local function claim(immediate)
    redis.call('ZADD', active, now + session_ms, v)
    redis.call('ZADD', claims, now, v)
    return answer(ADMITTED, -1, 0, { immediate = immediate, claimed = now })
  end
  -- Shopping already, and asking again without a token: once, shortly after the claim;
  -- after that the admission belongs to whoever claimed it.
  local function claim_again()
    local claimed = redis.call('ZSCORE', claims, v)
    if claimed and tonumber(claimed) >= now - reclaim_ms then
      redis.call('ZREM', claims, v)
      redis.call('ZADD', active, now + session_ms, v)
      return answer(ADMITTED, -1, 0, { claimed = tonumber(claimed) })
    end
    return answer(CLAIMED, -1, 0)
  end
  -- In line, heard from now: `new` for a place just (re)taken, which gets its slot.
  local function in_line(score, new, rejoined, joined)
    if not new then
      beat_held({ v }, { score })
    elseif not beat_new(score) then
      redis.call('ZADD', seen, now, v)
    end
    return standing_in_line(v, score, { rejoined = rejoined, joined = joined })
  end

  -- A closed room: those shopping go on; everyone else is told, and nothing is written.
  if closed then
    if redis.call('ZSCORE', active, v) then
      return claim_again()
    end
    return answer(CLOSED, -1, 0)
  end

  -- A waiter polling (the common case, when not found by the batch's first look: the
  -- same visitor twice in one batch, the first visit having made the place).
  local score = redis.call('ZSCORE', waiting, v)
  if score then
    return in_line(tonumber(score), false)
  end

  -- Admitted by a tick: this visit claims it.
  if redis.call('ZREM', admitted, v) == 1 then
    redis.call('ZREM', seen, v)
    return claim(0)
  end

  if redis.call('ZSCORE', active, v) then
    return claim_again()
  end

  -- Dropped for silence and back within the grace, with the cookie of that very place
  -- (not an older one): the old place again. A place left or used up is not in `dropped`.
  if join ~= '0' and restore_epoch == epoch and restore_seq ~= '' and rejoin_ms > 0 then
    local member = v .. ':' .. restore_seq
    local dropped_at = redis.call('ZSCORE', dropped, member)
    if dropped_at then
      redis.call('ZREM', dropped, member)
      if tonumber(dropped_at) >= now - rejoin_ms then
        redis.call('ZADD', waiting, restore_seq, v)
        hold_place()
        waiting_count = waiting_count + 1
        return in_line(tonumber(restore_seq), true, 1)
      end
    end
  end

  -- Coming back after the room's data was lost (new epoch), having polled until shortly
  -- before: the signed cookie puts them back at their sequence. A cookie whose place had
  -- gone quiet (left, dropped) earns nothing.
  restore_seq = tonumber(restore_seq)
  restore_seen = tonumber(restore_seen) or 0
  local restoring = join ~= '0' and not scheduled and restore_epoch ~= '' and restore_epoch ~= epoch
    and restore_seq and restore_seen >= now - abandon_ms - restore_grace

  -- Joining. An open room (nobody waiting, capacity, rate and window budget left) lets
  -- them in at once; not while the line is being recounted after a data loss, nor ahead
  -- of a line being restored.
  local quiet = not restoring and join ~= 'k' and not paused and not scheduled and not recount and apm > 0
  if quiet and waiting_count == 0 then
    local next_slot = tonumber(redis.call('HGET', state, 'next_slot') or '0')
    local used = redis.call('ZCARD', active) + redis.call('ZCARD', admitted)
    if next_slot <= now and used < capacity and window_budget(apm) >= 1 then
      if not spend(proof, proof_until) then return answer(WAITING, -1, 0, { replayed = 1 }) end
      redis.call('HSET', state, 'next_slot', string.format('%.3f', now + 60000 / apm))
      record_grant(1)
      return claim(1)
    end
  end

  local no_place = scheduled and SCHEDULED or (paused and PAUSED or WAITING)
  if join ~= '1' and not restoring then
    return answer(no_place, -1, 0)
  end
  -- A client at its share gets no place; its proof of work stays unspent.
  if not restoring and max_per_client > 0 and client ~= ''
    and tonumber(redis.call('HGET', clients, client) or '0') >= max_per_client then
    return answer(no_place, -1, 0, { capped = 1 })
  end
  if not restoring and not spend(proof, proof_until) then
    return answer(no_place, -1, 0, { replayed = 1 })
  end

  if scheduled then
    local n = redis.call('HINCRBY', state, 'prequeue_places', 1)
    if n >= PREQUEUE_SLOTS then n = 0 end
    score = PREQUEUE_FROM + (tonumber(prequeue_score) % PREQUEUE_ORDERS) * PREQUEUE_SLOTS + n
  elseif restoring then
    score = restore_seq
    if not recovered then
      start_recount()
      recovered = true
      recount = true
    end
  else
    -- Dense, so that a place's slot is its score; from the first join's µs time on, so
    -- that it stays above the places of a previous epoch.
    local last = tonumber(redis.call('GET', seqkey) or '0')
    score = last >= OPENED_FROM and last + 1 or now_us
    redis.call('SET', seqkey, int(score))
  end
  redis.call('ZADD', waiting, int(score), v)
  hold_place()
  redis.call('HINCRBY', state, 'joins_total', 1)
  waiting_count = waiting_count + 1
  return in_line(score, true, nil, 1)
end

-- The common case for the whole batch at once: waiters polling. One ZMSCORE finds them, and
-- their heartbeats take one write per chunk (see the prelude); only the others go through
-- `visit`. Another visitor's visit never moves a waiter out of line (it changes only that
-- visitor's own entries, and nobody is admitted at once while someone waits), so the
-- scores read first stay true for the whole batch.
local ids = {}
for i = 17, #ARGV, 9 do
  ids[#ids + 1] = ARGV[i]
end
local scores = {}
if not closed and #ids > 0 then
  scores = redis.call('ZMSCORE', waiting, unpack(ids))
end
local held, held_scores = {}, {}
for k, v in ipairs(ids) do
  if scores[k] then
    local score = tonumber(scores[k])
    standing_in_line(v, score, {})
    held[#held + 1] = v
    held_scores[#held_scores + 1] = score
  else
    local i = 17 + (k - 1) * 9
    visit(v, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8])
  end
end
if #held > 0 then
  beat_held(held, held_scores)
end
return out
