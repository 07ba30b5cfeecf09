-- retire: deletes a stopped worker's consumer from its tier's group, unless it still holds pending
-- entries (those stay claimable by lease expiry). ARGV[5] tier, ARGV[6] worker.
-- Returns 1 when deleted, 0 otherwise.

local rkey = ready_key(ARGV[5])
local pending = redis.pcall('XPENDING', rkey, GROUP, '-', '+', 1, ARGV[6])
if type(pending) ~= 'table' or pending.err or #pending > 0 then
  return 0
end
return redis.call('XGROUP', 'DELCONSUMER', rkey, GROUP, ARGV[6]) >= 0 and 1 or 0
