-- Writes a task type's learned drift baseline unless one is written already, and deletes the
-- learning list. Racing learners read the same first samples, so whichever writes, the values
-- are the same.
-- KEYS: baseline hash, learning list. ARGV: steps_p95, cost_usd_mean, tasks.
if redis.call('HEXISTS', KEYS[1], 'steps_p95') == 0 then
  redis.call('HSET', KEYS[1], 'steps_p95', ARGV[1], 'cost_usd_mean', ARGV[2], 'tasks', ARGV[3])
end
redis.call('DEL', KEYS[2])
return 1
