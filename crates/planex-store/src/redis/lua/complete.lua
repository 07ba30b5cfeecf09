-- complete: records the outcomes of several leased steps atomically, one after another.
-- ARGV[5..]: per outcome: token, kind ('ok' | 'fail'), payload (result JSON | error text),
-- attempts, earlier attempts' errors (the items of a JSON array of strings, '' for none), number of
-- call records N, then N CallRecord JSON strings.
-- For each outcome: if the step is already terminal, nothing changes ('dup': a late duplicate).
-- Otherwise: its leases are dropped, the result (or failure, with a dead letter) is stored, its
-- calls are recorded, dependents are decremented and the newly ready ones XADDed to their tiers'
-- streams (or skipped, after a failure), events are appended and published, and the task is
-- finished when no step is open. Leases are dropped with one ZREM and one XACK per tier, and each
-- task's events and call records are sent once at the end (common.lua).
-- Returns per outcome {code, final status or '', newly ready CSV, skipped CSV}; code is 'ok',
-- 'dup', 'nf' (no task), 'ns' (no such step) or 'bad' (malformed token).

now_ms() -- sets NOW_S, the timestamp this script writes
local replies = {}

local function complete_one(token, kind, payload, attempts, errors, calls)
  local entry, step, task = parse_token(token)
  if not task then
    return { 'bad', '', '', '' }
  end
  local c = task_ctx(task)
  local f = redis.call('HMGET', c.skey, step .. ':state', step .. ':lease', step .. ':tier',
    step .. ':next', '_:open')
  if not f[1] then
    if redis.call('EXISTS', c.tkey) == 0 then
      return { 'nf', '', '', '' }
    end
    return { 'ns', '', '', '' }
  end
  if TERMINAL[f[1]] then
    return { 'dup', '', '', '' }
  end
  c.legacy = not f[5]
  drop_lease(f[3], token, entry)
  if f[2] and f[2] ~= token then
    drop_lease(f[3], f[2])
  end
  for _, call in ipairs(calls) do
    c.calls[#c.calls + 1] = call
  end
  local ready, skipped = {}, {}
  if kind == 'ok' then
    set(c, step .. ':state', 'complete', step .. ':result', payload, step .. ':attempts', attempts,
      step .. ':finished', NOW_S)
    close_step(c)
    emit(c, '"type":"step_completed","step_id":' .. step)
    settle(c, step, f[4], true, ready, skipped)
  else
    fail_step(c, step, payload, attempts, ready, skipped, errors)
  end
  local status = finish_if_done(c) or ''
  return { 'ok', status, table.concat(ready, ','), table.concat(skipped, ',') }
end

local i = 5
while i + 5 <= #ARGV do
  local n = tonumber(ARGV[i + 5])
  local calls = {}
  for j = 1, n do
    calls[j] = ARGV[i + 5 + j]
  end
  replies[#replies + 1] = complete_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    calls)
  i = i + 6 + n
end
flush_all()
return replies
