-- enqueue: store jobs in one queue.
-- ARGV: unique_ttl_ms, tag_ttl_ms, meta_json, spec_json...
--   meta_json is one array with an entry per job, in the order of the specs:
--   [id, available_at, attempts, exceptions, unique_key or "", [tag, ...]]
--   (one decoded document instead of six arguments per job keeps bulk dispatch cheap)
-- Returns one id per job: its own, or the id of the job holding its unique key.
-- A job id that already exists is left alone (a retried enqueue is idempotent).
local unique_ttl_ms = ARGV[1]
local tag_ttl_ms = ARGV[2]
local meta = cjson.decode(ARGV[3])
local now = server_now()
expect(K_WAITING, 'zset')
-- A job key of another type is never written (EXISTS says it is taken), so only the
-- unique locks, their holders and the tags need a look (each tag once: a batch shares them).
local checked_tags = {}
for _, m in ipairs(meta) do
  if m[5] ~= '' then
    expect(unique_key(m[5]), 'string')
    local holder = redis.call('GET', unique_key(m[5]))
    if holder then
      expect(job_key(holder), 'hash')
    end
  end
  for _, tag in ipairs(m[6]) do
    if not checked_tags[tag] then
      expect(base .. ':tag:' .. tag, 'set')
      checked_tags[tag] = true
    end
  end
end
local out = {}
for n, m in ipairs(meta) do
  local id, av, ukey, tags = m[1], m[2], m[5], m[6]
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
    out[n] = holder
  else
    local jkey = job_key(id)
    if redis.call('EXISTS', jkey) == 0 then
      local st = 'pending'
      if av > now then
        st = 'delayed'
      end
      local av_s = fmt(av)
      redis.call('HSET', jkey, 's', ARGV[3 + n], 'st', st, 'a', m[3], 'x', m[4], 'av', av_s, 'u', ukey)
      redis.call('ZADD', K_WAITING, av_s, id)
      if ukey ~= '' then
        redis.call('SET', unique_key(ukey), id, 'PX', unique_ttl_ms)
      end
      for _, tag in ipairs(tags) do
        local tkey = base .. ':tag:' .. tag
        redis.call('SADD', tkey, id)
        redis.call('PEXPIRE', tkey, tag_ttl_ms)
      end
    end
    out[n] = id
  end
end
return out
