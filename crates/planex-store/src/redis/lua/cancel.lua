-- cancel: stops a task's spending. ARGV[5] task id, ARGV[6] reason.
-- A task still planning or running ends 'cancelled' with REASON: its pending and ready steps
-- become 'skipped' ("cancelled"; a ready step's stream entry is acknowledged as stale by the next
-- claim), the task is finished and expires like any finished task. Steps running now keep their
-- leases: their completions are still recorded (complete.lua), but every dependent is skipped
-- already, so nothing more is enqueued, and claim.lua / release.lua never hand a step of a
-- cancelled task out again. Returns {'ok'}, {'nf'} or {'wrong', current status}.

now_ms() -- sets NOW_S, the timestamp this script writes
local c = task_ctx(ARGV[5])
local f = redis.call('HMGET', c.tkey, 'status', 'ids')
if not f[1] then
  return { 'nf' }
end
if f[1] ~= 'planning' and f[1] ~= 'running' then
  return { 'wrong', f[1] }
end
local ids = split_ids(f[2])
local names = {}
for i, id in ipairs(ids) do
  names[i] = id .. ':state'
end
local states = get(c, names)
for i, id in ipairs(ids) do
  if states[i] == 'pending' or states[i] == 'ready' then
    skip_cancelled(c, id)
  end
end
redis.call('HSET', c.tkey, 'status', 'cancelled', 'error', ARGV[6], 'finished', NOW_S)
redis.call('ZREM', planning_key(), ARGV[5])
emit(c, '"type":"task_completed","status":"cancelled"')
announce(c, 'cancelled')
expire_task(c)
flush_all()
return { 'ok' }
