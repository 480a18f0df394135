-- renew: make sure a token holder's session is counted until the given expiry (sliding
-- renewal; also the recount of sessions after the store lost them). Never shortens a
-- session; refuses a revoked one. A token issued before the room's data began is proof
-- that data was lost (a restart without persistence): the recount starts.
-- ARGV: 1-12 the room (see prelude), 13 session id, 14 ms the session lasts from now,
--       15 ms since the token was issued (durations: every score is on Redis's clock)
local epoch = room_epoch()
local session = ARGV[13]
if redis.call('ZSCORE', revoked, session) then
  return 0
end
local visitor = visitor_of(session)
local counted = redis.call('ZSCORE', active, visitor)
redis.call('ZADD', active, 'GT', int(now + tonumber(ARGV[14])), visitor)
local issued_at = now - tonumber(ARGV[15])
if not counted and issued_at < math.floor(tonumber(epoch) / 1000)
    and redis.call('HGET', state, 'recovered') ~= '1' then
  start_recount()
end
return 1
