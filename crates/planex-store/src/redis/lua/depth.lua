-- depth: a tier's ready and in-flight step counts. ARGV[5] tier. Returns {ready, in flight}.
-- Ready is the number of entries not yet delivered to the consumer group (those after its
-- last-delivered id); acknowledged entries waiting to be trimmed are not counted. In flight is the
-- number of leases.
--
-- The group's `lag` (what KEDA's lagCount reads) is not trusted alone: after a Redis restart its
-- entries-read counter is rebuilt from the append-only file and can be unknown or wrong (a lag of
-- thousands with nothing to deliver was seen), and trimming or deleted consumers can leave it
-- stale. So the undelivered entries are counted exactly, up to EXACT_UP_TO; when the count differs
-- from the lag, the group's entries-read is set so that Redis's own lag is exact again (XGROUP SETID
-- keeps the last-delivered id and the pending entries), which corrects KEDA's trigger too. A
-- longer queue is at least EXACT_UP_TO long: the lag, when it is at least that, or else the stream
-- length minus the pending entries, stands for it.

local EXACT_UP_TO = 1000

local rkey, lkey = ready_key(ARGV[5]), lease_key(ARGV[5])
local leased = redis.call('ZCARD', lkey)
if redis.call('EXISTS', rkey) == 0 then
  return { 0, leased }
end
local groups = redis.call('XINFO', 'GROUPS', rkey)
for _, reply in ipairs(groups) do
  local g = fields_of(reply)
  if g.name == GROUP then
    local last = g['last-delivered-id']
    local after = redis.call('XRANGE', rkey, '(' .. last, '+', 'COUNT', EXACT_UP_TO)
    local undelivered = #after
    if undelivered < EXACT_UP_TO then
      if g.lag ~= undelivered then
        local added = fields_of(redis.call('XINFO', 'STREAM', rkey))['entries-added']
        if type(added) == 'number' and added >= undelivered then
          redis.call('XGROUP', 'SETID', rkey, GROUP, last, 'ENTRIESREAD', added - undelivered)
        end
      end
      return { undelivered, leased }
    end
    if type(g.lag) == 'number' and g.lag >= undelivered then
      return { g.lag, leased }
    end
    return { math.max(undelivered, redis.call('XLEN', rkey) - (g.pending or 0)), leased }
  end
end
-- No consumer group yet: nothing was ever delivered.
return { redis.call('XLEN', rkey), leased }
