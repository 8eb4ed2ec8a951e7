-- flush_failed: delete up to `batch` failed jobs that failed at or before
-- `older_than_s` seconds ago ("" = all). The caller repeats until it gets < batch.
-- ARGV: older_than_s|"", batch
-- Returns how many were deleted.
local max = '+inf'
if ARGV[1] ~= '' then
  max = fmt(server_now() - tonumber(ARGV[1]))
end
expect(K_FAILED, 'zset')
local ids = redis.call('ZRANGEBYSCORE', K_FAILED, '-inf', max, 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  local jkeys = {}
  for n, id in ipairs(ids) do
    jkeys[n] = job_key(id)
  end
  redis.call('ZREM', K_FAILED, unpack(ids))
  redis.call('UNLINK', unpack(jkeys))
end
return #ids
