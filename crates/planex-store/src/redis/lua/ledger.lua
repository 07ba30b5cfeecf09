-- The spend ledger: every operation is this one script, so checking limits and booking happen
-- atomically on the server (no check-then-spend race between API replicas).
-- Amounts are integer nano-dollars (exact in Lua's doubles up to 2^53, i.e. $9,007,199 per account).
-- Layout: P:spend:{SCOPE} hash  NAME:spent, NAME:reserved
--         P:resv:{ID}     hash  amount (the hold), cap ('' = none), accounts (JSON [[scope, name, limit], ...]),
--                               used (settled draws + open draws' worst cases), closed, d:CALL (an open
--                               draw: its worst case), s:CALL (a settled draw: 'cost prompt completion
--                               cached', kept so a redelivery can record it)
--         P:resv          set   ids of the reservations held (for recovery after a holder died)
-- ARGV[1] prefix, ARGV[2] operation, then:
--   reserve   id, amount, cap, n, n x (scope, name, limit)  -> {'granted'} | {'dup'} | denial
--   extend    id, amount                                    -> {'granted'} | {'unknown'} | denial
--   reconcile id, actual                                    -> {'settled'} | {'unknown'}
--   release   id                                            -> {'settled'} | {'unknown'}
--   hold      id, amount                                    -> {'granted'} | {'unknown'} | denial
--   draw      id, call, amount                              -> {'granted'} | {'unknown'} | {'closed'} | denial
--   settle_draw id, call, actual, usage ('prompt completion cached') -> {'settled'} | {'unknown'}
--   draws     id, prefix                                    -> call, amount, usage ('' when open), ...
--   close     id                                            -> {'closed'} | {'unknown'}
--   charge    amount, n, n x (scope, name)                  -> {'charged'}
--   held                                                    -> ids of held reservations
-- denial = {'denied', scope, name, limit, spent, reserved, requested, over_by}

local P, op = ARGV[1], ARGV[2]
local HELD = P .. ':resv'

local function num(x)
  if x == 0 then
    return '0'
  end
  return string.format('%.0f', x)
end

local function spend_key(scope)
  return P .. ':spend:{' .. scope .. '}'
end

local function balance(scope, name)
  local v = redis.call('HMGET', spend_key(scope), name .. ':spent', name .. ':reserved')
  return tonumber(v[1] or '0'), tonumber(v[2] or '0')
end

local function book(accounts, reserved, spent)
  for _, a in ipairs(accounts) do
    local key = spend_key(a[1])
    local r = redis.call('HINCRBY', key, a[2] .. ':reserved', num(reserved))
    if r < 0 then
      redis.call('HSET', key, a[2] .. ':reserved', 0)
    end
    redis.call('HINCRBY', key, a[2] .. ':spent', num(spent))
  end
end

-- The first limit AMOUNT does not fit (held = what the reservation already holds), or nil.
local function check(id, accounts, cap, held, amount)
  if cap ~= '' and held + amount > tonumber(cap) then
    return { 'denied', 'reservation', id, cap, '0', num(held), num(amount), num(held + amount - tonumber(cap)) }
  end
  for _, a in ipairs(accounts) do
    if a[3] ~= '' then
      local spent, reserved = balance(a[1], a[2])
      local limit = tonumber(a[3])
      local total = spent + reserved + amount
      if total > limit then
        return { 'denied', a[1], a[2], a[3], num(spent), num(reserved), num(amount), num(total - limit) }
      end
    end
  end
  return nil
end

if op == 'reserve' then
  local id, amount, cap, n = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
  local rkey = P .. ':resv:{' .. id .. '}'
  if redis.call('EXISTS', rkey) == 1 then
    return { 'dup' }
  end
  local accounts = {}
  for i = 1, n do
    local at = 6 + 3 * (i - 1)
    accounts[i] = { ARGV[at + 1], ARGV[at + 2], ARGV[at + 3] }
  end
  local denial = check(id, accounts, cap, 0, amount)
  if denial then
    return denial
  end
  book(accounts, amount, 0)
  redis.call('HSET', rkey, 'amount', num(amount), 'cap', cap, 'accounts', cjson.encode(accounts))
  redis.call('SADD', HELD, id)
  return { 'granted' }
end

if op == 'held' then
  return redis.call('SMEMBERS', HELD)
end

if op == 'charge' then
  local amount, n = ARGV[3], tonumber(ARGV[4])
  for i = 1, n do
    local at = 4 + 2 * (i - 1)
    redis.call('HINCRBY', spend_key(ARGV[at + 1]), ARGV[at + 2] .. ':spent', amount)
  end
  return { 'charged' }
end

local id = ARGV[3]
local rkey = P .. ':resv:{' .. id .. '}'
local held = redis.call('HMGET', rkey, 'amount', 'cap', 'accounts', 'used', 'closed')
if not held[1] then
  if op == 'draws' then
    return {}
  end
  redis.call('SREM', HELD, id)
  return { 'unknown' }
end
local held_amount, cap, accounts = tonumber(held[1]), held[2] or '', cjson.decode(held[3] or '[]')
local used = tonumber(held[4] or '0')

-- Grows the hold by EXTRA without a check (money already spent).
local function grow(extra)
  book(accounts, extra, 0)
  held_amount = held_amount + extra
  redis.call('HSET', rkey, 'amount', num(held_amount))
end

if op == 'extend' then
  local amount = tonumber(ARGV[4])
  local denial = check(id, accounts, cap, held_amount, amount)
  if denial then
    return denial
  end
  book(accounts, amount, 0)
  redis.call('HSET', rkey, 'amount', num(held_amount + amount))
  return { 'granted' }
end

if op == 'reconcile' then
  book(accounts, -held_amount, math.max(tonumber(ARGV[4]), used))
  redis.call('DEL', rkey)
  redis.call('SREM', HELD, id)
  return { 'settled' }
end

if op == 'release' then
  book(accounts, -held_amount, 0)
  redis.call('DEL', rkey)
  redis.call('SREM', HELD, id)
  return { 'settled' }
end

if op == 'hold' then
  local target = math.max(tonumber(ARGV[4]), used)
  if target > held_amount then
    local denial = check(id, accounts, cap, held_amount, target - held_amount)
    if denial then
      return denial
    end
    grow(target - held_amount)
  elseif target < held_amount then
    book(accounts, target - held_amount, 0)
    redis.call('HSET', rkey, 'amount', num(target))
  end
  return { 'granted' }
end

if op == 'draw' then
  local call, amount = ARGV[4], tonumber(ARGV[5])
  if held[5] == '1' then
    return { 'closed' }
  end
  -- Idempotent: a call already drawn (a retry after a lost reply) is granted again, unchanged.
  if redis.call('HEXISTS', rkey, 'd:' .. call) == 1 then
    return { 'granted' }
  end
  if cap ~= '' and used + amount > tonumber(cap) then
    return { 'denied', 'reservation', id, cap, num(used), '0', num(amount), num(used + amount - tonumber(cap)) }
  end
  local need = used + amount - held_amount
  if need > 0 then
    local denial = check(id, accounts, '', 0, need)
    if denial then
      return denial
    end
    grow(need)
  end
  redis.call('HSET', rkey, 'used', num(used + amount))
  redis.call('HSET', rkey, 'd:' .. call, num(amount))
  return { 'granted' }
end

if op == 'settle_draw' then
  local call, actual = ARGV[4], tonumber(ARGV[5])
  local worst = redis.call('HGET', rkey, 'd:' .. call)
  if not worst then
    return { 'unknown' }
  end
  used = used - tonumber(worst) + actual
  redis.call('HDEL', rkey, 'd:' .. call)
  redis.call('HSET', rkey, 'used', num(used))
  if actual > 0 then
    redis.call('HSET', rkey, 's:' .. call, num(actual) .. ' ' .. ARGV[6])
  end
  if used > held_amount then
    grow(used - held_amount)
  end
  return { 'settled' }
end

if op == 'draws' then
  local prefix = ARGV[4]
  local fields = redis.call('HGETALL', rkey)
  local out = {}
  for i = 1, #fields, 2 do
    local f = fields[i]
    local kind, call = string.sub(f, 1, 2), string.sub(f, 3)
    if (kind == 'd:' or kind == 's:') and string.sub(call, 1, #prefix) == prefix then
      local cost, usage = fields[i + 1], ''
      if kind == 's:' then
        cost, usage = string.match(fields[i + 1], '^(%S+) (.*)$')
      end
      out[#out + 1] = call
      out[#out + 1] = cost
      out[#out + 1] = usage
    end
  end
  return out
end

if op == 'close' then
  redis.call('HSET', rkey, 'closed', '1')
  return { 'closed' }
end

return redis.error_reply('unknown ledger operation ' .. tostring(op))
