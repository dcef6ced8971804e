-- Sidekiq: KEYS[1] the queue (list), KEYS[2] "schedule" and KEYS[3] "retry" (sorted
-- sets of JSON jobs scored by Unix time, shared by every queue), KEYS[4] "processes"
-- (set of process identities, each with a hash of its busy threads). ARGV[2] is the
-- queue's name in the jobs, ARGV[3] the most entries one count may decode.
local function count()
  kind(KEYS[1], 'list')
  kind(KEYS[2], 'zset')
  kind(KEYS[3], 'zset')
  kind(KEYS[4], 'set')
  local queue, limit = ARGV[2], tonumber(ARGV[3])
  local budget = limit
  local function ours(key, low, high)
    local n = redis.call('ZCOUNT', key, low, high)
    if n > budget then problem('scan', key, n) end
    budget = budget - n
    local found = 0
    if n == 0 then return 0 end
    for _, job in ipairs(redis.call('ZRANGEBYSCORE', key, low, high)) do
      local decoded, item = pcall(cjson.decode, job)
      if not decoded or type(item) ~= 'table' then problem('decode', key, '') end
      if item.queue == queue then found = found + 1 end
    end
    return found
  end
  local sec, usec = clock()
  local now = string.format('%.6f', sec + usec / 1000000)
  local ready, scheduled, active = 0, 0, 0
  if want.r then
    ready = redis.call('LLEN', KEYS[1]) + ours(KEYS[2], '-inf', now) + ours(KEYS[3], '-inf', now)
  end
  if want.s then
    scheduled = ours(KEYS[2], '(' .. now, '+inf') + ours(KEYS[3], '(' .. now, '+inf')
  end
  if want.a then
    -- Sidekiq's WorkSet: live processes only (their info key expires), and the
    -- busy threads each heartbeat writes ("<identity>:workers" in 6, ":work" in 7).
    for _, identity in ipairs(redis.call('SMEMBERS', KEYS[4])) do
      if redis.call('EXISTS', identity) == 1 then
        for _, suffix in ipairs({':workers', ':work'}) do
          local work = redis.call('HVALS', identity .. suffix)
          if #work > budget then problem('scan', identity .. suffix, #work) end
          budget = budget - #work
          for _, entry in ipairs(work) do
            local decoded, item = pcall(cjson.decode, entry)
            if not decoded or type(item) ~= 'table' then problem('decode', identity .. suffix, '') end
            if item.queue == queue then active = active + 1 end
          end
        end
      end
    end
  end
  return {ready, scheduled, active, 0}
end
