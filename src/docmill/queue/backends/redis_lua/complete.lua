-- complete: mark reserved jobs completed, in one call for a batch.
-- ARGV: completed_retention_ms, completed_max, metrics_retention_ms,
--       done_json: [[id, token, runtime_s, wait_s], ...]
-- Returns the ids ignored because their reservation no longer matched.
local retention_ms = tonumber(ARGV[1])
local completed_max = tonumber(ARGV[2])
local metrics_retention_ms = ARGV[3]
local now = server_now()
local now_s = fmt(now)
local batch = cjson.decode(ARGV[4])
expect(K_RESERVED, 'zset')
expect(K_COMPLETED, 'zset')
expect(metrics_key(now), 'hash')
-- Read every job (and the unique key it holds) before the first write: a key of the wrong
-- type stops the script here, with nothing changed.
local held, seen = {}, {}
for n, d in ipairs(batch) do
  local f = redis.call('HMGET', job_key(d[1]), 'r', 'u')
  if f[1] == d[2] and d[2] ~= '' and not seen[d[1]] then
    seen[d[1]] = true
    held[n] = { u = f[2] }
    if f[2] and f[2] ~= '' then
      held[n].holder = redis.call('GET', unique_key(f[2]))
    end
  end
end
local ignored = {}
local done = {}
local zargs = {}
local runtime_ms, wait_ms = 0, 0
for n, d in ipairs(batch) do
  local id, runtime_s, wait_s = d[1], d[3], d[4]
  local h = held[n]
  if h then
    local jkey = job_key(id)
    done[#done + 1] = id
    zargs[#zargs + 1] = now_s
    zargs[#zargs + 1] = id
    redis.call('HSET', jkey, 'st', 'completed', 'fa', now_s, 'rt', runtime_s, 'r', '', 'lu', '', 'pg', '')
    redis.call('PEXPIRE', jkey, retention_ms)
    if h.holder == id then
      redis.call('DEL', unique_key(h.u))
    end
    runtime_ms = runtime_ms + runtime_s * 1000
    wait_ms = wait_ms + wait_s * 1000
  else
    ignored[#ignored + 1] = id
  end
end
if #done > 0 then
  redis.call('ZREM', K_RESERVED, unpack(done))
  redis.call('ZADD', K_COMPLETED, unpack(zargs))
  -- Keep the recent list bounded; trimmed jobs lose their hash at once.
  local old = redis.call('ZRANGEBYSCORE', K_COMPLETED, '-inf', fmt(now - retention_ms / 1000), 'LIMIT', 0, 1000)
  local over = math.min(redis.call('ZCARD', K_COMPLETED) - #old - completed_max, 1000)
  if over > 0 then
    local extra = redis.call('ZRANGE', K_COMPLETED, #old, #old + over - 1)
    for _, id in ipairs(extra) do
      old[#old + 1] = id
    end
  end
  if #old > 0 then
    local jkeys = {}
    for n, id in ipairs(old) do
      jkeys[n] = job_key(id)
    end
    redis.call('ZREM', K_COMPLETED, unpack(old))
    redis.call('UNLINK', unpack(jkeys))
  end
  redis.call('PEXPIRE', K_COMPLETED, retention_ms)
  add_metrics(now, metrics_retention_ms, #done, 0, runtime_ms, wait_ms)
end
return ignored
