-- BullMQ: KEYS wait, paused (a list before v5), prioritized, delayed, active, meta.
-- A delayed job's score is its timestamp (ms) * 0x1000 plus an order in the
-- millisecond; it is due when its timestamp is at or before now. A paused queue
-- (meta's "paused" field) starts nothing: its startable jobs are "paused". A job's
-- hash (the keys' prefix and its id) holds its timestamp and delay (ms): it became
-- ready at their sum.
local function count()
  kind(KEYS[1], 'list')
  kind(KEYS[2], 'list')
  kind(KEYS[3], 'zset')
  kind(KEYS[4], 'zset')
  kind(KEYS[5], 'list')
  kind(KEYS[6], 'hash')
  local function waiting(key)
    -- a v4 marker ("0:...") at the tail of the list is not a job
    local n = redis.call('LLEN', key)
    local last = redis.call('LINDEX', key, -1)
    if last and string.sub(last, 1, 2) == '0:' then n = n - 1 end
    return n
  end
  local sec, usec = clock()
  local cutoff = string.format('%d', (sec * 1000 + math.floor(usec / 1000) + 1) * 4096 - 1)
  local due = redis.call('ZCOUNT', KEYS[4], '-inf', cutoff)
  local startable = waiting(KEYS[1]) + redis.call('ZCARD', KEYS[3]) + due
  local held = waiting(KEYS[2])
  local ready, paused = startable, held
  local is_paused = redis.call('HEXISTS', KEYS[6], 'paused') == 1
  if is_paused then
    ready, paused = 0, startable + held
  end
  local scheduled, active = 0, 0
  if want.s then scheduled = redis.call('ZCARD', KEYS[4]) - due end
  if want.a then active = redis.call('LLEN', KEYS[5]) end
  local times = {}
  if want.o and not is_paused then
    local prefix = string.sub(KEYS[1], 1, -5) -- "<prefix>:<queue>:" of "...:wait"
    local function job(id)
      local job_key = prefix .. id
      local fields = redis.call('HMGET', job_key, 'timestamp', 'delay')
      local stamp = tonumber(fields[1])
      if stamp then
        table.insert(times, 'ms:' .. string.format('%d', stamp + (tonumber(fields[2]) or 0)))
      elseif redis.call('EXISTS', job_key) == 1 then
        table.insert(times, 'none:' .. string.sub(job_key, 1, 200))
      end
    end
    -- the job each structure hands out next: the wait list's tail (the oldest),
    -- the first prioritized job, the earliest due delayed job
    for _, at in ipairs({-1, -2}) do
      local id = redis.call('LINDEX', KEYS[1], at)
      if id and string.sub(id, 1, 2) ~= '0:' then job(id) break end
    end
    local first = redis.call('ZRANGE', KEYS[3], 0, 0)
    if first[1] then job(first[1]) end
    local delayed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, 1)
    if delayed[2] then
      table.insert(times, 'ms:' .. string.format('%d', math.floor(tonumber(delayed[2]) / 4096)))
    end
  end
  return {ready, scheduled, active, paused, times}
end
