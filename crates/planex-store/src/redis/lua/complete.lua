-- complete: records the outcomes of several leased steps atomically, one after another.
-- ARGV[5..]: per outcome: token, kind ('ok' | 'fail'), payload (result JSON | error text),
-- attempts, number of call records N, then N CallRecord JSON strings.
-- For each outcome: if the step is already terminal, nothing changes ('dup': a late duplicate).
-- Otherwise: its leases are dropped, the result (or failure, with a dead letter) is stored, its
-- calls are recorded, dependents are decremented and the newly ready ones XADDed to their tiers'
-- streams (or skipped, after a failure), events are appended and published, and the task is
-- finished when no step is open. Outcomes of one task share its context (common.lua): its
-- fields are read up front with one HMGET and written back with one HSET; leases are dropped with
-- one ZREM and one XACK per tier.
-- Returns per outcome {code, final status or '', newly ready CSV, skipped CSV}; code is 'ok',
-- 'dup', 'nf' (no task), 'ns' (no such step) or 'bad' (malformed token).

local now = now_ms()
local replies = {}

-- The fields of a completed step that completion reads.
local OUTCOME_FIELDS = { ':state', ':lease', ':tier', ':next' }

-- Parse every outcome first, so each task's fields can be fetched at once.
local outcomes = {}
local wanted = {}
local i = 5
while i + 4 <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  local calls = {}
  for j = 1, n do
    calls[j] = ARGV[i + 4 + j]
  end
  local o = { token = ARGV[i], kind = ARGV[i + 1], payload = ARGV[i + 2], attempts = ARGV[i + 3],
    calls = calls }
  local _, step, task = parse_token(o.token)
  if task then
    o.step, o.c = step, task_ctx(task, now)
    o.names = step_names(step, OUTCOME_FIELDS)
    want(wanted, o.c, o.names)
    want(wanted, o.c, { '_:open' })
  end
  outcomes[#outcomes + 1] = o
  i = i + 5 + n
end
prefetch(wanted)
-- Then the fields of their dependents, one HMGET per task.
local dependents = {}
for _, o in ipairs(outcomes) do
  if o.c then
    for _, dep in ipairs(split_ids(get(o.c, o.names)[4])) do
      want(dependents, o.c, step_names(dep, DEP_FIELDS))
    end
  end
end
prefetch(dependents)

local function complete_one(o)
  local c, step = o.c, o.step
  if not c then
    return { 'bad', '', '', '' }
  end
  local f = get(c, o.names)
  if not f[1] then
    if redis.call('EXISTS', c.tkey) == 0 then
      return { 'nf', '', '', '' }
    end
    return { 'ns', '', '', '' }
  end
  if TERMINAL[f[1]] then
    return { 'dup', '', '', '' }
  end
  drop_lease(f[3], o.token)
  if f[2] and f[2] ~= o.token then
    drop_lease(f[3], f[2])
  end
  for _, call in ipairs(o.calls) do
    c.calls[#c.calls + 1] = call
  end
  local ready, skipped = {}, {}
  if o.kind == 'ok' then
    set(c, step .. ':state', 'complete', step .. ':result', o.payload, step .. ':attempts',
      o.attempts, step .. ':finished', NOW_S)
    close_step(c)
    emit(c, '"type":"step_completed","step_id":' .. step)
    settle(c, step, f[4], true, ready, skipped)
  else
    fail_step(c, step, o.payload, o.attempts, ready, skipped)
  end
  local status = finish_if_done(c) or ''
  return { 'ok', status, table.concat(ready, ','), table.concat(skipped, ',') }
end

for _, o in ipairs(outcomes) do
  replies[#replies + 1] = complete_one(o)
end
flush_all()
return replies
