-- reap: expires at once the leases of a tier's workers whose heartbeat lapsed, so the next claim
-- redelivers their steps instead of waiting out the lease (a worker killed with -9 stops beating).
-- ARGV[5] tier. Workers that beat are in P:workers:{TIER} (a set); each beat is P:hb:{TIER}:W with
-- a TTL (heartbeat in redis/heartbeat.rs). A worker that never beat (an older version) is not in
-- the set and is left to its lease expiry. A dead worker's pending stream entries name its steps;
-- each step's current lease token is moved to deadline 0 in P:leases:{TIER} (only if it is still
-- there: a finished step's lease is gone), then one wake-up entry is added to the ready stream so
-- a claim blocked on it returns (claim.lua acknowledges the entry as stale). The dead worker is
-- taken out of the set. Returns how many leases were expired.

local tier = ARGV[5]
local rkey, lkey = ready_key(tier), lease_key(tier)
local registry = PREFIX .. ':workers:{' .. tier .. '}'
local reaped = 0
for _, worker in ipairs(redis.call('SMEMBERS', registry)) do
  if redis.call('EXISTS', PREFIX .. ':hb:{' .. tier .. '}:' .. worker) == 0 then
    local pending = redis.pcall('XPENDING', rkey, GROUP, '-', '+', 1000, worker)
    if type(pending) == 'table' and not pending.err then
      for _, p in ipairs(pending) do
        local entry = redis.call('XRANGE', rkey, p[1], p[1])[1]
        if entry then
          local f = fields_of(entry[2])
          if f.t and f.s then
            local token = redis.call('HGET', PREFIX .. ':task:{' .. f.t .. '}:steps', f.s .. ':lease')
            if token and redis.call('ZADD', lkey, 'XX', 'CH', 0, token) == 1 then
              reaped = reaped + 1
            end
          end
        end
      end
    end
    redis.call('SREM', registry, worker)
  end
end
if reaped > 0 then
  redis.call('XADD', rkey, '*', 'wake', '1')
end
return reaped
