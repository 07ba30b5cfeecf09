-- finish_unplanned: ends a task that never ran. ARGV[5] task id, ARGV[6] final status,
-- ARGV[7] reason, ARGV[8..] CallRecords. Returns {'ok'}, {'nf'} or {'wrong', current status}.

now_ms() -- sets NOW_S, the timestamp this script writes
local c = task_ctx(ARGV[5])
local status = redis.call('HGET', c.tkey, 'status')
if not status then
  return { 'nf' }
end
if status ~= 'planning' then
  return { 'wrong', status }
end
local calls = {}
for i = 8, #ARGV do
  calls[#calls + 1] = ARGV[i]
end
c.calls = calls
redis.call('HSET', c.tkey, 'status', ARGV[6], 'error', ARGV[7], 'finished', NOW_S)
redis.call('ZREM', planning_key(), ARGV[5])
emit(c, '"type":"task_completed","status":"' .. ARGV[6] .. '"')
announce(c, ARGV[6])
expire_task(c)
flush_all()
return { 'ok' }
