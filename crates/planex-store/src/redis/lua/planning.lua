-- planning: the tasks still 'planning' (or running with a streamed plan still open) that were created at or before ARGV[5] (ms), oldest
-- first, at most ARGV[6] of them. Members of P:planning whose task moved on or is gone are taken
-- out on the way (a task created before this index existed is not in it).

local index = planning_key()
local ids = redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', PREFIX .. ':task:{' .. id .. '}', 'status', 'open_plan')
  if f[1] == 'planning' or (f[1] == 'running' and f[2] == '1') then
    out[#out + 1] = id
  else
    redis.call('ZREM', index, id)
  end
end
return out
