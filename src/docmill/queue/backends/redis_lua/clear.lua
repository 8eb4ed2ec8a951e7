-- clear: delete up to `batch` pending or delayed jobs, freeing their unique keys.
-- The caller repeats until it gets < batch. Reserved and failed jobs stay.
-- ARGV: batch
-- Returns how many were deleted.
expect(K_WAITING, 'zset')
local ids = redis.call('ZRANGE', K_WAITING, 0, tonumber(ARGV[1]) - 1)
expect_jobs(ids, true)
if #ids > 0 then
  local jkeys = {}
  for n, id in ipairs(ids) do
    local jkey = job_key(id)
    free_unique(jkey, id)
    jkeys[n] = jkey
  end
  redis.call('ZREM', K_WAITING, unpack(ids))
  redis.call('UNLINK', unpack(jkeys))
end
return #ids
