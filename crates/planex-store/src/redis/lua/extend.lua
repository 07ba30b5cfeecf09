-- extend: pushes a held lease's deadline to now + ARGV[7] ms. ARGV[5] tier, ARGV[6] token.
-- Returns 1 when the lease is still held, 0 when it was lost (redelivered or completed).

local lkey = lease_key(ARGV[5])
if not redis.call('ZSCORE', lkey, ARGV[6]) then
  return 0
end
redis.call('ZADD', lkey, num(now_ms() + tonumber(ARGV[7])), ARGV[6])
return 1
