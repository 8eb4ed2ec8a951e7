-- fail: move a reserved job to the failed store.
-- ARGV: id, token, error_json, metrics_retention_ms, count_exception (0/1)
-- Returns 1, or 0 when the reservation no longer matched.
local id, token = ARGV[1], ARGV[2]
local jkey = job_key(id)
expect_jobs({ id }, true)
if token == '' or redis.call('HGET', jkey, 'r') ~= token then
  return 0
end
local now = server_now()
local now_s = fmt(now)
expect(K_RESERVED, 'zset')
expect(K_FAILED, 'zset')
expect(metrics_key(now), 'hash')
redis.call('ZREM', K_RESERVED, id)
redis.call('HSET', jkey, 'st', 'failed', 'fa', now_s, 'e', ARGV[3], 'r', '', 'lu', '', 'pg', '')
if ARGV[5] == '1' then
  redis.call('HINCRBY', jkey, 'x', 1)
end
redis.call('ZADD', K_FAILED, now_s, id)
free_unique(jkey, id)
add_metrics(now, ARGV[4], 0, 1, 0, 0)
return 1
