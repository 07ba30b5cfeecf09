-- start: accepts a plan whose step fields the caller has written to P:task:{id}:staged:NONCE
-- (the steps hash's content; see ops.rs). ARGV[5] task id, ARGV[6] plan JSON, ARGV[7] step
-- count (steps reused from an earlier task are staged complete, with their count in _:reused),
-- ARGV[8] step ids CSV (ascending), ARGV[9] NONCE, ARGV[10] R = number of root steps,
-- then R (step, tier) pairs, then the planner's CallRecords.
-- Returns {'ok'}, {'nf'}, {'wrong', current status} or {'nostage'} (the staged fields are gone,
-- e.g. after a Redis restart: stage again and retry).

now_ms() -- sets NOW_S, the timestamp this script writes
local c = task_ctx(ARGV[5])
local staged = c.tkey .. ':staged:' .. ARGV[9]
local task = redis.call('HMGET', c.tkey, 'status', 'task', 'traceparent')
local status = task[1]
if not status then
  redis.call('DEL', staged)
  return { 'nf' }
end
if status ~= 'planning' then
  redis.call('DEL', staged)
  return { 'wrong', status }
end
if redis.call('EXISTS', staged) == 0 then
  return { 'nostage' }
end
redis.call('RENAME', staged, c.skey)
redis.call('PERSIST', c.skey)
-- Steps reused from an earlier task (a replay) are complete already: they are not open.
local open = tonumber(ARGV[7]) - tonumber(redis.call('HGET', c.skey, '_:reused') or '0')
redis.call('HSET', c.skey, '_:open', open, '_:text', task[2] or '', '_:tp', task[3] or '')
local nroots = tonumber(ARGV[10])
local at = 11 + 2 * nroots
local calls = {}
for i = at, #ARGV do
  calls[#calls + 1] = ARGV[i]
end
c.calls = calls
redis.call('HSET', c.tkey, 'status', 'running', 'plan', ARGV[6], 'nsteps', ARGV[7], 'ids', ARGV[8])
redis.call('ZREM', planning_key(), ARGV[5])
emit(c, '"type":"planned","steps":' .. ARGV[7])
announce(c, 'running')
for i = 1, nroots do
  enqueue(c, ARGV[9 + 2 * i], ARGV[10 + 2 * i])
end
flush_all()
return { 'ok' }
