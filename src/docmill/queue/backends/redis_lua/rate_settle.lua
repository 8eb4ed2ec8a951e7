-- rate_settle: correct what rate_take took, unconditionally (Backend.rate_settle).
-- KEYS[1] = "P:{rate~<key>}", the buckets of rate_take.lua.
-- ARGV = window_s, n, name_1, charge_1, capacity_1, ..., name_n, charge_n, capacity_n
-- Each bucket is refilled to now, then pays its charge: a positive charge may take the
-- level below zero, a negative one gives back up to the capacity. Returns nothing.
local now = server_now()
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl_ms = math.ceil(2 * window * 1000)
for i = 1, n do
  expect(base .. ':' .. ARGV[3 * i], 'hash')
end
for i = 1, n do
  local name = ARGV[3 * i]
  local charge = tonumber(ARGV[3 * i + 1])
  local capacity = tonumber(ARGV[3 * i + 2])
  local rate = capacity / window
  local key = base .. ':' .. name
  local level = bucket_level(key, capacity, rate, now)
  level = math.min(capacity, level - charge)
  redis.call('HSET', key, 'l', fmt(level), 't', fmt(now))
  redis.call('PEXPIRE', key, ttl_ms)
end
return 0
