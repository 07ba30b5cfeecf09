-- depth: a tier's ready and in-flight step counts. ARGV[5] tier. Returns {ready, in flight}.
-- Ready is the consumer group's lag (entries added but not yet delivered, Redis 7+: the same
-- figure KEDA's lagCount reads); acknowledged entries waiting to be trimmed are not counted. In
-- flight is the number of leases. When Redis cannot tell the lag, the stream length minus the
-- pending entries is used (it may count acknowledged entries not yet trimmed).

local rkey, lkey = ready_key(ARGV[5]), lease_key(ARGV[5])
local leased = redis.call('ZCARD', lkey)
if redis.call('EXISTS', rkey) == 0 then
  return { 0, leased }
end
local groups = redis.call('XINFO', 'GROUPS', rkey)
for _, reply in ipairs(groups) do
  local g = fields_of(reply)
  if g.name == GROUP then
    if type(g.lag) == 'number' then
      return { g.lag, leased }
    end
    return { math.max(0, redis.call('XLEN', rkey) - (g.pending or 0)), leased }
  end
end
-- No consumer group yet: nothing was ever delivered.
return { redis.call('XLEN', rkey), leased }
