-- planex Redis store: helpers shared by every script. Each script is this file followed by its
-- own body (see scripts.rs), so the helpers exist once in the source and the scripts stay atomic.
--
-- Common arguments of every script: ARGV[1] key prefix ("px"), ARGV[2] seconds to keep a finished
-- task (0 = forever), ARGV[3] dead-letter stream length cap, ARGV[4] delivery bound (poison steps).
-- Script-specific arguments start at ARGV[5].
--
-- Layout (a task's keys share the hash tag {task id}; a tier's keys share {tier}):
--   P:task:{id}          hash  task, tenant, cost_center, task_type, end_user, retry_of (the task a
--                              replay repeats), traceparent (W3C, when traces are exported), status, created, finished, error, plan,
--                              ids (step ids, ascending), nsteps; for a streamed plan (streamed.lua)
--                              open_plan ('1' while open), sup (superseded step ids), cut (reason)
--   P:task:{id}:steps    hash  N = spec JSON, N:state, N:tier, N:tool, N:deps, N:next (dependents),
--                              N:pending, N:tol, N:deliveries, N:attempts, N:result, N:error,
--                              N:worker, N:started, N:finished, N:lease (current lease token);
--                              _:open (steps not terminal, plus 1 while a streamed plan is open), _:text (the task text, for claims),
--                              _:tp (the task's traceparent, for claims), _:reused (steps a replay started complete, read by start.lua)
--   P:task:{id}:staged:N hash  a plan's step fields on their way in, N a nonce per call (start.lua
--                              renames it to :steps; it expires by itself if the start never comes)
--   P:task:{id}:calls    list  CallRecord JSON
--   P:task:{id}:events   list  event JSON without seq (seq = index + 1); published on
--   P:events:{id}        channel "SEQ|JSON" (several events of one script call go as one message,
--                              "SEQ|JSON\nJSON…", numbered SEQ, SEQ+1, …)
--   P:ready:{tier}       stream of {t = task id, s = step id}, consumer group "workers"
--   P:leases:{tier}      zset  lease token -> deadline (server ms)
--   P:task_changes       channel "0|{task_id, tenant, status}" on each task's creation, start and end
--                              (announce; read by the tasks list's live view, changes.rs)
--   P:dlq                stream of {d = DeadLetter JSON (with the task's tenant)}
--   P:planning           zset  task id -> creation time (ms) of each task still 'planning'
--   P:tenant_tasks:T     zset  task id -> creation time (ms) of tenant T's tasks (T empty: none),
--                              for listing (list.lua); entries of expired tasks are taken out by
--                              list.lua when it meets them, and by create.lua past twice the TTL
-- A lease token is "DELIVERY:ENTRY:STEP:TASK" (ENTRY = the step's stream entry id). It is unique
-- per delivery: a redelivery (XCLAIM) keeps the entry and raises DELIVERY; a release re-adds the
-- step as a new entry.

local PREFIX = ARGV[1]
local TTL = tonumber(ARGV[2])
local DLQ_MAX = ARGV[3]
local MAX_DELIVERIES = tonumber(ARGV[4])
local GROUP = 'workers'
local TERMINAL = { complete = true, failed = true, skipped = true }

local function num(x)
  return string.format('%.0f', x)
end

-- The script's clock as a decimal string (ms), set by now_ms(): formatting a 13-digit number
-- takes a printf each time, so scripts format it once.
local NOW_S = '0'

local function now_ms()
  local t = redis.call('TIME')
  local ms = math.floor(tonumber(t[2]) / 1000)
  NOW_S = t[1] .. string.format('%03d', ms)
  return tonumber(t[1]) * 1000 + ms
end

local function jstr(s)
  return cjson.encode(s or '')
end

local function split_ids(csv)
  local out = {}
  if csv then
    for id in string.gmatch(csv, '[^,]+') do
      out[#out + 1] = id
    end
  end
  return out
end

-- A flat field/value reply (XINFO's) as a table.
local function fields_of(reply)
  local t = {}
  for i = 1, #reply, 2 do
    t[reply[i]] = reply[i + 1]
  end
  return t
end

local function ready_key(tier)
  return PREFIX .. ':ready:{' .. tier .. '}'
end

local function planning_key()
  return PREFIX .. ':planning'
end

local function tenant_tasks_key(tenant)
  return PREFIX .. ':tenant_tasks:' .. tenant
end

local function lease_key(tier)
  return PREFIX .. ':leases:{' .. tier .. '}'
end

local function parse_token(token)
  local _, entry, step, task = string.match(token or '', '^(%d+):(%d+%-%d+):(%d+):(.+)$')
  return entry, step, task
end

-- Per task and script call: its keys, plus the events and call records to send at the end (one
-- RPUSH and one PUBLISH per task). Step fields are read and written directly (HMGET/HSET at the
-- point of use): the script is atomic, so nothing needs caching, and a cache in Lua costs more
-- than the commands it saves (measured: docs/BENCHMARKS.md).
local TASKS, TASK_ORDER = {}, {}

local function task_ctx(task)
  local c = TASKS[task]
  if c then
    return c
  end
  local tkey = PREFIX .. ':task:{' .. task .. '}'
  c = {
    task = task,
    tkey = tkey,
    skey = tkey .. ':steps',
    ckey = tkey .. ':calls',
    ekey = tkey .. ':events',
    chan = PREFIX .. ':events:{' .. task .. '}',
    events = {},
    calls = {},
    expire = false,
  }
  TASKS[task] = c
  TASK_ORDER[#TASK_ORDER + 1] = c
  return c
end

-- Runs CMD with the arguments HEAD followed by ITEMS, in chunks of at most 400 items (Lua's
-- unpack has a stack limit); calls EACH(reply, index of the chunk's first item) when given and
-- returns the last reply. ITEMS must hold an even count for pair commands (HSET, ZADD).
local function call_all(cmd, head, items, each)
  local reply = 0
  local i = 1
  while i <= #items do
    local j = math.min(i + 399, #items)
    local args = {}
    for _, h in ipairs(head) do
      args[#args + 1] = h
    end
    for k = i, j do
      args[#args + 1] = items[k]
    end
    reply = redis.call(cmd, unpack(args))
    if each then
      each(reply, i)
    end
    i = j + 1
  end
  return reply
end

-- Reads FIELDS of the task's steps hash (false where absent), however many there are.
local function get(c, fields)
  local out = {}
  call_all('HMGET', { c.skey }, fields, function(values, from)
    for k = 1, #values do
      out[from + k - 1] = values[k]
    end
  end)
  return out
end

-- Writes field/value pairs to the task's steps hash.
local function set(c, ...)
  redis.call('HSET', c.skey, ...)
end

local function rpush_all(key, items)
  return call_all('RPUSH', { key }, items)
end

-- Appends an event (its JSON fields after at_ms, without seq); flush_tasks stores and publishes.
local function emit(c, body)
  c.events[#c.events + 1] = '{"at_ms":' .. NOW_S .. ',' .. body .. '}'
end

-- Publishes the task's new STATUS on P:task_changes for live task lists (nothing is kept;
-- a reader that missed changes reloads). TENANT when the caller has it, else read from the task.
local function announce(c, status, tenant)
  tenant = tenant or redis.call('HGET', c.tkey, 'tenant') or ''
  redis.call('PUBLISH', PREFIX .. ':task_changes',
    '0|{"task_id":' .. jstr(c.task) .. ',"tenant":' .. jstr(tenant) .. ',"status":"' .. status .. '"}')
end

-- Expires a finished task's keys after TTL seconds (at flush_tasks, after its last event).
local function expire_task(c)
  c.expire = true
end

-- Sends each task's deferred work: the call records, the events (one RPUSH, one PUBLISH
-- "SEQ|JSON\nJSON…"), then the expiry of a finished task. Every script that touches a task calls
-- it before it returns.
local function flush_tasks()
  for _, c in ipairs(TASK_ORDER) do
    if #c.calls > 0 then
      rpush_all(c.ckey, c.calls)
    end
    if #c.events > 0 then
      local last = rpush_all(c.ekey, c.events)
      redis.call('PUBLISH', c.chan, (last - #c.events + 1) .. '|' .. table.concat(c.events, '\n'))
    end
    if c.expire and TTL > 0 then
      for _, key in ipairs({ c.tkey, c.skey, c.ckey, c.ekey }) do
        redis.call('EXPIRE', key, TTL)
      end
    end
  end
  TASKS, TASK_ORDER = {}, {}
end

-- Lease changes are collected per tier and applied by flush_leases() at the end of a script, so
-- a batch of N steps costs one ZREM, one XACK and one ZADD instead of N of each. Nothing in a
-- script reads the lease set after changing it, so deferring is safe; every script that changes
-- leases calls flush_leases() before it returns.
local LEASES = {}

local function tier_leases(tier)
  local l = LEASES[tier]
  if not l then
    l = { forget = {}, ack = {}, add = {} }
    LEASES[tier] = l
  end
  return l
end

-- Forgets a lease token: it no longer expires.
local function forget_lease(tier, token)
  local l = tier_leases(tier)
  l.forget[#l.forget + 1] = token
end

-- Forgets a lease and acknowledges its stream entry. Acknowledged entries are not deleted one by
-- one (XDEL costs several microseconds each): the claim script trims the stream below its oldest
-- pending entry instead (XTRIM MINID ~), which frees whole nodes.
-- ENTRY: the token's stream entry when the caller has parsed it already.
local function drop_lease(tier, token, entry)
  forget_lease(tier, token)
  entry = entry or parse_token(token)
  if entry then
    local l = tier_leases(tier)
    l.ack[#l.ack + 1] = entry
  end
end

-- Adds a lease token expiring at DEADLINE (ms, as a decimal string).
local function add_lease(tier, token, deadline)
  local l = tier_leases(tier)
  l.add[#l.add + 1] = deadline
  l.add[#l.add + 1] = token
end

local function flush_leases()
  for tier, l in pairs(LEASES) do
    call_all('ZREM', { lease_key(tier) }, l.forget)
    call_all('XACK', { ready_key(tier), GROUP }, l.ack)
    call_all('ZADD', { lease_key(tier) }, l.add)
  end
  LEASES = {}
end

-- Ends a script: sends the deferred lease and task work.
local function flush_all()
  flush_leases()
  flush_tasks()
end

local function enqueue(c, step, tier)
  redis.call('XADD', ready_key(tier), '*', 't', c.task, 's', step)
end

-- Counts a step as terminal; remembers how many steps of the task are still open (c.open).
-- Tasks started before `_:open` existed keep their count in the task hash (c.legacy; a caller
-- that has read `_:open` already sets it, saving the HEXISTS).
local function close_step(c)
  if c.legacy == nil then
    c.legacy = redis.call('HEXISTS', c.skey, '_:open') == 0
  end
  if c.legacy then
    c.open = redis.call('HINCRBY', c.tkey, 'open', -1)
  else
    c.open = redis.call('HINCRBY', c.skey, '_:open', -1)
  end
end

-- Whether any of the steps DEPS (CSV) completed.
local function any_complete(c, deps_csv)
  local names = {}
  for i, id in ipairs(split_ids(deps_csv)) do
    names[i] = id .. ':state'
  end
  for _, state in ipairs(get(c, names)) do
    if state == 'complete' then
      return true
    end
  end
  return false
end

-- Lowers a dependent's count of unfinished dependencies; at zero, if it is still pending (not
-- skipped meanwhile), it is ready and enqueued. AFTER_FAILURE: a failed dependency released a step
-- that tolerates failed dependencies (the synthesis step); if none of its dependencies completed it
-- is not enqueued and true is returned, so the caller skips it (no model call answers from nothing).
local function release_dependent(c, dep, ready, after_failure)
  if redis.call('HINCRBY', c.skey, dep .. ':pending', -1) > 0 then
    return false
  end
  local f = redis.call('HMGET', c.skey, dep .. ':state', dep .. ':tier')
  if f[1] ~= 'pending' then
    return false
  end
  if after_failure and not any_complete(c, redis.call('HGET', c.skey, dep .. ':deps')) then
    return true
  end
  redis.call('HSET', c.skey, dep .. ':state', 'ready')
  enqueue(c, dep, f[2])
  ready[#ready + 1] = dep
  return false
end

-- Propagates a terminal step to its dependents (NEXT: their ids, CSV): decrements pending counts
-- (collecting newly ready steps, which are enqueued) or, after a failure, skips dependents that
-- cannot run without it: a step that does not tolerate failed dependencies at once, one that does
-- (the synthesis step) once its last dependency ends and none of them completed. A success reads
-- nothing of a dependent until its count reaches zero.
local function settle(c, step, next_csv, succeeded, ready, skipped)
  if not next_csv then
    return
  end
  for dep in string.gmatch(next_csv, '[^,]+') do
    if succeeded then
      release_dependent(c, dep, ready)
    else
      local f = redis.call('HMGET', c.skey, dep .. ':state', dep .. ':tol', dep .. ':next')
      if f[1] == 'pending' then
        local reason
        if f[2] ~= '1' then
          reason = 'dependency step ' .. step .. ' did not complete'
        elseif release_dependent(c, dep, ready, true) then
          reason = 'no dependency step completed, so there is nothing to answer from'
        end
        if reason then
          set(c, dep .. ':state', 'skipped', dep .. ':error', reason, dep .. ':finished', NOW_S)
          close_step(c)
          skipped[#skipped + 1] = dep
          emit(c, '"type":"step_skipped","step_id":' .. dep .. ',"reason":' .. jstr(reason))
          settle(c, dep, f[3], false, ready, skipped)
        end
      end
    end
  end
end

-- Finishes the task once no step is open (c.open, from the last close_step); returns its final
-- status, or false. Steps a re-plan superseded (the task hash's `sup`) do not count; a plan
-- closed cut short (`cut`, streamed.lua) cannot end `complete`, and its reason comes first.
local function finish_if_done(c)
  if c.open == nil or c.open > 0 then
    return false
  end
  local f = redis.call('HMGET', c.tkey, 'status', 'ids', 'sup', 'cut')
  if f[1] ~= 'running' then
    return false
  end
  local superseded = {}
  for _, id in ipairs(split_ids(f[3])) do
    superseded[id] = true
  end
  local ids = {}
  for _, id in ipairs(split_ids(f[2])) do
    if not superseded[id] then
      ids[#ids + 1] = id
    end
  end
  local names = {}
  for i, id in ipairs(ids) do
    names[i] = id .. ':state'
  end
  local states = get(c, names)
  local done, ended = 0, {}
  for i, id in ipairs(ids) do
    if states[i] == 'complete' then
      done = done + 1
    elseif states[i] == 'failed' or states[i] == 'skipped' then
      ended[#ended + 1] = i
    end
  end
  local status = 'partial'
  if done == 0 then
    status = 'failed'
  elseif done == #ids and not f[4] then
    status = 'complete'
  end
  local fields = { 'status', status, 'finished', NOW_S }
  if status ~= 'complete' then
    -- Only the steps that did not complete have an error to read.
    local error_names = {}
    for k, i in ipairs(ended) do
      error_names[k] = ids[i] .. ':error'
    end
    local errors = get(c, error_names)
    local reasons = {}
    if f[4] then
      reasons[1] = f[4]
    end
    for k, i in ipairs(ended) do
      reasons[#reasons + 1] = 'step ' .. ids[i] .. ' ' .. states[i] .. ': ' .. (errors[k] or '')
    end
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = table.concat(reasons, '; ')
  end
  redis.call('HSET', c.tkey, unpack(fields))
  emit(c, '"type":"task_completed","status":"' .. status .. '"')
  announce(c, status)
  expire_task(c)
  return status
end

-- Fails a step for good: dead letter, event, dependents skipped. ERRORS: the items of a JSON
-- array of the last worker's earlier attempt errors (or nil); the deliveries lost before
-- (N:lost, written by claim.lua) come first in the letter's attempt_errors.
local function fail_step(c, step, err, attempts, ready, skipped, errors)
  local f = get(c, { step .. ':tool', step .. ':tier', step .. ':deliveries', step .. ':next',
    step .. ':lost' })
  set(c, step .. ':state', 'failed', step .. ':error', err, step .. ':attempts', attempts,
    step .. ':finished', NOW_S)
  close_step(c)
  local history = {}
  if f[5] and f[5] ~= '' then
    history[#history + 1] = f[5]
  end
  if errors and errors ~= '' then
    history[#history + 1] = errors
  end
  local tenant = redis.call('HGET', c.tkey, 'tenant')
  local owner = ''
  if tenant then
    owner = ',"tenant":' .. jstr(tenant)
  end
  local letter = '{"task_id":' .. jstr(c.task) .. owner .. ',"step_id":' .. step .. ',"tool_name":' ..
    jstr(f[1]) .. ',"tier":' .. jstr(f[2]) .. ',"error":' .. jstr(err) .. ',"attempts":' ..
    attempts .. ',"deliveries":' .. (f[3] or '0') .. ',"at_ms":' .. NOW_S ..
    ',"attempt_errors":[' .. table.concat(history, ',') .. ']}'
  redis.call('XADD', PREFIX .. ':dlq', 'MAXLEN', '~', DLQ_MAX, '*', 'd', letter)
  emit(c, '"type":"step_failed","step_id":' .. step .. ',"error":' .. jstr(err))
  settle(c, step, f[4], false, ready, skipped)
end

-- Notes that delivery DELIVERY of STEP, held by WORKER, was lost (its lease expired), for the
-- step's dead letter should it fail (N:lost: the items of a JSON array of strings).
local function note_lost_delivery(c, step, delivery, worker, lost)
  local note = jstr('delivery ' .. (delivery or '?') .. ' (worker ' .. (worker or '?') ..
    '): its lease expired; the worker died, hung or lost the store')
  if lost and lost ~= '' then
    note = lost .. ',' .. note
  end
  set(c, step .. ':lost', note)
end

-- Skips a step of a cancelled task (cancel.lua; a cancelled task's step that claim.lua or
-- release.lua would otherwise hand out again).
local function skip_cancelled(c, step)
  set(c, step .. ':state', 'skipped', step .. ':error', 'cancelled', step .. ':finished', NOW_S)
  close_step(c)
  emit(c, '"type":"step_skipped","step_id":' .. step .. ',"reason":"cancelled"')
end
