-- rate_take: shared token buckets, all or nothing (Backend.rate_take).
-- KEYS[1] = "P:{rate~<key>}" (its own hash tag, so every bucket of one key shares a slot);
-- bucket <name> is the HASH  P:{rate~<key>}:<name>  {l = level, t = updated_at},
-- TTL 2 * window: an idle bucket expires and so counts as full again.
-- ARGV = window_s, n, name_1, cost_1, capacity_1, ..., name_n, cost_n, capacity_n
-- Returns the seconds to wait as text ("0" when the costs were taken).
local now = server_now()
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local keys, levels, needs, wait = {}, {}, {}, 0
for i = 1, n do
  local name = ARGV[3 * i]
  local cost = tonumber(ARGV[3 * i + 1])
  local capacity = tonumber(ARGV[3 * i + 2])
  local rate = capacity / window
  local key = base .. ':' .. name
  expect(key, 'hash')
  local level = bucket_level(key, capacity, rate, now)
  local need = math.min(cost, capacity)
  if level < need then
    wait = math.max(wait, (need - level) / rate)
  end
  keys[i], levels[i], needs[i] = key, level, need
end
local ttl_ms = math.ceil(2 * window * 1000)
for i = 1, n do
  local level = levels[i]
  if wait == 0 then
    level = level - needs[i]
  end
  redis.call('HSET', keys[i], 'l', fmt(level), 't', fmt(now))
  redis.call('PEXPIRE', keys[i], ttl_ms)
end
return fmt(wait)
