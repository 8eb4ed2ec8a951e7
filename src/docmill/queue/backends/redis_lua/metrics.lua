-- metrics: the last `minutes` per-minute buckets that have counters, oldest first.
-- ARGV: minutes
-- Returns a flat list: minute, completed, failed, runtime_ms, wait_ms, ...
local minutes = tonumber(ARGV[1])
local current = math.floor(server_now() / 60) * 60
local out = {}
for m = current - (minutes - 1) * 60, current, 60 do
  local f = redis.call('HMGET', base .. ':m:' .. m, 'completed', 'failed', 'runtime_ms', 'wait_ms')
  if f[1] or f[2] then
    out[#out + 1] = tostring(m)
    out[#out + 1] = f[1] or '0'
    out[#out + 1] = f[2] or '0'
    out[#out + 1] = f[3] or '0'
    out[#out + 1] = f[4] or '0'
  end
end
return out
