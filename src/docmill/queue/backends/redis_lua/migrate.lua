-- migrate: move keys of one queue from the first key schema ("P:{Q}:<suffix>") to this
-- one (KEYS[1] = "P:q:{E}"), see "Upgrading" in _keys.lua.
-- ARGV: old_base, suffix...  (the suffixes of the old keys found by SCAN)
-- A key whose type fits its suffix is renamed, or merged into a key of that name written
-- since (sorted sets and sets are united; for the others the newer key wins); a key whose
-- type does not fit belonged to something else (a wake-up list) and is dropped. Jobs
-- moved here are put back in the index their state names when they are missing from it
-- (a failed job that the first schema could not file, for one).
-- Returns {moved, dropped}.
local KINDS = {
  waiting = 'zset', reserved = 'zset', failed = 'zset', completed = 'zset',
  seq = 'string', paused = 'string',
}
local PREFIXED = { ['job:'] = 'hash', ['unique:'] = 'string', ['tag:'] = 'set', ['m:'] = 'hash' }

local function kind_of(suffix)
  if KINDS[suffix] then
    return KINDS[suffix]
  end
  for head, kind in pairs(PREFIXED) do
    if string.sub(suffix, 1, #head) == head and #suffix > #head then
      return kind
    end
  end
  return nil
end

local old_base = ARGV[1]
expect(K_WAITING, 'zset')
expect(K_RESERVED, 'zset')
expect(K_FAILED, 'zset')
for i = 2, #ARGV do
  local kind = kind_of(ARGV[i])
  if kind then
    expect(base .. ':' .. ARGV[i], kind)
  end
end

local moved, dropped = 0, 0
local jobs = {}
for i = 2, #ARGV do
  local suffix = ARGV[i]
  local old = old_base .. ':' .. suffix
  local new = base .. ':' .. suffix
  local kind = kind_of(suffix)
  local found = redis.call('TYPE', old)['ok']
  if found ~= 'none' and kind then
    if found ~= kind then
      redis.call('DEL', old)
      dropped = dropped + 1
    elseif redis.call('EXISTS', new) == 0 then
      redis.call('RENAME', old, new)
      moved = moved + 1
    elseif kind == 'zset' or kind == 'set' then
      local ttl = redis.call('PTTL', new)
      if kind == 'zset' then
        redis.call('ZUNIONSTORE', new, 2, new, old, 'AGGREGATE', 'MIN')
      else
        redis.call('SUNIONSTORE', new, new, old)
      end
      if ttl > 0 then
        redis.call('PEXPIRE', new, ttl)
      end
      redis.call('DEL', old)
      moved = moved + 1
    else
      redis.call('DEL', old)
      dropped = dropped + 1
    end
    if kind == 'hash' and string.sub(suffix, 1, 4) == 'job:' and found == kind then
      jobs[#jobs + 1] = string.sub(suffix, 5)
    end
  end
end

local INDEX = {
  pending = { K_WAITING, 'av' }, delayed = { K_WAITING, 'av' },
  reserved = { K_RESERVED, 'lu' }, failed = { K_FAILED, 'fa' },
}
for _, id in ipairs(jobs) do
  local index = INDEX[redis.call('HGET', job_key(id), 'st') or '']
  if index then
    local score = redis.call('HGET', job_key(id), index[2])
    if score and score ~= '' and not redis.call('ZSCORE', index[1], id) then
      redis.call('ZADD', index[1], score, id)
    end
  end
end
return { moved, dropped }
