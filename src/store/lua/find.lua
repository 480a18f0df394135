-- find: one step of an operator's search for the visitors whose id starts with a prefix,
-- through waiting, admitted, active and dropped (ZSCAN: each step looks at about `count`
-- members of each set, so a long line is never blocked for the whole walk).
-- ARGV: 1 the prefix (base64url characters only: no glob pattern), 2 count, 3-6 the
--       cursors of waiting, admitted, active, dropped ('0' to start, 'done' when walked)
-- Returns the field names, then a row per visitor found (place: waiting, admitted,
-- active or dropped; position, -1 unless waiting; at: last seen, admitted, session end
-- or dropped, in ms), then four rows with place 'next' whose `visitor` is each set's next
-- cursor ('done' when walked), in the order of ARGV 3-6.
local pattern = ARGV[1] .. '*'
local count = ARGV[2]
local out = {{'place', 'visitor', 'position', 'at'}}
local function row(place, visitor, position, at)
  local n = #out
  out[n + 1] = place
  out[n + 2] = visitor
  out[n + 3] = position
  out[n + 4] = at
end

local sets = {{'waiting', waiting}, {'admitted', admitted}, {'active', active}, {'dropped', dropped}}
local cursors = {}
for i, set in ipairs(sets) do
  local cursor = ARGV[2 + i]
  if cursor ~= 'done' then
    local reply = redis.call('ZSCAN', set[2], cursor, 'MATCH', pattern, 'COUNT', count)
    local items = reply[2]
    for j = 1, #items, 2 do
      local member, score = items[j], tonumber(items[j + 1])
      if set[1] == 'waiting' then
        row('waiting', member, redis.call('ZRANK', waiting, member) + 1, last_beat(member, score) or 0)
      elseif set[1] == 'dropped' then
        row('dropped', string.match(member, '^(.*):[^:]*$') or member, -1, score)
      else
        row(set[1], member, -1, score)
      end
    end
    cursor = reply[1] == '0' and 'done' or reply[1]
  end
  cursors[i] = cursor
end
for _, cursor in ipairs(cursors) do
  row('next', cursor, -1, 0)
end
return out
