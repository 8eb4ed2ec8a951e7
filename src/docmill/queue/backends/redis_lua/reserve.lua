-- reserve: lease up to `limit` due jobs.
-- ARGV: worker_id, lease_s, limit
-- Returns {next_available_at|"", reserved_at, lease_until, then per job:
--          id, spec, attempts, exceptions, available_at, error, token}
-- or {} when the queue is paused. Expired leases are reclaimed first.
if redis.call('EXISTS', base .. ':paused') == 1 then
  return {}
end
local worker_id = ARGV[1]
local lease_s = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local now = server_now()
reclaim(now, 1000)

local now_s = fmt(now)
local deadline = now + lease_s
local deadline_s = fmt(deadline)
local ids = redis.call('ZRANGEBYSCORE', K_WAITING, '-inf', now_s, 'LIMIT', 0, limit)
local out = { '', now_s, deadline_s }
if #ids > 0 then
  redis.call('ZREM', K_WAITING, unpack(ids))
  local seq = redis.call('INCRBY', base .. ':seq', #ids) - #ids
  local zargs = {}
  for n, id in ipairs(ids) do
    local jkey = job_key(id)
    local token = worker_id .. ':' .. (seq + n)
    local f = redis.call('HMGET', jkey, 's', 'a', 'x', 'av', 'e')
    local attempts = tonumber(f[2]) + 1
    redis.call('HSET', jkey, 'st', 'reserved', 'a', attempts, 'r', token, 'lu', deadline_s, 'ra', now_s)
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
