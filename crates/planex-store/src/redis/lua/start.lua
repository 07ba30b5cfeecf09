-- start: accepts a plan. ARGV[5] task id, ARGV[6] plan JSON, ARGV[7] step count, ARGV[8] step ids
-- CSV (ascending), ARGV[9] F = number of step hash values, ARGV[10 .. 9+F] step hash field/value
-- pairs, then R = number of root steps and R (step, tier) pairs, then the planner's CallRecords.
-- Returns {'ok'}, {'nf'} or {'wrong', current status}.

local c = task_ctx(ARGV[5], now_ms())
local task = redis.call('HMGET', c.tkey, 'status', 'task')
local status = task[1]
if not status then
  return { 'nf' }
end
if status ~= 'planning' then
  return { 'wrong', status }
end
local nfields = tonumber(ARGV[9])
local fields = {}
for i = 1, nfields do
  fields[i] = ARGV[9 + i]
end
fields[#fields + 1] = '_:open'
fields[#fields + 1] = ARGV[7]
fields[#fields + 1] = '_:text'
fields[#fields + 1] = task[2] or ''
hset_all(c.skey, fields)
local at = 10 + nfields
local nroots = tonumber(ARGV[at])
local roots = {}
for i = 1, nroots do
  roots[i] = { ARGV[at + 2 * i - 1], ARGV[at + 2 * i] }
end
at = at + 2 * nroots + 1
local calls = {}
for i = at, #ARGV do
  calls[#calls + 1] = ARGV[i]
end
if #calls > 0 then
  rpush_all(c.ckey, calls)
end
redis.call('HSET', c.tkey, 'status', 'running', 'plan', ARGV[6], 'nsteps', ARGV[7], 'ids', ARGV[8])
emit(c, '"type":"planned","steps":' .. ARGV[7])
for _, root in ipairs(roots) do
  enqueue(c, root[1], root[2])
end
flush_all()
return { 'ok' }
