-- Sidekiq: KEYS[1] the queue (list), KEYS[2] "schedule" and KEYS[3] "retry" (sorted
-- sets of JSON jobs scored by Unix time, shared by every queue), KEYS[4] "processes"
-- (set of process identities, each with a hash of its busy threads). ARGV[2] is the
-- queue's name in the jobs, ARGV[3] the most entries one count may decode. A queued
-- job's time is its enqueued_at (Sidekiq < 8: Unix seconds; 8: milliseconds), the
-- oldest at the list's tail (Sidekiq pushes to the head and pops the tail); a due
-- scheduled or retried job's is its score, when it became due.
local function count()
  kind(KEYS[1], 'list')
  kind(KEYS[2], 'zset')
  kind(KEYS[3], 'zset')
  kind(KEYS[4], 'set')
  local queue, limit = ARGV[2], tonumber(ARGV[3])
  local budget = limit
  local earliest = nil -- the lowest score among our due entries (sorted: the first)
  local function ours(key, low, high)
    local n = redis.call('ZCOUNT', key, low, high)
    if n > budget then problem('scan', key, n) end
    budget = budget - n
    local found = 0
    if n == 0 then return 0 end
    local entries = redis.call('ZRANGEBYSCORE', key, low, high, 'WITHSCORES')
    for i = 1, #entries, 2 do
      local decoded, item = pcall(cjson.decode, entries[i])
      if not decoded or type(item) ~= 'table' then problem('decode', key, '') end
      if item.queue == queue then
        found = found + 1
        local score = tonumber(entries[i + 1])
        if low == '-inf' and (earliest == nil or score < earliest) then earliest = score end
      end
    end
    return found
  end
  local sec, usec = clock()
  local now = string.format('%.6f', sec + usec / 1000000)
  local ready, scheduled, active = 0, 0, 0
  local times = {}
  if want.r or want.o then
    ready = redis.call('LLEN', KEYS[1]) + ours(KEYS[2], '-inf', now) + ours(KEYS[3], '-inf', now)
  end
  if want.o then
    local last = redis.call('LINDEX', KEYS[1], -1)
    if last then
      local decoded, item = pcall(cjson.decode, last)
      local at = decoded and type(item) == 'table' and tonumber(item.enqueued_at)
      if not at then
        table.insert(times, 'none:' .. KEYS[1])
      elseif at > 100000000000 then
        table.insert(times, 'ms:' .. string.format('%.3f', at))
      else
        table.insert(times, 's:' .. string.format('%.6f', at))
      end
    end
    if earliest then table.insert(times, 's:' .. string.format('%.6f', earliest)) end
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
  return {ready, scheduled, active, 0, times}
end
