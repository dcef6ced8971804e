-- RQ: KEYS[1] the queue (list of job ids), KEYS[2] its ScheduledJobRegistry,
-- KEYS[3] its StartedJobRegistry (sorted sets); ARGV[2] the job hashes' prefix.
-- RQ's clock is whole seconds: a scheduled job is due at a score from 0 to now, a
-- started one is live past now. A queued job's time is its hash's enqueued_at; a
-- due scheduled job's is its score (when it became due).
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
  local times = {}
  if want.o then
    -- both ends: RQ appends, and at_front pushes to the head
    for _, at in ipairs({0, -1}) do
      local id = redis.call('LINDEX', KEYS[1], at)
      if id then
        local job = ARGV[2] .. id
        local enqueued = redis.call('HGET', job, 'enqueued_at')
        if enqueued and #enqueued <= 64 then
          table.insert(times, 'iso:' .. enqueued)
        elseif enqueued or redis.call('EXISTS', job) == 1 then
          table.insert(times, 'none:' .. string.sub(job, 1, 200))
        end -- a job deleted while its id waits: RQ skips it, and so does the age
      end
    end
    local due = redis.call('ZRANGEBYSCORE', KEYS[2], 0, now, 'WITHSCORES', 'LIMIT', 0, 1)
    if due[2] then table.insert(times, 's:' .. due[2]) end
  end
  return {ready, scheduled, active, 0, times}
end
