-- release: gives a leased step back to its tier's ready stream without counting the delivery
-- (graceful shutdown). ARGV[5] lease token. Only the current lease holder can release; returns
-- 1 when released, 0 when the lease was not held (lost, or the step finished), -1 when the task
-- does not exist.

local _, step, task = parse_token(ARGV[5])
if not task then
  return 0
end
local c = task_ctx(task)
local f = redis.call('HMGET', c.skey, step .. ':state', step .. ':lease', step .. ':tier',
  step .. ':deliveries')
if not f[1] then
  if redis.call('EXISTS', c.tkey) == 0 then
    return -1
  end
  return 0
end
if f[1] ~= 'running' or f[2] ~= ARGV[5] or not redis.call('ZSCORE', lease_key(f[3]), ARGV[5]) then
  return 0
end
drop_lease(f[3], ARGV[5])
if redis.call('HGET', c.tkey, 'status') == 'cancelled' then
  -- A cancelled task's step is not handed out again.
  skip_cancelled(c, step)
  flush_all()
  return 1
end
local deliveries = math.max(0, tonumber(f[4] or '1') - 1)
redis.call('HSET', c.skey, step .. ':state', 'ready', step .. ':deliveries', deliveries)
enqueue(c, step, f[3])
flush_all()
return 1
