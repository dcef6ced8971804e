-- keda-queue-scaler: shared by every queue format's count (read-only; one EVALSHA).
-- ARGV[1] names the states wanted: r(eady) s(cheduled) a(ctive) p(aused), and o
-- for the times of the oldest ready jobs (measure: age).
-- The script returns {1, ready, scheduled, active, paused, times}, where times lists
-- the candidates for the oldest ready job's time as "<unit>:<value>" (ms, s, iso)
-- or "none:<key>" for a job that keeps none; or {0, problem, a, b}
-- for a problem the scaler reports (a key of a type the framework does not use,
-- a scan past its bound, an item it cannot decode).
local want = {}
for c in string.gmatch(ARGV[1], '.') do want[c] = true end

local function problem(kind, a, b)
  error({kqs = kind, a = tostring(a or ''), b = tostring(b or '')})
end

-- The key's type, which must be one the framework uses ('none' is an empty state).
local function kind(key, ...)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' then return t end
  for _, allowed in ipairs({...}) do
    if t == allowed then return t end
  end
  problem('wrongtype', key, t)
end

-- The Redis server's clock: one reference for every framework's scores.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end

