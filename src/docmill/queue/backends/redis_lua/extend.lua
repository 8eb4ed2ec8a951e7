-- extend: renew leases.
-- ARGV: lease_s, then per job: id, token
-- Returns {lease_until, lost id...}. A job whose token no longer matches is lost.
-- Every job hash is read before the first write (a key of the wrong type stops the script
-- with nothing changed).
local now = server_now()
local deadline_s = fmt(now + tonumber(ARGV[1]))
expect(K_RESERVED, 'zset')
local held = {}
for i = 2, #ARGV, 2 do
  local token = ARGV[i + 1]
  held[i] = token ~= '' and redis.call('HGET', job_key(ARGV[i]), 'r') == token
end
local out = { deadline_s }
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if held[i] then
    redis.call('HSET', job_key(id), 'lu', deadline_s)
    redis.call('ZADD', K_RESERVED, deadline_s, id)
  else
    out[#out + 1] = id
  end
end
return out
