-- docmill queue storage for SQLite: the schema and every query the backend runs.
--
-- One file holds the state of every queue on one host; several worker processes
-- share it. The connection runs in WAL mode with synchronous=NORMAL, and every
-- state change runs inside BEGIN IMMEDIATE, so writers queue up on the file lock
-- (busy_timeout) and readers never wait. PRAGMA user_version holds the schema
-- version; the backend refuses a file whose version is newer than it knows.
--
-- Times are epoch seconds (REAL) from the host clock. JSON columns are TEXT.
--
-- jobs: every job the backend still holds, one row each.
--   id            text, sortable (milliseconds then random hex); primary key
--   queue         queue name
--   name          handler name (also inside spec; here for listings)
--   spec          JSON of Job.spec(): what to run and with which options; never changes
--   state         'pending'   waiting; reported as *delayed* while available_at is in the
--                             future, so a delayed job becomes due without being touched
--                 'reserved'  leased by a worker until lease_until
--                 'completed' done; kept completed_retention_s (and completed_max per queue)
--                 'failed'    in the failed store until retried, forgotten or flushed
--   available_at  when the job may be reserved (dispatch + delay, backoff, release)
--   attempts      reservations so far (reserve adds one; a self-release gives it back)
--   exceptions    attempts that ended in an exception
--   reservation   token of the current lease, NULL unless reserved; every ack must name it
--   reserved_by   worker id holding the lease (for operators), NULL unless reserved
--   lease_until   lease deadline, NULL unless reserved; past it, reserve reclaims the job
--   reserved_at   when the last reservation started
--   finished_at   when the job completed or failed; NULL otherwise
--   runtime_s     handler runtime of the successful attempt
--   error         JSON ErrorInfo {type, message, traceback} of the last failure, or NULL
--   progressed    the reservation token of the attempt that recorded progress
--                 (record_progress, schema_v4), NULL otherwise; that attempt is given
--                 back when it ends without completing (lapsed lease, retry, release)
--   unique_key    optional; unique per queue among pending and reserved jobs (index
--                 jobs_unique), so the key is freed the moment its job completes, fails
--                 or is deleted, and needs no TTL
--   created_at    dispatch time
--
-- job_tags: (tag, job_id) for find_by_tag; rows go with their job (trigger
--   job_tags_follow_job), so a tag lives exactly as long as the job it labels.
--
-- metrics: one row per (queue, minute); minute is the epoch second the minute starts.
--   completed, failed    counts of jobs that ended in that minute
--   runtime_s_total      sum of handler runtimes of completed jobs
--   wait_s_total         sum of waits (available_at to handler start) of completed jobs
--   Rows older than metrics_retention_s are pruned.
--
-- queues: every queue ever dispatched to or paused.
--   name, paused (0/1), created_at
--   completed_held  how many completed jobs of the queue the jobs table holds, kept by the
--                   triggers completed_count_*; lets complete trim to completed_max cheaply
--
-- meta: small named values. key 'restart_requested_at' holds the last restart request.
--
-- heartbeats: (kind, member) -> data JSON, expires_at. Expired rows are never read and
--   are deleted whenever a heartbeat is written.
--
-- flags: cluster-wide named flags (name -> data JSON), permanent until cleared.
--
-- counters: per-minute counters of counter_add (schema_v5), one row per (key, minute, field);
--   n is the count; minutes older than a week (COUNTER_RETENTION_S) are pruned on each add.
--
-- rate_buckets: token buckets of rate_take and rate_settle, one row per "key:name".
--   level       tokens left at updated_at (below zero after a settle charged more than was left)
--   updated_at  when level was last computed (refill is continuous from there)
--   expires_at  updated_at + 2 * window; an expired bucket counts as full and is pruned
--
-- Each query below starts with a line "-- name: <query_name>"; the backend loads
-- them by name. Parameters are named (:queue, :now, ...).

-- name: schema
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    queue        TEXT NOT NULL,
    name         TEXT NOT NULL,
    spec         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'reserved', 'completed', 'failed')),
    available_at REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    exceptions   INTEGER NOT NULL DEFAULT 0,
    reservation  TEXT,
    reserved_by  TEXT,
    lease_until  REAL,
    reserved_at  REAL,
    finished_at  REAL,
    runtime_s    REAL,
    error        TEXT,
    unique_key   TEXT,
    created_at   REAL NOT NULL
);
-- reserve: the oldest due pending jobs of one queue, FIFO by (available_at, id)
CREATE INDEX IF NOT EXISTS jobs_reserve ON jobs (queue, state, available_at, id);
-- reclaiming lost leases reads only reserved rows
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (queue, lease_until) WHERE state = 'reserved';
-- failed store pages, recent completed, retention pruning
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, queue, finished_at);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'reserved');

CREATE TABLE IF NOT EXISTS job_tags (
    tag    TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (tag, job_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_tags_job ON job_tags (job_id);
CREATE TRIGGER IF NOT EXISTS job_tags_follow_job AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_tags WHERE job_id = old.id;
END;

CREATE TABLE IF NOT EXISTS metrics (
    queue           TEXT NOT NULL,
    minute          INTEGER NOT NULL,
    completed       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    runtime_s_total REAL NOT NULL DEFAULT 0,
    wait_s_total    REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, minute)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS queues (
    name           TEXT PRIMARY KEY,
    paused         INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    completed_held INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS completed_count_up AFTER UPDATE OF state ON jobs
WHEN new.state = 'completed' AND old.state != 'completed'
BEGIN
    UPDATE queues SET completed_held = completed_held + 1 WHERE name = new.queue;
END;
CREATE TRIGGER IF NOT EXISTS completed_count_down AFTER DELETE ON jobs
WHEN old.state = 'completed'
BEGIN
    UPDATE queues SET completed_held = completed_held - 1 WHERE name = old.queue;
END;

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS heartbeats (
    kind       TEXT NOT NULL,
    member     TEXT NOT NULL,
    data       TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (kind, member)
) WITHOUT ROWID;

-- name: schema_v2
CREATE TABLE IF NOT EXISTS flags (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rate_buckets (
    key        TEXT PRIMARY KEY,
    level      REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- name: schema_v3
-- The failed store in age order ("retry all" streams it oldest first, "failed" pages it
-- newest first): an index walk per batch, where sorting every failed job for each batch
-- made retrying 100,000 of them take 26 times as long as 10,000.
CREATE INDEX IF NOT EXISTS jobs_failed_by_age ON jobs (finished_at, id) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS jobs_failed_by_queue_age ON jobs (queue, finished_at, id) WHERE state = 'failed';

-- name: schema_v4
ALTER TABLE jobs ADD COLUMN progressed TEXT;

-- name: schema_v5
CREATE TABLE IF NOT EXISTS counters (
    key    TEXT NOT NULL,
    minute INTEGER NOT NULL,
    field  TEXT NOT NULL,
    n      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, minute, field)
) WITHOUT ROWID;

-- name: insert_job
-- Store one job; a duplicate id or a held unique key stores nothing (no row changed).
INSERT INTO jobs (id, queue, name, spec, state, available_at, attempts, exceptions, unique_key, created_at)
VALUES (:id, :queue, :name, :spec, 'pending', :available_at, :attempts, :exceptions, :unique_key, :created_at)
ON CONFLICT DO NOTHING;

-- name: unique_holder
SELECT id FROM jobs
 WHERE queue = :queue AND unique_key = :unique_key AND state IN ('pending', 'reserved');

-- name: insert_tag
INSERT OR IGNORE INTO job_tags (tag, job_id) VALUES (:tag, :job_id);

-- name: register_queue
INSERT OR IGNORE INTO queues (name, paused, created_at) VALUES (:queue, 0, :now);

-- name: is_paused
SELECT paused FROM queues WHERE name = :queue;

-- name: reservable
-- Is there anything reserve could take? Read-only, so idle polling never takes the write lock.
SELECT NOT coalesce((SELECT paused FROM queues WHERE name = :queue), 0)
   AND (EXISTS (SELECT 1 FROM jobs
                 WHERE queue = :queue AND state = 'pending' AND available_at <= :now)
        OR EXISTS (SELECT 1 FROM jobs
                    WHERE queue = :queue AND state = 'reserved' AND lease_until <= :now));

-- name: has_expired
SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = :queue AND state = 'reserved' AND lease_until <= :now);

-- name: reclaim_expired
-- Jobs whose worker stopped renewing the lease go back to pending. The attempt stays spent,
-- unless it recorded progress.
UPDATE jobs
   SET state = 'pending', reservation = NULL, reserved_by = NULL, lease_until = NULL, error = :error,
       attempts = max(attempts - coalesce(progressed = reservation, 0), 0), progressed = NULL
 WHERE queue = :queue AND state = 'reserved' AND lease_until <= :now;

-- name: lease
-- Lease up to :limit due jobs, oldest first; each gets its own reservation token.
UPDATE jobs
   SET state = 'reserved',
       attempts = attempts + 1,
       reservation = lower(hex(randomblob(8))),
       reserved_by = :worker_id,
       lease_until = :lease_until,
       reserved_at = :now,
       progressed = NULL
 WHERE id IN (SELECT id FROM jobs
               WHERE queue = :queue AND state = 'pending' AND available_at <= :now
               ORDER BY available_at, id
               LIMIT :limit)
RETURNING id, queue, spec, state, available_at, attempts, exceptions, reservation,
          lease_until, reserved_at, finished_at, runtime_s, error;

-- name: next_due
SELECT min(available_at) FROM jobs WHERE queue = :queue AND state = 'pending' AND available_at > :now;

-- name: extend
UPDATE jobs SET lease_until = :lease_until
 WHERE id = :id AND reservation = :reservation AND state = 'reserved';

-- name: complete
UPDATE jobs
   SET state = 'completed', reservation = NULL, reserved_by = NULL, lease_until = NULL, progressed = NULL,
       finished_at = :now, runtime_s = :runtime_s
 WHERE id = :id AND reservation = :reservation AND state = 'reserved'
RETURNING queue;

-- name: count_metrics
INSERT INTO metrics (queue, minute, completed, failed, runtime_s_total, wait_s_total)
VALUES (:queue, :minute, :completed, :failed, :runtime_s, :wait_s)
ON CONFLICT (queue, minute) DO UPDATE
   SET completed = completed + excluded.completed,
       failed = failed + excluded.failed,
       runtime_s_total = runtime_s_total + excluded.runtime_s_total,
       wait_s_total = wait_s_total + excluded.wait_s_total;

-- name: retry_later
-- The attempt is given back when asked (a release) or when it recorded progress; once.
UPDATE jobs
   SET state = 'pending', reservation = NULL, reserved_by = NULL, lease_until = NULL,
       available_at = :available_at,
       exceptions = exceptions + :exceptions_add,
       attempts = max(attempts - max(:attempts_refund, coalesce(progressed = reservation, 0)), 0),
       progressed = NULL,
       error = coalesce(:error, error)
 WHERE id = :id AND reservation = :reservation AND state = 'reserved';

-- name: record_progress
UPDATE jobs SET progressed = :reservation
 WHERE id = :id AND reservation = :reservation AND state = 'reserved';

-- name: fail
UPDATE jobs
   SET state = 'failed', reservation = NULL, reserved_by = NULL, lease_until = NULL, progressed = NULL,
       finished_at = :now, error = :error, exceptions = exceptions + :counted
 WHERE id = :id AND reservation = :reservation AND state = 'reserved'
RETURNING queue;

-- name: failed_count
SELECT count(*) FROM jobs WHERE state = 'failed' AND (:queue IS NULL OR queue = :queue);

-- The failed store by age, over every queue or in one: two queries each, each walking its
-- index (schema_v3, named: without statistics the planner would rather sort every failed
-- job by the state index, for every page and every batch).
-- name: failed_page
SELECT id, queue, spec, state, available_at, attempts, exceptions, reservation,
       lease_until, reserved_at, finished_at, runtime_s, error
  FROM jobs INDEXED BY jobs_failed_by_age
 WHERE state = 'failed'
 ORDER BY finished_at DESC, id DESC
 LIMIT :limit OFFSET :offset;

-- name: failed_page_in_queue
SELECT id, queue, spec, state, available_at, attempts, exceptions, reservation,
       lease_until, reserved_at, finished_at, runtime_s, error
  FROM jobs INDEXED BY jobs_failed_by_queue_age
 WHERE state = 'failed' AND queue = :queue
 ORDER BY finished_at DESC, id DESC
 LIMIT :limit OFFSET :offset;

-- name: oldest_failed_ids
SELECT id FROM jobs INDEXED BY jobs_failed_by_age
 WHERE state = 'failed'
 ORDER BY finished_at, id
 LIMIT :limit;

-- name: oldest_failed_ids_in_queue
SELECT id FROM jobs INDEXED BY jobs_failed_by_queue_age
 WHERE state = 'failed' AND queue = :queue
 ORDER BY finished_at, id
 LIMIT :limit;

-- name: retry_failed
-- A job whose unique key is held again by a live job is retried all the same (the operator
-- asked for it), without its key, so it never displaces the holder. OR IGNORE is the last
-- guard: were two failed jobs of one key retried in one call, the second stays failed.
-- `+state` keeps the lookup on the primary key: by the state index it read every failed job.
UPDATE OR IGNORE jobs
   SET state = 'pending', attempts = 0, exceptions = 0, available_at = :now,
       finished_at = NULL, runtime_s = NULL, reserved_at = NULL,
       unique_key = CASE
           WHEN unique_key IS NOT NULL AND EXISTS (
               SELECT 1 FROM jobs AS holder
                WHERE holder.queue = jobs.queue AND holder.unique_key = jobs.unique_key
                  AND holder.state IN ('pending', 'reserved') AND holder.id <> jobs.id)
           THEN NULL ELSE unique_key END
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +state = 'failed';

-- name: forget_failed
DELETE FROM jobs WHERE id = :id AND state = 'failed';

-- name: flush_failed
DELETE FROM jobs
 WHERE state = 'failed'
   AND (:queue IS NULL OR queue = :queue)
   AND (:before IS NULL OR finished_at < :before);

-- name: set_paused
INSERT INTO queues (name, paused, created_at) VALUES (:queue, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused;

-- name: paused_queues
SELECT name FROM queues WHERE paused = 1 ORDER BY name;

-- name: clear
DELETE FROM jobs WHERE queue = :queue AND state = 'pending';

-- name: set_meta
INSERT INTO meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: get_meta
SELECT value FROM meta WHERE key = :key;

-- name: set_flag
INSERT INTO flags (name, data) VALUES (:name, :data)
ON CONFLICT (name) DO UPDATE SET data = excluded.data;

-- name: clear_flag
DELETE FROM flags WHERE name = :name;

-- name: get_flag
SELECT data FROM flags WHERE name = :name;

-- name: get_bucket
SELECT level, updated_at FROM rate_buckets WHERE key = :key AND expires_at > :now;

-- name: put_bucket
INSERT INTO rate_buckets (key, level, updated_at, expires_at) VALUES (:key, :level, :now, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    level = excluded.level, updated_at = excluded.updated_at, expires_at = excluded.expires_at;

-- name: prune_buckets
DELETE FROM rate_buckets WHERE expires_at <= :now;

-- name: counter_add
INSERT INTO counters (key, minute, field, n) VALUES (:key, :minute, :field, :amount)
ON CONFLICT (key, minute, field) DO UPDATE SET n = n + excluded.n;

-- name: prune_counters
DELETE FROM counters WHERE minute < :before;

-- name: counter_totals
SELECT field, sum(n) FROM counters WHERE key = :key AND minute >= :since GROUP BY field;

-- name: queues
SELECT name FROM queues ORDER BY name;

-- name: stats
SELECT count(*) FILTER (WHERE state = 'pending' AND available_at <= :now),
       count(*) FILTER (WHERE state = 'pending' AND available_at > :now),
       count(*) FILTER (WHERE state = 'reserved'),
       count(*) FILTER (WHERE state = 'failed'),
       min(available_at) FILTER (WHERE state = 'pending' AND available_at <= :now),
       (SELECT paused FROM queues WHERE name = :queue)
  FROM jobs
 WHERE queue = :queue AND state IN ('pending', 'reserved', 'failed');

-- name: metrics
SELECT minute, completed, failed, runtime_s_total, wait_s_total
  FROM metrics
 WHERE queue = :queue AND minute >= :since
 ORDER BY minute;

-- name: recent_completed
SELECT id, queue, spec, state, available_at, attempts, exceptions, reservation,
       lease_until, reserved_at, finished_at, runtime_s, error
  FROM jobs
 WHERE state = 'completed' AND queue = :queue AND finished_at >= :since
 ORDER BY finished_at DESC, id DESC
 LIMIT :limit;

-- name: pending_page
-- Waiting jobs in reserve's order: a walk of the reserve index (queue, state, available_at, id).
SELECT id, queue, spec, state, available_at, attempts, exceptions, reservation,
       lease_until, reserved_at, finished_at, runtime_s, error
  FROM jobs INDEXED BY jobs_reserve
 WHERE queue = :queue AND state = 'pending'
 ORDER BY available_at, id
 LIMIT :limit OFFSET :offset;

-- name: get
SELECT id, queue, spec, state, available_at, attempts, exceptions, reservation,
       lease_until, reserved_at, finished_at, runtime_s, error
  FROM jobs
 WHERE id = :id AND (state != 'completed' OR finished_at >= :since);

-- name: find_by_tag
SELECT j.id, j.queue, j.spec, j.state, j.available_at, j.attempts, j.exceptions, j.reservation,
       j.lease_until, j.reserved_at, j.finished_at, j.runtime_s, j.error
  FROM job_tags AS t JOIN jobs AS j ON j.id = t.job_id
 WHERE t.tag = :tag AND (j.state != 'completed' OR j.finished_at >= :since)
 ORDER BY j.created_at DESC, j.id DESC
 LIMIT :limit;

-- name: put_heartbeat
INSERT INTO heartbeats (kind, member, data, expires_at) VALUES (:kind, :member, :data, :expires_at)
ON CONFLICT (kind, member) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at;

-- name: heartbeats
SELECT data FROM heartbeats WHERE kind = :kind AND expires_at > :now ORDER BY member;

-- name: delete_heartbeat
DELETE FROM heartbeats WHERE kind = :kind AND member = :member;

-- name: prune_heartbeats
DELETE FROM heartbeats WHERE expires_at <= :now;

-- name: prune_completed_age
DELETE FROM jobs WHERE state = 'completed' AND queue = :queue AND finished_at < :before;

-- name: trim_completed
-- Keep at most :keep completed jobs of a queue: delete the oldest beyond that.
DELETE FROM jobs
 WHERE id IN (SELECT id FROM jobs
               WHERE state = 'completed' AND queue = :queue
               ORDER BY finished_at, id
               LIMIT max(0, (SELECT completed_held FROM queues WHERE name = :queue) - :keep));

-- name: prune_metrics
DELETE FROM metrics WHERE minute < :before;

-- name: wait_work
-- Work in any of the queues listed in :queues (JSON array): due pending jobs in an
-- unpaused queue, and the earliest moment a delayed job or a lease comes due.
SELECT EXISTS (SELECT 1 FROM jobs AS j, json_each(:queues) AS q
                WHERE j.queue = q.value AND j.state = 'pending' AND j.available_at <= :now
                  AND NOT coalesce((SELECT paused FROM queues WHERE name = q.value), 0)),
       (SELECT min(j.available_at) FROM jobs AS j, json_each(:queues) AS q
         WHERE j.queue = q.value AND j.state = 'pending' AND j.available_at > :now),
       (SELECT min(j.lease_until) FROM jobs AS j, json_each(:queues) AS q
         WHERE j.queue = q.value AND j.state = 'reserved');
