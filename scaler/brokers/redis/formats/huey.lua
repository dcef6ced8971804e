-- Huey: KEYS[1] the queue (a list, or a sorted set under PriorityRedisHuey),
-- KEYS[2] the schedule (sorted set scored by Unix time). The consumer moves an item
-- whose score is at or before now onto the queue.
local function count()
  local queue = kind(KEYS[1], 'list', 'zset')
  kind(KEYS[2], 'zset')
  local sec, usec = clock()
  local now = string.format('%.6f', sec + usec / 1000000)
  local ready, scheduled = 0, 0
  if want.r then
    local size = 0
    if queue == 'zset' then size = redis.call('ZCARD', KEYS[1]) else size = redis.call('LLEN', KEYS[1]) end
    ready = size + redis.call('ZCOUNT', KEYS[2], '-inf', now)
  end
  if want.s then scheduled = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') end
  return {ready, scheduled, 0, 0}
end
