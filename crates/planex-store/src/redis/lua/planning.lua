-- planning: the tasks still 'planning' that were created at or before ARGV[5] (ms), oldest
-- first, at most ARGV[6] of them. Members of P:planning whose task moved on or is gone are taken
-- out on the way (a task created before this index existed is not in it).

local index = planning_key()
local ids = redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
for _, id in ipairs(ids) do
  if redis.call('HGET', PREFIX .. ':task:{' .. id .. '}', 'status') == 'planning' then
    out[#out + 1] = id
  else
    redis.call('ZREM', index, id)
  end
end
return out
