-- planex Redis store: helpers shared by every script. Each script is this file followed by its
-- own body (see scripts.rs), so the helpers exist once in the source and the scripts stay atomic.
--
-- Common arguments of every script: ARGV[1] key prefix ("px"), ARGV[2] seconds to keep a finished
-- task (0 = forever), ARGV[3] dead-letter stream length cap, ARGV[4] delivery bound (poison steps).
-- Script-specific arguments start at ARGV[5].
--
-- Layout (a task's keys share the hash tag {task id}; a tier's keys share {tier}):
--   P:task:{id}          hash  task, tenant, cost_center, status, created, finished, error, plan,
--                              ids (step ids, ascending), nsteps, open (steps not terminal)
--   P:task:{id}:steps    hash  N = spec JSON, N:state, N:tier, N:tool, N:deps, N:next (dependents),
--                              N:pending, N:tol, N:deliveries, N:attempts, N:result, N:error,
--                              N:worker, N:started, N:finished, N:lease (current lease token)
--   P:task:{id}:calls    list  CallRecord JSON
--   P:task:{id}:events   list  event JSON without seq (seq = index + 1); published on
--   P:events:{id}        channel "SEQ|JSON"
--   P:ready:{tier}       stream of {t = task id, s = step id}, consumer group "workers"
--   P:leases:{tier}      zset  lease token -> deadline (server ms)
--   P:dlq                stream of {d = DeadLetter JSON}
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

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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

local function ready_key(tier)
  return PREFIX .. ':ready:{' .. tier .. '}'
end

local function lease_key(tier)
  return PREFIX .. ':leases:{' .. tier .. '}'
end

local function parse_token(token)
  local _, entry, step, task = string.match(token or '', '^(%d+):(%d+%-%d+):(%d+):(.+)$')
  return entry, step, task
end

-- The keys and clock of one task, for one script call.
local function task_ctx(task, now)
  local tkey = PREFIX .. ':task:{' .. task .. '}'
  return {
    task = task,
    now = now,
    tkey = tkey,
    skey = tkey .. ':steps',
    ckey = tkey .. ':calls',
    ekey = tkey .. ':events',
    chan = PREFIX .. ':events:{' .. task .. '}',
  }
end

-- HSET in chunks (Lua's unpack has a stack limit).
local function hset_all(key, pairs_list)
  local i = 1
  while i <= #pairs_list do
    local j = math.min(i + 399, #pairs_list)
    redis.call('HSET', key, unpack(pairs_list, i, j))
    i = j + 1
  end
end

local function rpush_all(key, items)
  local i = 1
  while i <= #items do
    local j = math.min(i + 399, #items)
    redis.call('RPUSH', key, unpack(items, i, j))
    i = j + 1
  end
end

-- Appends an event (its JSON fields after at_ms, without seq) and publishes "SEQ|JSON".
local function emit(c, body)
  local json = '{"at_ms":' .. num(c.now) .. ',' .. body .. '}'
  local seq = redis.call('RPUSH', c.ekey, json)
  redis.call('PUBLISH', c.chan, seq .. '|' .. json)
end

-- Forgets a lease: no longer expiring, its stream entry acknowledged and deleted.
local function drop_lease(tier, token)
  local entry = parse_token(token)
  redis.call('ZREM', lease_key(tier), token)
  if entry then
    redis.call('XACK', ready_key(tier), GROUP, entry)
    redis.call('XDEL', ready_key(tier), entry)
  end
end

local function enqueue(c, step, tier)
  redis.call('XADD', ready_key(tier), '*', 't', c.task, 's', step)
end

-- Counts a step as terminal; remembers how many steps of the task are still open.
local function close_step(c)
  c.open = redis.call('HINCRBY', c.tkey, 'open', -1)
end

-- Propagates a terminal step to its dependents (NEXT: their ids, CSV): decrements pending counts
-- (collecting newly ready steps, which are enqueued) or skips dependents that cannot run without
-- it. On success only the counter is touched until it reaches zero (one command per edge).
local function settle(c, step, next_csv, succeeded, ready, skipped)
  for _, dep in ipairs(split_ids(next_csv)) do
    if succeeded then
      if redis.call('HINCRBY', c.skey, dep .. ':pending', -1) <= 0 then
        local f = redis.call('HMGET', c.skey, dep .. ':state', dep .. ':tier')
        if f[1] == 'pending' then
          redis.call('HSET', c.skey, dep .. ':state', 'ready')
          enqueue(c, dep, f[2])
          ready[#ready + 1] = dep
        end
      end
    else
      local f = redis.call('HMGET', c.skey, dep .. ':state', dep .. ':tol', dep .. ':tier', dep .. ':next')
      if f[1] == 'pending' then
        if f[2] == '1' then
          if redis.call('HINCRBY', c.skey, dep .. ':pending', -1) <= 0 then
            redis.call('HSET', c.skey, dep .. ':state', 'ready')
            enqueue(c, dep, f[3])
            ready[#ready + 1] = dep
          end
        else
          local reason = 'dependency step ' .. step .. ' did not complete'
          redis.call('HSET', c.skey, dep .. ':state', 'skipped', dep .. ':error', reason,
            dep .. ':finished', num(c.now))
          close_step(c)
          skipped[#skipped + 1] = dep
          emit(c, '"type":"step_skipped","step_id":' .. dep .. ',"reason":' .. jstr(reason))
          settle(c, dep, f[4], false, ready, skipped)
        end
      end
    end
  end
end

local function expire_task(c)
  if TTL > 0 then
    for _, key in ipairs({ c.tkey, c.skey, c.ckey, c.ekey }) do
      redis.call('EXPIRE', key, TTL)
    end
  end
end

-- Finishes the task once no step is open (c.open, from the last close_step); returns its final
-- status, or false.
local function finish_if_done(c)
  if c.open == nil or c.open > 0 then
    return false
  end
  local f = redis.call('HMGET', c.tkey, 'status', 'ids')
  if f[1] ~= 'running' then
    return false
  end
  local ids = split_ids(f[2])
  local query = {}
  for _, id in ipairs(ids) do
    query[#query + 1] = id .. ':state'
    query[#query + 1] = id .. ':error'
  end
  local v = redis.call('HMGET', c.skey, unpack(query))
  local done, reasons = 0, {}
  for i, id in ipairs(ids) do
    local state, why = v[2 * i - 1], v[2 * i]
    if state == 'complete' then
      done = done + 1
    elseif state == 'failed' or state == 'skipped' then
      reasons[#reasons + 1] = 'step ' .. id .. ' ' .. state .. ': ' .. (why or '')
    end
  end
  local status = 'partial'
  if done == #ids then
    status = 'complete'
  elseif done == 0 then
    status = 'failed'
  end
  local fields = { 'status', status, 'finished', num(c.now) }
  if status ~= 'complete' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = table.concat(reasons, '; ')
  end
  redis.call('HSET', c.tkey, unpack(fields))
  emit(c, '"type":"task_completed","status":"' .. status .. '"')
  expire_task(c)
  return status
end

-- Fails a step for good: dead letter, event, dependents skipped.
local function fail_step(c, step, err, attempts, ready, skipped)
  local f = redis.call('HMGET', c.skey, step .. ':tool', step .. ':tier', step .. ':deliveries',
    step .. ':next')
  redis.call('HSET', c.skey, step .. ':state', 'failed', step .. ':error', err,
    step .. ':attempts', attempts, step .. ':finished', num(c.now))
  close_step(c)
  local letter = '{"task_id":' .. jstr(c.task) .. ',"step_id":' .. step .. ',"tool_name":' ..
    jstr(f[1]) .. ',"tier":' .. jstr(f[2]) .. ',"error":' .. jstr(err) .. ',"attempts":' ..
    attempts .. ',"deliveries":' .. (f[3] or '0') .. ',"at_ms":' .. num(c.now) .. '}'
  redis.call('XADD', PREFIX .. ':dlq', 'MAXLEN', '~', DLQ_MAX, '*', 'd', letter)
  emit(c, '"type":"step_failed","step_id":' .. step .. ',"error":' .. jstr(err))
  settle(c, step, f[4], false, ready, skipped)
end
