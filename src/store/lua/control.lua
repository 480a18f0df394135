-- control: live settings for every instance.
-- ARGV: pairs of field, value; an empty value removes the override.
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', state, ARGV[i])
  else
    redis.call('HSET', state, ARGV[i], ARGV[i + 1])
  end
end
return 1
