-- forget_failed: delete failed jobs for good.
-- ARGV: id...
-- Returns how many were deleted.
expect(K_FAILED, 'zset')
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', K_FAILED, id) == 1 then
    redis.call('DEL', job_key(id))
    n = n + 1
  end
end
return n
