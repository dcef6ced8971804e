-- Dramatiq: KEYS[1] the queue (list of message ids), KEYS[2] its messages (hash:
-- queued and fetched-but-unacked), KEYS[3] and KEYS[4] the same for its delay
-- queue. A delayed message is due when its options.eta (ms) has come; reading it
-- means decoding each delayed message, at most ARGV[2] of them. A queued message's
-- time is its message_timestamp (ms), or its eta when it was delayed (it became
-- ready then), the oldest at the list's head; a due delayed message's is its eta.
local function count()
  kind(KEYS[1], 'list')
  kind(KEYS[2], 'hash')
  kind(KEYS[3], 'list')
  kind(KEYS[4], 'hash')
  local ready, scheduled, active = 0, 0, 0
  local queued = redis.call('LLEN', KEYS[1])
  if want.a then active = redis.call('HLEN', KEYS[2]) - queued end
  local earliest = nil -- the earliest eta among the due delayed messages
  local times = {}
  if want.r or want.s or want.o then
    local delayed = redis.call('HLEN', KEYS[4])
    if delayed > tonumber(ARGV[2]) then problem('scan', KEYS[4], delayed) end
    local sec, usec = clock()
    local now = sec * 1000 + math.floor(usec / 1000)
    local due = 0
    if delayed > 0 then
      local all = redis.call('HGETALL', KEYS[4])
      for i = 1, #all, 2 do
        local decoded, message = pcall(cjson.decode, all[i + 1])
        local eta = decoded and type(message) == 'table' and type(message.options) == 'table'
          and tonumber(message.options.eta)
        if not eta then problem('decode', KEYS[4], all[i]) end
        if eta <= now then
          due = due + 1
          if earliest == nil or eta < earliest then earliest = eta end
        end
      end
    end
    ready = queued + due
    scheduled = delayed - due
  end
  if want.o then
    local head = redis.call('LINDEX', KEYS[1], 0)
    if head then
      local data = redis.call('HGET', KEYS[2], head)
      local decoded, message = false, nil
      if data then decoded, message = pcall(cjson.decode, data) end
      local stamp = decoded and type(message) == 'table' and tonumber(message.message_timestamp)
      if stamp then
        local eta = type(message.options) == 'table' and tonumber(message.options.eta)
        if eta and eta > stamp then stamp = eta end
        table.insert(times, 'ms:' .. string.format('%d', stamp))
      elseif data then
        table.insert(times, 'none:' .. KEYS[2])
      end
    end
    if earliest then table.insert(times, 'ms:' .. string.format('%d', earliest)) end
  end
  return {ready, scheduled, active, 0, times}
end
