-- Celery (kombu's Redis transport): one list per priority step, kombu's _size.
-- KEYS: the priority lists, step 0 (the queue's own name) first.
local function count()
  local ready = 0
  for i = 1, #KEYS do
    kind(KEYS[i], 'list')
    if want.r then ready = ready + redis.call('LLEN', KEYS[i]) end
  end
  return {ready, 0, 0, 0}
end
