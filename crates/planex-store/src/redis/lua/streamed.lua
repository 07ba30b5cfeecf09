-- streamed: a task whose plan streams in (docs/ARCHITECTURE.md §4). ARGV[5] 'MODE|OP', ARGV[6]
-- task id. OP is the call's own id, kept in the task hash's `op` once applied: a call resent after
-- a reconnect (its reply lost) finds it there and answers 'ok' without applying twice (a close
-- recording its calls again would bill them twice). One planner writes a task's plan at a time,
-- in order, so only the last applied id needs keeping.
-- While the plan is open the steps hash's `_:open` counts one more than the open steps, so no
-- completion finishes the task; the task stays in P:planning (for orphan recovery) until closed.
--   open:      planning -> running with no steps.
--   add:       ARGV[7..]: per step 6 values: id, spec JSON, tier, tool, deps CSV, tol ('1'/'').
--              Dependencies must be steps of the task (checked first: nothing is added otherwise).
--              A step whose dependencies all completed is enqueued; one with a failed or skipped
--              dependency is skipped (a tolerant one only when none of its dependencies completed
--              and none is open); else it waits, listed in each open dependency's :next.
--   supersede: ARGV[7] round, ARGV[8] reason, ARGV[9] step ids CSV: listed in the task hash's
--              `sup` (they no longer count, common.lua finish_if_done); pending or ready ones are
--              skipped with REASON (a ready one's stream entry is acknowledged as stale by claim).
--   close:     ARGV[7] plan JSON ('' = keep), ARGV[8] cut-short reason ('' = none), then the
--              CallRecords. A task that is no longer running only gets the calls recorded.
-- Returns {'ok'}, {'nf'}, {'wrong', status}, {'closed'} (the plan is not open), {'dup', step} or
-- {'nodep', step, dep}.

now_ms() -- sets NOW_S, the timestamp this script writes
local mode, op = string.match(ARGV[5], '^([^|]*)|?(.*)$')
local c = task_ctx(ARGV[6])
local task = redis.call('HMGET', c.tkey, 'status', 'task', 'open_plan', 'ids', 'nsteps', 'op')
local status = task[1]
if not status then
  return { 'nf' }
end
if op ~= '' and task[6] == op then
  return { 'ok' }
end
-- Marks this call applied (see the header); called on every path that changes the task.
local function applied()
  if op ~= '' then
    redis.call('HSET', c.tkey, 'op', op)
  end
end

if mode == 'open' then
  if status ~= 'planning' then
    return { 'wrong', status }
  end
  redis.call('DEL', c.skey)
  redis.call('HSET', c.skey, '_:open', 1, '_:text', task[2] or '', '_:tp', redis.call('HGET', c.tkey, 'traceparent') or '')
  redis.call('HSET', c.tkey, 'status', 'running', 'open_plan', '1', 'nsteps', 0, 'ids', '')
  announce(c, 'running')
  applied()
  return { 'ok' }
end

if mode == 'close' then
  local calls = {}
  for i = 9, #ARGV do
    calls[#calls + 1] = ARGV[i]
  end
  c.calls = calls
  if status == 'running' and task[3] == '1' then
    local fields = { 'open_plan', '0' }
    if ARGV[7] ~= '' then
      fields[#fields + 1] = 'plan'
      fields[#fields + 1] = ARGV[7]
    end
    if ARGV[8] ~= '' then
      fields[#fields + 1] = 'cut'
      fields[#fields + 1] = ARGV[8]
    end
    redis.call('HSET', c.tkey, unpack(fields))
    redis.call('ZREM', planning_key(), ARGV[6])
    emit(c, '"type":"planned","steps":' .. (task[5] or '0'))
    c.legacy = false
    close_step(c)
    finish_if_done(c)
  end
  flush_all()
  applied()
  return { 'ok' }
end

if status ~= 'running' then
  return { 'wrong', status }
end
if task[3] ~= '1' then
  return { 'closed' }
end
c.legacy = false

if mode == 'supersede' then
  local reason = ARGV[8]
  local ids = split_ids(ARGV[9])
  local sup = redis.call('HGET', c.tkey, 'sup')
  local listed = {}
  for _, id in ipairs(ids) do
    local state = redis.call('HGET', c.skey, id .. ':state')
    if state then
      listed[#listed + 1] = id
      if state == 'pending' or state == 'ready' then
        set(c, id .. ':state', 'skipped', id .. ':error', reason, id .. ':finished', NOW_S)
        close_step(c)
        emit(c, '"type":"step_skipped","step_id":' .. id .. ',"reason":' .. jstr(reason))
      end
    end
  end
  if #listed > 0 then
    local all = table.concat(listed, ',')
    if sup and sup ~= '' then
      all = sup .. ',' .. all
    end
    redis.call('HSET', c.tkey, 'sup', all)
  end
  emit(c, '"type":"replanned","round":' .. ARGV[7] .. ',"reason":' .. jstr(reason) ..
    ',"superseded":[' .. table.concat(listed, ',') .. ']')
  flush_all()
  applied()
  return { 'ok' }
end

-- mode == 'add'
local steps = {}
for i = 7, #ARGV, 6 do
  steps[#steps + 1] = { id = ARGV[i], spec = ARGV[i + 1], tier = ARGV[i + 2], tool = ARGV[i + 3],
    deps = split_ids(ARGV[i + 4]), tol = ARGV[i + 5] == '1' }
end
-- Checked before anything is written: ids unused, dependencies known (or earlier in this call).
local known = {}
for _, s in ipairs(steps) do
  if known[s.id] or redis.call('HEXISTS', c.skey, s.id .. ':state') == 1 then
    return { 'dup', s.id }
  end
  for _, d in ipairs(s.deps) do
    if not known[d] and redis.call('HEXISTS', c.skey, d .. ':state') == 0 then
      return { 'nodep', s.id, d }
    end
  end
  known[s.id] = true
end
local ids = split_ids(task[4])
for _, s in ipairs(steps) do
  local id = s.id
  local waiting, completed, lost = 0, false, nil
  for _, d in ipairs(s.deps) do
    local state = redis.call('HGET', c.skey, d .. ':state')
    if state == 'complete' then
      completed = true
    elseif state == 'failed' or state == 'skipped' then
      lost = lost or d
    else
      waiting = waiting + 1
      local next_csv = redis.call('HGET', c.skey, d .. ':next')
      if next_csv and next_csv ~= '' then
        next_csv = next_csv .. ',' .. id
      else
        next_csv = id
      end
      set(c, d .. ':next', next_csv)
    end
  end
  local fields = { id, s.spec, id .. ':tier', s.tier, id .. ':tool', s.tool, id .. ':pending', waiting }
  if #s.deps > 0 then
    fields[#fields + 1] = id .. ':deps'
    fields[#fields + 1] = table.concat(s.deps, ',')
  end
  if s.tol then
    fields[#fields + 1] = id .. ':tol'
    fields[#fields + 1] = '1'
  end
  emit(c, '"type":"step_planned","step_id":' .. id .. ',"tool_name":' .. jstr(s.tool) ..
    ',"tier":' .. jstr(s.tier) .. ',"depends_on":[' .. table.concat(s.deps, ',') .. ']')
  local reason
  if lost and not s.tol then
    reason = 'dependency step ' .. lost .. ' did not complete'
  elseif s.tol and waiting == 0 and #s.deps > 0 and not completed then
    reason = 'no dependency step completed, so there is nothing to answer from'
  end
  if reason then
    fields[#fields + 1] = id .. ':state'
    fields[#fields + 1] = 'skipped'
    fields[#fields + 1] = id .. ':error'
    fields[#fields + 1] = reason
    fields[#fields + 1] = id .. ':finished'
    fields[#fields + 1] = NOW_S
    set(c, unpack(fields))
    emit(c, '"type":"step_skipped","step_id":' .. id .. ',"reason":' .. jstr(reason))
  else
    fields[#fields + 1] = id .. ':state'
    fields[#fields + 1] = waiting == 0 and 'ready' or 'pending'
    set(c, unpack(fields))
    redis.call('HINCRBY', c.skey, '_:open', 1)
    if waiting == 0 then
      enqueue(c, id, s.tier)
    end
  end
  ids[#ids + 1] = id
end
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
redis.call('HSET', c.tkey, 'ids', table.concat(ids, ','), 'nsteps', #ids)
flush_all()
applied()
return { 'ok' }
