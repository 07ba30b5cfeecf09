-- list: a page of one tenant's tasks, newest first (Store::list_tasks).
-- ARGV[5] tenant ('' for none), ARGV[6] cursor ms ('' for the first page), ARGV[7] cursor task id,
-- ARGV[8] status wanted ('' for any), ARGV[9] page size, ARGV[10] most index entries to walk.
-- Returns { next_ms, next_id, rows }: next_* are '' when the listing is exhausted; each row is
-- { id, status, task (first 800 bytes), cost_center, task_type, created, finished } (missing
-- fields nil). Index entries of tasks whose keys expired are taken out.

local index = tenant_tasks_key(ARGV[5])
local max = ARGV[6] == '' and '+inf' or ARGV[6]
local cursor_ms = tonumber(ARGV[6])
local cursor_id = ARGV[7]
local want = ARGV[8]
local limit = math.max(1, tonumber(ARGV[9]))
local scan = tonumber(ARGV[10])
local rows, gone = {}, {}
local walked, offset = 0, 0
local last_ms, last_id = '', ''
local more = false
while not more do
  local batch = redis.call('ZREVRANGEBYSCORE', index, max, '-inf', 'WITHSCORES', 'LIMIT', offset, 200)
  if #batch == 0 then
    break
  end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local id, ms = batch[i], batch[i + 1]
    -- Entries of the cursor's millisecond up to the cursor itself were on earlier pages.
    local seen = cursor_ms and tonumber(ms) == cursor_ms and id >= cursor_id
    if not seen then
      if #rows >= limit or walked >= scan then
        more = true
        break
      end
      walked = walked + 1
      last_ms, last_id = num(tonumber(ms)), id
      local f = redis.call('HMGET', PREFIX .. ':task:{' .. id .. '}', 'status', 'task', 'cost_center',
        'task_type', 'created', 'finished')
      if not f[1] then
        gone[#gone + 1] = id
      elseif want == '' or f[1] == want then
        rows[#rows + 1] = { id, f[1], string.sub(f[2] or '', 1, 800), f[3], f[4], f[5], f[6] }
      end
    end
  end
end
if #gone > 0 then
  redis.call('ZREM', index, unpack(gone))
end
if not more then
  last_ms, last_id = '', ''
end
return { last_ms, last_id, rows }
