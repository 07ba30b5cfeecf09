-- claim: hands up to MAX steps of one tier to a worker, leasing each until now + LEASE_MS.
-- ARGV[5] tier, ARGV[6] worker (consumer name), ARGV[7] max, ARGV[8] lease ms.
-- First redelivers steps whose lease expired (XCLAIM to this worker; a step already delivered
-- MAX_DELIVERIES times is dead-lettered as poison instead), then reads new entries with
-- XREADGROUP COUNT. Returns {now, next lease deadline or -1, last stream id or '', leases...},
-- each lease {token, task id, task text, spec JSON, delivery, {dep id, dep result, ...}}.
-- The caller blocks (on its own connection) only when no lease came back.

local tier, worker = ARGV[5], ARGV[6]
local max, lease_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
local rkey, lkey = ready_key(tier), lease_key(tier)
local out = {}
local texts = {}

-- Leases one step whose stream entry is ENTRY. F holds the step's spec, deliveries, started, deps.
local function lease(c, step, entry, f)
  local delivery = tonumber(f[2] or '0') + 1
  local token = delivery .. ':' .. entry .. ':' .. step .. ':' .. c.task
  local fields = { step .. ':state', 'running', step .. ':deliveries', delivery,
    step .. ':worker', worker, step .. ':lease', token }
  if not f[3] then
    fields[#fields + 1] = step .. ':started'
    fields[#fields + 1] = num(now)
  end
  redis.call('HSET', c.skey, unpack(fields))
  redis.call('ZADD', lkey, num(now + lease_ms), token)
  emit(c, '"type":"step_started","step_id":' .. step .. ',"tier":' .. jstr(tier) ..
    ',"worker":' .. jstr(worker) .. ',"delivery":' .. delivery)
  local deps = {}
  local dep_ids = split_ids(f[4])
  if #dep_ids > 0 then
    local query = {}
    for i, d in ipairs(dep_ids) do
      query[i] = d .. ':result'
    end
    local results = redis.call('HMGET', c.skey, unpack(query))
    for i, d in ipairs(dep_ids) do
      if results[i] then
        deps[#deps + 1] = d
        deps[#deps + 1] = results[i]
      end
    end
  end
  local text = texts[c.task]
  if not text then
    text = redis.call('HGET', c.tkey, 'task') or ''
    texts[c.task] = text
  end
  out[#out + 1] = { token, c.task, text, f[1] or '', delivery, deps }
end

local function step_fields(c, step)
  return redis.call('HMGET', c.skey, step, step .. ':deliveries', step .. ':started', step .. ':deps',
    step .. ':state', step .. ':lease', step .. ':attempts')
end

-- 1. Expired leases, earliest first.
local expired = redis.call('ZRANGEBYSCORE', lkey, '-inf', now, 'LIMIT', 0, max + 16)
for _, token in ipairs(expired) do
  local entry, step, task = parse_token(token)
  if not task then
    redis.call('ZREM', lkey, token)
  else
    local c = task_ctx(task, now)
    local f = step_fields(c, step)
    if f[5] ~= 'running' or f[6] ~= token then
      -- Stale: the step finished or moved on under another lease.
      redis.call('ZREM', lkey, token)
    elseif tonumber(f[2] or '0') >= MAX_DELIVERIES then
      drop_lease(tier, token)
      local ready, skipped = {}, {}
      fail_step(c, step, 'poison step: delivered ' .. (f[2] or '0') ..
        ' times and never completed (its worker died or hung each time)', f[7] or '0', ready, skipped)
      finish_if_done(c)
    elseif #out < max then
      redis.call('ZREM', lkey, token)
      redis.call('XCLAIM', rkey, GROUP, worker, 0, entry, 'JUSTID')
      lease(c, step, entry, f)
    else
      break
    end
  end
end

-- 2. New entries.
local last_id = ''
if #out < max then
  local read = redis.pcall('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', max - #out,
    'STREAMS', rkey, '>')
  if type(read) == 'table' and read.err then
    if string.find(read.err, 'NOGROUP', 1, true) then
      redis.call('XGROUP', 'CREATE', rkey, GROUP, '0', 'MKSTREAM')
      read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', max - #out,
        'STREAMS', rkey, '>')
    else
      return redis.error_reply(read.err)
    end
  end
  if read then
    for _, e in ipairs(read[1][2]) do
      local entry, kv = e[1], e[2]
      local task, step = kv[2], kv[4]
      local f = false
      local c = false
      if task and step then
        c = task_ctx(task, now)
        f = step_fields(c, step)
      end
      if f and f[5] == 'ready' then
        lease(c, step, entry, f)
      else
        -- Stale entry (its step finished meanwhile, or its task expired): drop it.
        redis.call('XACK', rkey, GROUP, entry)
        redis.call('XDEL', rkey, entry)
      end
    end
  end
  if #out == 0 then
    local info = redis.call('XINFO', 'STREAM', rkey)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        last_id = info[i + 1]
      end
    end
  end
end

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
