-- arq: KEYS[1] the queue, a sorted set of job ids scored by due time (ms). A job
-- stays there while it runs, marked by the key ARGV[2] .. id. Workers take the
-- lowest-scored due jobs, so the running ones are looked for among the first
-- ARGV[3] due members; the oldest ready job is the first of them not running.
local function count()
  kind(KEYS[1], 'zset')
  local sec, usec = clock()
  local now = string.format('%d', sec * 1000 + math.floor(usec / 1000))
  local ready, scheduled, active = 0, 0, 0
  local times = {}
  if want.r or want.a or want.o then
    local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
    local window = tonumber(ARGV[3])
    local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, window)
    local first = nil
    for i = 1, #ids, 2 do
      if redis.call('EXISTS', ARGV[2] .. ids[i]) == 1 then
        active = active + 1
      elseif not first then
        first = ids[i + 1]
      end
    end
    ready = due - active
    if want.o and first then
      table.insert(times, 'ms:' .. first)
    elseif want.o and ready > 0 then
      problem('scan', KEYS[1], window) -- every job in the window runs: the oldest is past it
    end
  end
  if want.s then scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') end
  return {ready, scheduled, active, 0, times}
end
