-- enqueue: store jobs in one queue.
-- ARGV: unique_ttl_ms, tag_ttl_ms, then per job:
--   id, spec_json, available_at, attempts, exceptions, unique_key|"", ntags, tag...
-- Returns one id per job: its own, or the id of the job holding its unique key.
-- A job id that already exists is left alone (a retried enqueue is idempotent).
local unique_ttl_ms = ARGV[1]
local tag_ttl_ms = ARGV[2]
local now = server_now()
local out = {}
local i = 3
while i <= #ARGV do
  local id, spec, av, attempts, exceptions, ukey = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local ntags = tonumber(ARGV[i + 6])
  local tags_at = i + 7
  i = tags_at + ntags
  local holder = nil
  if ukey ~= '' then
    holder = redis.call('GET', unique_key(ukey))
    if holder then
      local st = redis.call('HGET', job_key(holder), 'st')
      if st ~= 'pending' and st ~= 'delayed' and st ~= 'reserved' then
        holder = nil -- a stale lock (its job is gone); take it over
      end
    end
  end
  if holder then
    out[#out + 1] = holder
  else
    local jkey = job_key(id)
    if redis.call('EXISTS', jkey) == 0 then
      local st = 'pending'
      if tonumber(av) > now then
        st = 'delayed'
      end
      redis.call('HSET', jkey, 's', spec, 'st', st, 'a', attempts, 'x', exceptions, 'av', av, 'u', ukey)
      redis.call('ZADD', K_WAITING, av, id)
      if ukey ~= '' then
        redis.call('SET', unique_key(ukey), id, 'PX', unique_ttl_ms)
      end
      for t = tags_at, tags_at + ntags - 1 do
        local tkey = base .. ':tag:' .. ARGV[t]
        redis.call('SADD', tkey, id)
        redis.call('PEXPIRE', tkey, tag_ttl_ms)
      end
    end
    out[#out + 1] = id
  end
end
return out
