-- stats: counts for one queue, after reclaiming lapsed leases.
-- Returns {pending, delayed, reserved, failed, paused (0/1), oldest_available_at|"", now}
local now = server_now()
local expired = lapsed(now, 1000)
expect(K_WAITING, 'zset')
expect(K_RESERVED, 'zset')
expect_jobs(expired, false)
reclaim(expired)
local now_s = fmt(now)
local pending = redis.call('ZCOUNT', K_WAITING, '-inf', now_s)
local oldest = ''
if pending > 0 then
  oldest = redis.call('ZRANGE', K_WAITING, 0, 0, 'WITHSCORES')[2]
end
return {
  pending,
  redis.call('ZCOUNT', K_WAITING, '(' .. now_s, '+inf'),
  redis.call('ZCARD', K_RESERVED),
  redis.call('ZCARD', K_FAILED),
  redis.call('EXISTS', base .. ':paused'),
  oldest,
  now_s,
}
