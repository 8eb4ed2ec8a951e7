--[[
docmill Redis key schema (version 2). This file is prepended to every script in this folder.

P is the key prefix (BackendSettings.prefix, default "docmill"), Q a queue name (any name
docmill.queue.names allows: spaces, ":", "{", "}", any script), and E the queue name
escaped for keys: "%" -> "%25", "{" -> "%7B", "}" -> "%7D" (nothing else changes, so
"default" stays "default"). E holds no brace, so the hash tag {E} ends where the name
ends, and the escape is one-to-one, so two queue names never share a key.

Namespaces: each key starts with one of these, and none is a prefix of another, so no
queue name, tag, unique key or worker id can make a key of one kind equal to a key of
another:

  P:q:{E}:           one queue's keys (all in one Redis Cluster slot)
  P:{wake}:          wake-up lists (one slot, so one BLPOP watches several)
  P:{rate~<key>}:    rate buckets
  P:{count~<key>}:   per-minute counters (plain commands from Python)
  P:queues  P:restart  P:schema  P:hb:  P:flag:     global keys

Per queue (written only by the scripts in this folder; each receives KEYS[1] = "P:q:{E}"
and only touches keys that start with it; no script touches two queues or a global key):

  P:q:{E}:waiting        ZSET  job id -> available_at. Pending when the score is <= now
                               (server TIME), delayed while it is in the future. Ties
                               break by id (ids sort by creation), which gives the
                               contract's "FIFO by available_at, then id".   permanent
  P:q:{E}:reserved       ZSET  job id -> lease deadline                      permanent
  P:q:{E}:failed         ZSET  job id -> failed_at                           permanent
  P:q:{E}:completed      ZSET  job id -> finished_at; trimmed by age and by
                               completed_max on every completion  TTL completed_retention_s
  P:q:{E}:job:<id>       HASH  one job. Fields:
                                 s  spec JSON (immutable)       st state name
                                 a  attempts                    x  exceptions
                                 av available_at                ra reserved_at
                                 r  reservation token           lu lease deadline
                                 fa finished_at                 rt runtime seconds
                                 e  last error JSON             u  unique key (if any)
                                 pg reservation token of the attempt that recorded
                                    progress (record_progress); that attempt is given
                                    back when it ends without completing
                               "" means unset. Permanent while pending, delayed,
                               reserved or failed; TTL completed_retention_s once
                               completed (and deleted when trimmed from :completed).
  P:q:{E}:unique:<key>   STRING id of the job holding the unique key; deleted when
                               that job completes, fails, is cleared or forgotten.
                                                                 TTL unique_lock_ttl_s
  P:q:{E}:tag:<tag>      SET   ids of jobs carrying the tag        TTL tag_retention_s
  P:q:{E}:m:<minute>     HASH  completed, failed, runtime_ms, wait_ms for the minute
                               starting at epoch second <minute>  TTL metrics_retention_s
  P:q:{E}:seq            STRING counter making reservation tokens unique   permanent
  P:q:{E}:paused         STRING "1" while the queue is paused              permanent

Wake-ups (notify.lua and plain commands):

  P:{wake}:q:E         LIST  wake-up tokens for wait(), pushed by notify.lua (its KEYS[1]
                             is this list, not a queue's base). Bounded by LTRIM; stale
                             tokens only cause a spurious wake-up.                  TTL
  P:{wake}:worker:W    LIST  interrupt tokens for worker W's wait (interrupt_wait: a
                             stop). Its BLPOP watches it beside the queues' lists,
                             and the reserve queued behind that BLPOP runs as soon
                             as it returns.                                         TTL

Global (plain commands from Python, never from a script):

  P:queues             SET   every queue name dispatched to or paused    permanent
  P:restart            STRING epoch seconds of the last restart request   permanent
  P:schema             STRING "2" once keys of the first schema were moved (below)
  P:hb:<kind>          ZSET  member -> expiry (client clock), index only       TTL
  P:hb:<kind>:<member> STRING heartbeat JSON; its TTL is the truth             TTL
  P:flag:<name>        STRING flag JSON (set_flag/get_flag)                 permanent

Rate limits (rate_take.lua, rate_settle.lua):

  P:{rate~<key>}:<name> HASH  token bucket {l = level, t = updated_at}; l is below
                              zero after rate_settle charged more than was left
                                                                    TTL 2 x window

Counters (counter_add, counter_totals; plain commands, no script):

  P:{count~<key>}:<minute> HASH field -> count for the minute starting at epoch second
                              <minute> (the writing host's clock)   TTL a week

Before its first write, every script checks the type of each key it will write
(expect() below): a key of the wrong type stops the script with a WRONGTYPE error and
nothing changed, instead of Redis keeping the writes made before the failing command.

Upgrading from the first schema (queue keys "P:{Q}:...", wake-up lists "P:{notify}:Q"):
on connect the backend moves each known queue's keys to "P:q:{E}:..." (migrate.lua, one
queue per call, types checked) and drops the old wake-up lists, which are transient; a
first-schema key whose type does not fit (the wake-up list of a queue named "failed"
that sat on the failed store of a queue named "notify") is dropped. It then sets
P:schema. Stop every worker before upgrading: an old worker would keep writing old keys.

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

local function metrics_key(now)
  return base .. ':m:' .. (math.floor(now / 60) * 60)
end

-- Stop the script, with nothing written yet, when `key` exists with another type than
-- `kind` ('zset', 'hash', 'string', 'set', 'list'). Call it for every key a script may
-- write before its first write.
local function expect(key, kind)
  local found = redis.call('TYPE', key)['ok']
  if found ~= kind and found ~= 'none' then
    error({ err = 'WRONGTYPE docmill key ' .. key .. ' holds a ' .. found .. ' where a ' .. kind
      .. ' belongs; the command changed nothing' })
  end
end

-- Check the job hashes of `ids`, and with `uniques` the unique key each one holds (for
-- scripts that free or take it).
local function expect_jobs(ids, uniques)
  for _, id in ipairs(ids) do
    local jkey = job_key(id)
    expect(jkey, 'hash')
    if uniques then
      local u = redis.call('HGET', jkey, 'u')
      if u and u ~= '' then
        expect(unique_key(u), 'string')
      end
    end
  end
end

local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Scores and fields go out as text with microsecond precision.
local function fmt(x)
  return string.format('%.6f', x)
end

-- A rate bucket's level now: its stored level refilled at `rate` per second since it was
-- written, at most `capacity`; a bucket never seen (or expired) is full.
local function bucket_level(key, capacity, rate, now)
  local state = redis.call('HMGET', key, 'l', 't')
  if not state[1] then
    return capacity
  end
  return math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end

-- Free the job's unique key if the job still holds it.
local function free_unique(jkey, id)
  local u = redis.call('HGET', jkey, 'u')
  if u and u ~= '' then
    local ukey = unique_key(u)
    if redis.call('GET', ukey) == id then
      redis.call('DEL', ukey)
    end
  end
end

-- The attempt a job spends ends now: give it back when it recorded progress (field pg
-- holds the ending reservation's token), and forget the mark. `token` is that reservation.
local function settle_progress(jkey, token, refund)
  if token ~= '' and redis.call('HGET', jkey, 'pg') == token then
    refund = true
  end
  if refund then
    local a = tonumber(redis.call('HGET', jkey, 'a') or '0')
    redis.call('HSET', jkey, 'a', math.max(0, a - 1))
  end
  redis.call('HSET', jkey, 'pg', '')
end

local LEASE_EXPIRED = cjson.encode({
  type = 'LeaseExpired',
  message = 'the worker holding this job stopped renewing its lease (it probably died)',
  traceback = '',
})

-- A restarted server reclaims nothing for this long: no lease could be renewed while it was
-- down, and the workers holding those jobs (their acks, their running jobs) need a few
-- seconds to reach it again (they retry at most 5 s apart).
local RESTART_GRACE_S = 15

-- Jobs whose lease lapsed by `now` (at most `limit`): reclaim() puts them back.
local function lapsed(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K_RESERVED, '-inf', fmt(now), 'LIMIT', 0, limit)
  if #ids > 0 then  -- rare, so INFO costs nothing in the usual case
    local up = tonumber(string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)'))
    if up ~= nil and up < RESTART_GRACE_S then
      return {}
    end
  end
  return ids
end

-- Put jobs whose lease lapsed back in :waiting at their old available_at (so they
-- go near the front), with the attempt they spent still counted unless it recorded
-- progress. The caller checked the keys (expect_jobs(ids, false), :waiting, :reserved).
local function reclaim(ids)
  for _, id in ipairs(ids) do
    local jkey = job_key(id)
    local f = redis.call('HMGET', jkey, 'av', 'r')
    redis.call('ZREM', K_RESERVED, id)
    if f[1] then
      settle_progress(jkey, f[2] or '', false)
      redis.call('HSET', jkey, 'st', 'pending', 'r', '', 'lu', '', 'e', LEASE_EXPIRED)
      redis.call('ZADD', K_WAITING, f[1], id)
    end
  end
  return #ids
end

-- Add to a per-minute metrics bucket (the caller checked metrics_key(now) is a hash).
local function add_metrics(now, retention_ms, completed, failed, runtime_ms, wait_ms)
  local mkey = metrics_key(now)
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
