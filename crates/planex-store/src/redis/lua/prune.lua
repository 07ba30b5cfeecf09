-- prune: deletes the consumers of a tier's group that hold no pending entry and have been idle
-- (no read or claim) for at least ARGV[6] ms: workers that died without retiring (kill -9, a lost
-- machine), once their steps were redelivered to others. A live worker pruned while idle is
-- re-created by its next claim, so nothing is lost either way. ARGV[5] tier. Returns the number
-- deleted.

local rkey = ready_key(ARGV[5])
local min_idle = tonumber(ARGV[6])
local consumers = redis.pcall('XINFO', 'CONSUMERS', rkey, GROUP)
if type(consumers) ~= 'table' or consumers.err then
  -- No stream or no group yet: nobody to prune.
  return 0
end
local pruned = 0
for _, reply in ipairs(consumers) do
  local c = fields_of(reply)
  if c.name and c.pending == 0 and c.idle and c.idle >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', rkey, GROUP, c.name)
    pruned = pruned + 1
  end
end
return pruned
