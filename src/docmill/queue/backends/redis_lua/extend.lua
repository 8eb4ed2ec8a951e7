-- extend: renew leases.
-- ARGV: lease_s, then per job: id, token
-- Returns {lease_until, lost id...}. A job whose token no longer matches is lost.
local now = server_now()
local deadline_s = fmt(now + tonumber(ARGV[1]))
local out = { deadline_s }
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jkey = job_key(id)
  if token ~= '' and redis.call('HGET', jkey, 'r') == token then
    redis.call('HSET', jkey, 'lu', deadline_s)
    redis.call('ZADD', K_RESERVED, deadline_s, id)
  else
    out[#out + 1] = id
  end
end
return out
