-- tick: drop abandoned waiters, unclaimed admissions and expired sessions, then admit
-- from the head of the line within the rate, the 10 s window and the free capacity.
-- Safe when several instances tick at once: each call sees the state the last left.
-- ARGV: 1-12 the room (see prelude), 13 batch, 14 revocations already seen up to (ms),
--       15 claim ms (an admission not claimed within it goes to the next in line),
--       16 rejoin ms (a waiter dropped for silence may take the place back within it),
--       17 reclaim ms (an admission claimed within it may be claimed once more)
-- Returns the field names, then {admitted, abandoned, expired, queue_length, active,
--          unclaimed, admitted_total, joins_total, paused, admit_per_minute, max_active_users, closed,
--          epoch, recounting, pinned, reason, health, {session, revoked ms, ...}}
local epoch = room_epoch()
local apm = admission_rate(ARGV[1], ARGV[12])
local capacity = effective('max_active_users', ARGV[2])
local session_ms = tonumber(ARGV[3])
local abandon_ms = tonumber(ARGV[4])
local opens_at = tonumber(ARGV[5])
local batch = tonumber(ARGV[13])
local paused = is_paused()
local closed = is_closed()
local recount = recounting()

local rejoin_ms = tonumber(ARGV[16])
redis.call('ZREMRANGEBYSCORE', dropped, '-inf', '(' .. int(now - rejoin_ms))
-- A spent proof of work is remembered until its challenge expires; then it is worthless anyway.
redis.call('ZREMRANGEBYSCORE', proofs, '-inf', '(' .. int(now))
redis.call('ZREMRANGEBYSCORE', claims, '-inf', '(' .. int(now - tonumber(ARGV[17])))
local abandoned = 0
local cutoff = now - abandon_ms

-- A waiter silent too long leaves the line; the place is remembered for the rejoin grace.
local function drop(v, score, slotted)
  if rejoin_ms > 0 then
    redis.call('ZADD', dropped, now, v .. ':' .. int(score))
  end
  redis.call('ZREM', waiting, v)
  redis.call('ZREM', seen, v)
  if slotted then beat_free(score) end
  release_place(v)
  abandoned = abandoned + 1
end

-- Heartbeats in `seen`: places without a slot, and admissions not yet claimed.
local stale = redis.call('ZRANGEBYSCORE', seen, '-inf', int(cutoff), 'LIMIT', 0, batch)
for _, v in ipairs(stale) do
  local score = redis.call('ZSCORE', waiting, v)
  if score then
    score = tonumber(score)
    local beat = beats_of({ score })[1]
    if beat == 0 or beat <= cutoff then
      drop(v, score, beat > 0)
    else
      redis.call('ZREM', seen, v) -- it beats at its slot since
    end
  else
    abandoned = abandoned + redis.call('ZREM', admitted, v)
    redis.call('ZREM', seen, v)
    release_place(v)
  end
end

-- Heartbeats at slots: each tick looks at a stretch of the line, on from where the last
-- tick (of any instance) stopped, sized by the time since it to pass the whole line twice
-- per abandon_ms: a silent waiter goes within 1.5 × abandon_ms, however many instances.
-- (The heads are checked again before they are admitted.)
local last_tick = tonumber(redis.call('HGET', state, 'last_tick') or int(now))
local since = math.min(math.max(now - last_tick, 0), 1000)
local function stretch_for(places)
  return math.min(math.max(64, math.ceil(2 * places * since / abandon_ms)), batch)
end
local prequeued = redis.call('ZCOUNT', waiting, '-inf', '(' .. int(OPENED_FROM))
local opened = redis.call('ZCARD', waiting) - prequeued

-- Before the opening's scores (the pre-queue, in random order; and older versions' places):
-- walked in score order, the heartbeats of each stretch read at their slots.
if prequeued > 0 then
  local stretch = stretch_for(prequeued)
  local from = redis.call('HGET', state, 'sweep_from')
  local rows = redis.call('ZRANGEBYSCORE', waiting, from and '(' .. from or '-inf', '(' .. int(OPENED_FROM),
    'WITHSCORES', 'LIMIT', 0, stretch)
  local swept, swept_scores = {}, {}
  for i = 1, #rows, 2 do
    swept[#swept + 1] = rows[i]
    swept_scores[#swept_scores + 1] = tonumber(rows[i + 1])
  end
  for i, beat in ipairs(beats_of(swept_scores)) do
    if beat > 0 and beat <= cutoff then
      drop(swept[i], swept_scores[i], true)
    end
  end
  if #swept == stretch then
    redis.call('HSET', state, 'sweep_from', int(swept_scores[#swept_scores]))
  else
    redis.call('HDEL', state, 'sweep_from')
  end
end

-- After the opening a place's slot is its score, and the sequence is dense: the sweep
-- reads the heartbeats themselves, a run of slots at a time, and looks up only the silent.
-- Where no chunk is (a gap in the sequence: places of a lost epoch brought back, an older
-- version's), it jumps to the next place.
if opened > 0 then
  local budget = stretch_for(opened)
  local first = redis.call('ZRANGEBYSCORE', waiting, int(OPENED_FROM), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local lo = tonumber(first[2])
  -- The last place, not the last sequence handed out: after a data loss the places brought
  -- back from cookies may be all there is.
  local hi = tonumber(redis.call('ZREVRANGE', waiting, 0, 0, 'WITHSCORES')[2])
  local slot = tonumber(redis.call('HGET', state, 'sweep_slot') or '0')
  if slot < lo or slot > hi then slot = lo end
  local jumps = 0
  while budget > 0 and slot <= hi do
    local _, key, at = chunk_of(slot)
    local last = math.min(hi, slot - at + BEAT_CHUNK - 1, slot + budget - 1)
    local bytes = redis.call('GETRANGE', key, at * BEAT_BYTES, (at + last - slot + 1) * BEAT_BYTES - 1)
    if bytes == '' then
      -- No chunk here: on to the next place after it.
      jumps = jumps + 1
      local next_place = redis.call('ZRANGEBYSCORE', waiting, '(' .. int(slot - at + BEAT_CHUNK - 1), '+inf',
        'WITHSCORES', 'LIMIT', 0, 1)
      if #next_place == 0 or jumps > 16 then
        slot = next_place[2] and tonumber(next_place[2]) or hi + 1
        break
      end
      slot = tonumber(next_place[2])
    else
      for k = 0, #bytes / BEAT_BYTES - 1 do
        local beat = beat_at(bytes, k * BEAT_BYTES + 1)
        if beat > 0 and beat <= cutoff then
          local s = slot + k
          local who = redis.call('ZRANGEBYSCORE', waiting, int(s), int(s), 'LIMIT', 0, 1)
          if who[1] then
            drop(who[1], s, true)
          else
            beat_free(s) -- counted, but its place is gone: cleared
          end
        end
      end
      budget = budget - (last - slot + 1)
      slot = last + 1
    end
  end
  redis.call('HSET', state, 'sweep_slot', int(slot))
else
  redis.call('HDEL', state, 'sweep_slot')
end

local unclaimed = redis.call('ZRANGEBYSCORE', admitted, '-inf', int(now - tonumber(ARGV[15])), 'LIMIT', 0, batch)
for _, v in ipairs(unclaimed) do
  abandoned = abandoned + redis.call('ZREM', admitted, v)
  redis.call('ZREM', seen, v)
end
local expired = redis.call('ZREMRANGEBYSCORE', active, '-inf', int(now))
-- A revoked session's tokens all expire within a session (plus leeway) of the revocation.
redis.call('ZREMRANGEBYSCORE', revoked, '-inf', int(now - session_ms - 60000))

-- Admissions are spaced 60 s / admit_per_minute apart and granted when their time has
-- come. Budget left unused for longer than since the last tick (empty line, full house,
-- pause) is lost, not saved for a burst.
local admitted_now = 0
if not paused and not closed and not recount and opens_at <= now and apm > 0 then
  local free = capacity - redis.call('ZCARD', active) - redis.call('ZCARD', admitted)
  local want = math.min(free, batch, window_budget(apm))
  if want > 0 then
    local interval = 60000 / apm
    -- A slot reserved at a lower rate waits no longer than one interval at the new one
    -- after the last tick (the controller may have raised the rate from its floor).
    local next_slot = math.min(tonumber(redis.call('HGET', state, 'next_slot') or '0'), last_tick + interval)
    local start = math.max(next_slot, last_tick, now - 1000)
    if start <= now then
      local n = math.min(math.floor((now - start) / interval) + 1, want)
      -- The heads, each heard from within abandon_ms (the sweep may not have reached them
      -- yet): the silent are dropped and the next in line go instead. An admission keeps
      -- its heartbeat in `seen` until it is claimed.
      local looked = 0
      while admitted_now < n and looked < batch do
        local heads = redis.call('ZRANGE', waiting, 0, n - admitted_now - 1, 'WITHSCORES')
        if #heads == 0 then break end
        local vs, scores = {}, {}
        for i = 1, #heads, 2 do
          vs[#vs + 1] = heads[i]
          scores[#scores + 1] = tonumber(heads[i + 1])
        end
        local slot_beats = beats_of(scores)
        for i, v in ipairs(vs) do
          local beat = slot_beats[i]
          if beat == 0 then beat = tonumber(redis.call('ZSCORE', seen, v) or now) end
          if beat <= cutoff then
            drop(v, scores[i], slot_beats[i] > 0)
          else
            redis.call('ZADD', admitted, now, v)
            redis.call('ZREM', waiting, v)
            if slot_beats[i] > 0 then
              redis.call('ZADD', seen, beat, v)
              beat_free(scores[i])
            end
            release_place(v)
            admitted_now = admitted_now + 1
          end
        end
        looked = looked + #vs
      end
      if admitted_now > 0 then
        redis.call('HSET', state, 'next_slot', string.format('%.3f', start + admitted_now * interval))
        record_grant(admitted_now)
      end
    end
  end
end
redis.call('HSET', state, 'last_tick', int(now))
if abandoned > 0 then
  redis.call('HINCRBY', state, 'abandoned_total', abandoned)
end

local pinned, reason, origin_health = control_fields()
local revocations = redis.call('ZRANGEBYSCORE', revoked, ARGV[14], '+inf', 'WITHSCORES', 'LIMIT', 0, batch)
return {{'admitted', 'abandoned', 'expired', 'queue_length', 'active_sessions', 'admitted_unclaimed',
    'admitted_total', 'joins_total', 'paused', 'admit_per_minute', 'max_active_users', 'closed', 'epoch', 'recounting',
    'pinned', 'reason', 'health', 'message', 'revocations'},
  admitted_now, abandoned, expired, redis.call('ZCARD', waiting), redis.call('ZCARD', active),
  redis.call('ZCARD', admitted), tonumber(redis.call('HGET', state, 'admitted_total') or '0'),
  tonumber(redis.call('HGET', state, 'joins_total') or '0'),
  paused and 1 or 0, apm, capacity, closed and 1 or 0, tonumber(epoch), recount and 1 or 0, pinned, reason, origin_health,
  redis.call('HGET', state, 'message') or '', revocations}
