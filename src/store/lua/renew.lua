-- renew: extend a session (sliding renewal). Re-creates it if the store lost it, so token
-- holders keep shopping after a wipe; refuses a revoked one.
-- ARGV: 1 session, 2 new expiry ms
if redis.call('ZSCORE', revoked, ARGV[1]) then
  return 0
end
redis.call('ZADD', active, ARGV[2], ARGV[1])
return 1
