-- reserve: lease up to `limit` due jobs.
-- ARGV: worker_id, lease_s, limit
-- Returns {next_available_at|"", reserved_at, lease_until, then per job:
--          id, spec, attempts, exceptions, available_at, error, token}
-- or {} when the queue is paused. Expired leases are reclaimed first.
-- Every job hash is read before the first write, so a key of the wrong type stops the
-- script with nothing changed; the few keys written without a read are checked by expect().
if redis.call('EXISTS', base .. ':paused') == 1 then
  return {}
end
local worker_id = ARGV[1]
local lease_s = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local now = server_now()
local now_s = fmt(now)
expect(K_WAITING, 'zset')
expect(K_RESERVED, 'zset')
expect(base .. ':seq', 'string')
local expired = lapsed(now, 1000)
if #expired > 0 then
  -- Reclaiming writes before the due jobs are read: check those first (every job this
  -- call may lease is a lapsed one or among the first `limit` due ones).
  expect_jobs(expired, false)
  expect_jobs(redis.call('ZRANGEBYSCORE', K_WAITING, '-inf', now_s, 'LIMIT', 0, limit), false)
  reclaim(expired)
end

local deadline = now + lease_s
local deadline_s = fmt(deadline)
local ids = redis.call('ZRANGEBYSCORE', K_WAITING, '-inf', now_s, 'LIMIT', 0, limit)
local out = { '', now_s, deadline_s }
if #ids > 0 then
  local fields = {}
  for n, id in ipairs(ids) do
    fields[n] = redis.call('HMGET', job_key(id), 's', 'a', 'x', 'av', 'e')
  end
  redis.call('ZREM', K_WAITING, unpack(ids))
  local seq = redis.call('INCRBY', base .. ':seq', #ids) - #ids
  local zargs = {}
  for n, id in ipairs(ids) do
    local f = fields[n]
    local token = worker_id .. ':' .. (seq + n)
    local attempts = tonumber(f[2]) + 1
    redis.call('HSET', job_key(id), 'st', 'reserved', 'a', attempts, 'r', token, 'lu', deadline_s, 'ra', now_s, 'pg', '')
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = attempts
    out[#out + 1] = f[3]
    out[#out + 1] = f[4]
    out[#out + 1] = f[5]
    out[#out + 1] = token
    zargs[#zargs + 1] = deadline_s
    zargs[#zargs + 1] = id
  end
  redis.call('ZADD', K_RESERVED, unpack(zargs))
end
local nxt = redis.call('ZRANGEBYSCORE', K_WAITING, '(' .. now_s, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if nxt[2] then
  out[1] = nxt[2]
end
return out
