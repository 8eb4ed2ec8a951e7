-- notify: wake-up tokens for wait(), in one call instead of three commands.
-- KEYS[1] = "P:{wake}:q:E" (the wake-up list, not a queue's base key: every wake-up list
-- shares the tag {wake}, so one BLPOP can watch several queues on Redis Cluster).
-- ARGV = tokens to push, tokens kept at most, TTL in milliseconds.
expect(KEYS[1], 'list')
local n = tonumber(ARGV[1])
for _ = 1, n do
  redis.call('RPUSH', KEYS[1], '1')
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return n
