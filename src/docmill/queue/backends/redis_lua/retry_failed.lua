-- retry_failed: move failed jobs back to pending, attempts and exceptions reset.
-- ARGV: unique_ttl_ms, id...
-- Returns how many moved. A job re-takes its unique key when the key is free.
local now_s = fmt(server_now())
expect(K_FAILED, 'zset')
expect(K_WAITING, 'zset')
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
expect_jobs(ids, true)
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', K_FAILED, id) == 1 then
    local jkey = job_key(id)
    redis.call('HSET', jkey, 'st', 'pending', 'a', 0, 'x', 0, 'av', now_s, 'fa', '', 'ra', '')
    redis.call('ZADD', K_WAITING, now_s, id)
    local u = redis.call('HGET', jkey, 'u')
    if u and u ~= '' then
      redis.call('SET', unique_key(u), id, 'PX', ARGV[1], 'NX')
    end
    moved = moved + 1
  end
end
return moved
