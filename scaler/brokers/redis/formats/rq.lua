-- RQ: KEYS[1] the queue (list of job ids), KEYS[2] its ScheduledJobRegistry,
-- KEYS[3] its StartedJobRegistry (sorted sets). RQ's clock is whole seconds: a
-- scheduled job is due at a score from 0 to now, a started one is live past now.
local function count()
  kind(KEYS[1], 'list')
  kind(KEYS[2], 'zset')
  kind(KEYS[3], 'zset')
  local now = clock()
  local ready, scheduled, active = 0, 0, 0
  if want.r then
    ready = redis.call('LLEN', KEYS[1]) + redis.call('ZCOUNT', KEYS[2], 0, now)
  end
  if want.s then scheduled = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') end
  if want.a then active = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') end
  return {ready, scheduled, active, 0}
end
