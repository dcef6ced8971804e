-- arq: KEYS[1] the queue, a sorted set of job ids scored by due time (ms). A job
-- stays there while it runs, marked by the key ARGV[2] .. id. Workers take the
-- lowest-scored due jobs, so the running ones are looked for among the first
-- ARGV[3] due members.
local function count()
  kind(KEYS[1], 'zset')
  local sec, usec = clock()
  local now = string.format('%d', sec * 1000 + math.floor(usec / 1000))
  local ready, scheduled, active = 0, 0, 0
  if want.r or want.a then
    local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
    local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
    for _, id in ipairs(ids) do
      active = active + redis.call('EXISTS', ARGV[2] .. id)
    end
    ready = due - active
  end
  if want.s then scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') end
  return {ready, scheduled, active, 0}
end
