-- BullMQ: KEYS wait, paused (a list before v5), prioritized, delayed, active, meta.
-- A delayed job's score is its timestamp (ms) * 0x1000 plus an order in the
-- millisecond; it is due when its timestamp is at or before now. A paused queue
-- (meta's "paused" field) starts nothing: its startable jobs are "paused".
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
  if redis.call('HEXISTS', KEYS[6], 'paused') == 1 then
    ready, paused = 0, startable + held
  end
  local scheduled, active = 0, 0
  if want.s then scheduled = redis.call('ZCARD', KEYS[4]) - due end
  if want.a then active = redis.call('LLEN', KEYS[5]) end
  return {ready, scheduled, active, paused}
end
