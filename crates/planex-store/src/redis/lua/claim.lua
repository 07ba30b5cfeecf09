-- claim: hands up to MAX steps of one tier to a worker, leasing each until now + LEASE_MS.
-- ARGV[5] tier, ARGV[6] worker (consumer name), ARGV[7] max, ARGV[8] lease ms.
-- First redelivers steps whose lease expired (XCLAIM to this worker; a step already delivered
-- MAX_DELIVERIES times is dead-lettered as poison instead), then reads new entries with
-- XREADGROUP COUNT and trims acknowledged entries off the stream. Each step's fields are read
-- with one HMGET and written with one HSET; a task's text is read once per call.
-- Returns {now, next lease deadline or -1, last stream id or '', leases...}, each lease
-- {token, task id, task text, spec JSON, delivery, {dep id, dep result, ...}, resumed (1 when an
-- earlier claim of the step started it), the task's traceparent or ''}.
-- The caller blocks (on its own connection) only when no lease came back.

local tier, worker = ARGV[5], ARGV[6]
local max, lease_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
local deadline = num(now + lease_ms)
local rkey, lkey = ready_key(tier), lease_key(tier)
local started_tail = ',"tier":' .. jstr(tier) .. ',"worker":' .. jstr(worker) .. ',"delivery":'
local leased = {}

-- The fields a claim reads of a step, in this order: spec, deliveries, started, deps, state,
-- and for a redelivery also lease, attempts, worker and lost (earlier lost deliveries).
local function step_fields(c, step, redelivery)
  if redelivery then
    return redis.call('HMGET', c.skey, step, step .. ':deliveries', step .. ':started',
      step .. ':deps', step .. ':state', step .. ':lease', step .. ':attempts', step .. ':worker',
      step .. ':lost')
  end
  return redis.call('HMGET', c.skey, step, step .. ':deliveries', step .. ':started',
    step .. ':deps', step .. ':state')
end

-- Leases one step whose stream entry is ENTRY. F holds its fields (step_fields).
local function lease(c, step, entry, f)
  local delivery = tonumber(f[2] or '0') + 1
  local token = delivery .. ':' .. entry .. ':' .. step .. ':' .. c.task
  if f[3] then
    set(c, step .. ':state', 'running', step .. ':deliveries', delivery, step .. ':worker', worker,
      step .. ':lease', token)
  else
    set(c, step .. ':state', 'running', step .. ':deliveries', delivery, step .. ':worker', worker,
      step .. ':lease', token, step .. ':started', NOW_S)
  end
  add_lease(tier, token, deadline)
  emit(c, '"type":"step_started","step_id":' .. step .. started_tail .. delivery)
  leased[#leased + 1] = { token = token, c = c, spec = f[1] or '', delivery = delivery,
    deps = split_ids(f[4]), resumed = f[3] and 1 or 0 }
end

-- 1. Expired leases, earliest first.
local expired = redis.call('ZRANGEBYSCORE', lkey, '-inf', now, 'LIMIT', 0, max + 16)
for _, token in ipairs(expired) do
  local entry, step, task = parse_token(token)
  if not task then
    forget_lease(tier, token)
  else
    local c = task_ctx(task)
    local f = step_fields(c, step, true)
    if f[5] ~= 'running' or f[6] ~= token then
      -- Stale: the step finished or moved on under another lease.
      forget_lease(tier, token)
    elseif redis.call('HGET', c.tkey, 'status') == 'cancelled' then
      -- Its task was cancelled while a worker that vanished held it: it is not run again.
      drop_lease(tier, token)
      skip_cancelled(c, step)
    elseif tonumber(f[2] or '0') >= MAX_DELIVERIES then
      drop_lease(tier, token)
      note_lost_delivery(c, step, f[2], f[8], f[9])
      local ready, skipped = {}, {}
      fail_step(c, step, 'poison step: delivered ' .. (f[2] or '0') ..
        ' times and never completed (its worker died or hung each time)', f[7] or '0', ready, skipped)
      finish_if_done(c)
    elseif #leased < max then
      forget_lease(tier, token)
      redis.call('XCLAIM', rkey, GROUP, worker, 0, entry, 'JUSTID')
      note_lost_delivery(c, step, f[2], f[8], f[9])
      lease(c, step, entry, f)
    else
      break
    end
  end
end

-- 2. New entries.
local last_id = ''
if #leased < max then
  local read = redis.pcall('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', max - #leased,
    'STREAMS', rkey, '>')
  if type(read) == 'table' and read.err then
    if string.find(read.err, 'NOGROUP', 1, true) then
      redis.call('XGROUP', 'CREATE', rkey, GROUP, '0', 'MKSTREAM')
      read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', max - #leased,
        'STREAMS', rkey, '>')
    else
      flush_all()
      return redis.error_reply(read.err)
    end
  end
  local entries = read and read[1][2] or {}
  local stale = {}
  for _, e in ipairs(entries) do
    local entry, task, step = e[1], e[2][2], e[2][4]
    local f = false
    local c = false
    if task and step then
      c = task_ctx(task)
      f = step_fields(c, step)
    end
    if f and f[5] == 'ready' then
      lease(c, step, entry, f)
    else
      -- Stale entry (its step finished meanwhile, or its task expired): acknowledge it.
      stale[#stale + 1] = entry
    end
  end
  call_all('XACK', { rkey, GROUP }, stale)
  -- Every entry up to the last one read has been delivered; those not pending are acknowledged
  -- and can go. Trimming below the oldest pending entry (or the last read one) with '~' frees
  -- whole stream nodes at a time.
  -- (The ranged XPENDING form finds the oldest pending entry in O(log n); the summary form
  -- would walk every consumer the group ever had.)
  if #entries > 0 then
    local oldest = redis.call('XPENDING', rkey, GROUP, '-', '+', 1)
    local min_id = entries[#entries][1]
    if oldest[1] then
      min_id = oldest[1][1]
    end
    redis.call('XTRIM', rkey, 'MINID', '~', min_id)
  end
  if #leased == 0 then
    last_id = fields_of(redis.call('XINFO', 'STREAM', rkey))['last-generated-id'] or ''
  end
end

-- 3. The leased steps' task texts (one read per task) and dependency results.
local out = {}
for _, l in ipairs(leased) do
  local c = l.c
  if not c.text then
    -- Tasks started before `_:text` existed keep their text only in the task hash.
    local kept = redis.call('HMGET', c.skey, '_:text', '_:tp')
    c.text = kept[1] or redis.call('HGET', c.tkey, 'task') or ''
    c.tp = kept[2] or ''
  end
  local deps = {}
  if #l.deps > 0 then
    local names = {}
    for k, d in ipairs(l.deps) do
      names[k] = d .. ':result'
    end
    local results = get(c, names)
    for k, d in ipairs(l.deps) do
      if results[k] then
        deps[#deps + 1] = d
        deps[#deps + 1] = results[k]
      end
    end
  end
  out[#out + 1] = { l.token, c.task, c.text, l.spec, l.delivery, deps, l.resumed, c.tp }
end

flush_all()
local next_deadline = -1
if #out == 0 then
  local first = redis.call('ZRANGE', lkey, 0, 0, 'WITHSCORES')
  if first[2] then
    next_deadline = tonumber(first[2])
  end
end

local reply = { now, next_deadline, last_id }
for _, l in ipairs(out) do
  reply[#reply + 1] = l
end
return reply
