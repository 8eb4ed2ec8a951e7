--[[
docmill Redis key schema. This file is prepended to every script in this folder.

P is the key prefix (BackendSettings.prefix, default "docmill"), Q a queue name.
Every key of one queue carries the hash tag {Q}, so it lives in one Redis Cluster
slot; each script receives KEYS[1] = "P:{Q}" and only touches keys that start with
it. No script ever touches two queues or a global key.

Per queue (written only by the scripts in this folder):

  P:{Q}:waiting        ZSET  job id -> available_at. Pending when the score is <= now
                             (server TIME), delayed while it is in the future. Ties
                             break by id (ids sort by creation), which gives the
                             contract's "FIFO by available_at, then id".   permanent
  P:{Q}:reserved       ZSET  job id -> lease deadline                      permanent
  P:{Q}:failed         ZSET  job id -> failed_at                           permanent
  P:{Q}:completed      ZSET  job id -> finished_at; trimmed by age and by
                             completed_max on every completion    TTL completed_retention_s
  P:{Q}:job:<id>       HASH  one job. Fields:
                               s  spec JSON (immutable)       st state name
                               a  attempts                    x  exceptions
                               av available_at                ra reserved_at
                               r  reservation token           lu lease deadline
                               fa finished_at                 rt runtime seconds
                               e  last error JSON             u  unique key (if any)
                             "" means unset. Permanent while pending, delayed,
                             reserved or failed; TTL completed_retention_s once
                             completed (and deleted when trimmed from :completed).
  P:{Q}:unique:<key>   STRING id of the job holding the unique key; deleted when
                             that job completes, fails, is cleared or forgotten.
                                                                 TTL unique_lock_ttl_s
  P:{Q}:tag:<tag>      SET   ids of jobs carrying the tag        TTL tag_retention_s
  P:{Q}:m:<minute>     HASH  completed, failed, runtime_ms, wait_ms for the minute
                             starting at epoch second <minute>  TTL metrics_retention_s
  P:{Q}:seq            STRING counter making reservation tokens unique   permanent
  P:{Q}:paused         STRING "1" while the queue is paused              permanent

Global (plain commands from Python, never from a script):

  P:queues             SET   every queue name dispatched to or paused    permanent
  P:restart            STRING epoch seconds of the last restart request   permanent
  P:{notify}:Q         LIST  wake-up tokens for wait(), pushed by notify.lua (the one
                             script whose KEYS[1] is not a queue's base); all queues
                             share the tag {notify}, so one BLPOP can watch several.
                             Bounded by LTRIM; stale tokens only cause a spurious
                             wake-up.                                               TTL
  P:{notify}:worker:W  LIST  interrupt tokens for worker W's wait (interrupt_wait: a
                             stop). Its BLPOP watches it beside the queues' lists,
                             and the reserve queued behind that BLPOP runs as soon
                             as it returns.                                         TTL
  P:hb:<kind>          ZSET  member -> expiry (client clock), index only       TTL
  P:hb:<kind>:<member> STRING heartbeat JSON; its TTL is the truth             TTL
  P:flag:<name>        STRING flag JSON (set_flag/get_flag)                 permanent

Rate limits (redis_lua/rate_take.lua, rate_settle.lua; a hash tag of their own, never a queue's):

  P:{rate~<key>}:<name> HASH  token bucket {l = level, t = updated_at}; l is below
                              zero after rate_settle charged more than was left
                                                                    TTL 2 x window

All times are epoch seconds as floats, read from the server's TIME so that hosts
with skewed clocks agree on leases and delays.
]]

local base = KEYS[1]
local K_WAITING = base .. ':waiting'
local K_RESERVED = base .. ':reserved'
local K_FAILED = base .. ':failed'
local K_COMPLETED = base .. ':completed'

local function job_key(id)
  return base .. ':job:' .. id
end

local function unique_key(key)
  return base .. ':unique:' .. key
end

local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Scores and fields go out as text with microsecond precision.
local function fmt(x)
  return string.format('%.6f', x)
end

-- Free the job's unique key if the job still holds it.
-- A rate bucket's level now: its stored level refilled at `rate` per second since it was
-- written, at most `capacity`; a bucket never seen (or expired) is full.
local function bucket_level(key, capacity, rate, now)
  local state = redis.call('HMGET', key, 'l', 't')
  if not state[1] then
    return capacity
  end
  return math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end

local function free_unique(jkey, id)
  local u = redis.call('HGET', jkey, 'u')
  if u and u ~= '' then
    local ukey = unique_key(u)
    if redis.call('GET', ukey) == id then
      redis.call('DEL', ukey)
    end
  end
end

local LEASE_EXPIRED = cjson.encode({
  type = 'LeaseExpired',
  message = 'the worker holding this job stopped renewing its lease (it probably died)',
  traceback = '',
})

-- Put jobs whose lease lapsed back in :waiting at their old available_at (so they
-- go near the front), with the attempt they spent still counted.
local function reclaim(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K_RESERVED, '-inf', fmt(now), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local jkey = job_key(id)
    local av = redis.call('HGET', jkey, 'av')
    redis.call('ZREM', K_RESERVED, id)
    if av then
      redis.call('HSET', jkey, 'st', 'pending', 'r', '', 'lu', '', 'e', LEASE_EXPIRED)
      redis.call('ZADD', K_WAITING, av, id)
    end
  end
  return #ids
end

-- Add to a per-minute metrics bucket.
local function add_metrics(now, retention_ms, completed, failed, runtime_ms, wait_ms)
  local minute = math.floor(now / 60) * 60
  local mkey = base .. ':m:' .. minute
  if completed > 0 then
    redis.call('HINCRBY', mkey, 'completed', completed)
    redis.call('HINCRBYFLOAT', mkey, 'runtime_ms', runtime_ms)
    redis.call('HINCRBYFLOAT', mkey, 'wait_ms', wait_ms)
  end
  if failed > 0 then
    redis.call('HINCRBY', mkey, 'failed', failed)
  end
  redis.call('PEXPIRE', mkey, retention_ms)
end

