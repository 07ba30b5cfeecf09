-- create: records a new task in 'planning' unless the id is taken.
-- ARGV[5] task id, ARGV[6] task text, ARGV[7..] extra field/value pairs (tenant, cost_center).
-- Returns 1 when created, 0 when the id exists. The task joins P:planning (scored by its creation
-- time) until start, finish_unplanned or cancel takes it out, so recovery finds tasks whose replica
-- stopped while planning them (planning.lua), and its tenant's P:tenant_tasks index for listing.

local now = now_ms() -- also sets NOW_S, the timestamp this script writes
local c = task_ctx(ARGV[5])
if redis.call('EXISTS', c.tkey) == 1 then
  return 0
end
local fields = { 'task', ARGV[6], 'status', 'planning', 'created', NOW_S }
local tenant = ''
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
  if ARGV[i] == 'tenant' and i % 2 == 1 then
    tenant = ARGV[i + 1]
  end
end
redis.call('HSET', c.tkey, unpack(fields))
redis.call('ZADD', planning_key(), now, ARGV[5])
local listed = tenant_tasks_key(tenant)
redis.call('ZADD', listed, now, ARGV[5])
if TTL > 0 then
  redis.call('ZREMRANGEBYSCORE', listed, '-inf', '(' .. num(now - 2000 * TTL))
end
announce(c, 'planning', tenant)
return 1
