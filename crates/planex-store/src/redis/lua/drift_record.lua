-- Records one finished task's drift sample, once per task id, in one atomic step, so a second
-- recorder of the same task (the task's watcher and its waiter race) finds it recorded whole.
-- KEYS: seen marker, types set, recent list, baseline hash, learning list.
-- ARGV: task type, sample, window, seen TTL in seconds, learn_tasks.
-- Returns {recorded (1 when this call recorded it), learn (1 when no baseline is learned yet
-- and the learning list holds learn_tasks samples: the caller learns it)}.
local seen, types, recent, hash, learn = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local recorded = 0
if redis.call('SET', seen, 1, 'NX', 'EX', ARGV[4]) then
  recorded = 1
  redis.call('SADD', types, ARGV[1])
  redis.call('LPUSH', recent, ARGV[2])
  redis.call('LTRIM', recent, 0, tonumber(ARGV[3]) - 1)
  if redis.call('HEXISTS', hash, 'steps_p95') == 0 then
    redis.call('RPUSH', learn, ARGV[2])
  end
end
local ready = 0
if redis.call('HEXISTS', hash, 'steps_p95') == 0
    and redis.call('LLEN', learn) >= tonumber(ARGV[5]) then
  ready = 1
end
return {recorded, ready}
