"""SQLite backend: the embedded default. One file, one host, several worker processes.

How it keeps the contract in ``docmill.queue.backend``:

* Every sqlite3 call runs in one thread per backend instance (a single-thread
  executor that owns the connection), so a writer waiting for the file lock
  never blocks the event loop.
* Every state change is one ``BEGIN IMMEDIATE`` transaction. Processes sharing
  the file take the write lock in turn (``busy_timeout``), so two workers can
  never lease the same job. WAL mode lets readers run while one process writes.
* SQLite cannot block a reader until something changes, so ``wait`` polls
  ``PRAGMA data_version`` (it changes when *another* connection commits and
  reads no table) every few milliseconds; this instance's own writes wake it
  through an in-process event.
* The schema and every query live in ``sqlite_schema.sql``, whose header
  documents each table and column.

URLs: ``sqlite:///storage/queue.db`` (relative to the working directory) or
``sqlite:////abs/path/queue.db``. Besides the ``BackendSettings`` fields the
query string accepts ``busy_timeout_ms`` (default 5000) and
``prune_interval_s`` (how often completed jobs, metrics and heartbeats past
retention are deleted; default 5). ``unique_lock_ttl_s`` and
``tag_retention_s`` need no counterpart here: a unique key and a tag live
exactly as long as their job's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from docmill.queue.backend import (
    Backend,
    BackendSettings,
    Completion,
    MinuteMetrics,
    QueueStats,
    Reservation,
)
from docmill.queue.buckets import Bucket, settle, take
from docmill.queue.counters import COUNTER_RETENTION_S, first_minute, minute_of
from docmill.queue.errors import BackendError, BackendUnavailable, ConfigurationError
from docmill.queue.job import ErrorInfo, Job, JobState

P = ParamSpec("P")
T = TypeVar("T")

# The SQL file's "schema" builds version 1; "schema_v<N>" takes a file from N-1 to N.
# Migrations run in order under the write lock.
SCHEMA_VERSION = 5

POLL_INTERVAL_S = 0.005  # how often wait() reads PRAGMA data_version
PRUNE_EVERY_COMPLETIONS = 1000
LEASE_EXPIRED = ErrorInfo(
    "LeaseExpired", "the worker holding this job stopped renewing its lease (it probably died)"
)
_RESTART_KEY = "restart_requested_at"


@functools.cache
def load_queries() -> dict[str, str]:
    """The named statements of ``sqlite_schema.sql`` (``-- name: x`` starts statement ``x``)."""
    text = resources.files("docmill.queue.backends").joinpath("sqlite_schema.sql").read_text("utf-8")
    parts = re.split(r"^-- name: (\w+)[ \t]*$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def database_path(url: str) -> Path:
    """The file a ``sqlite:///relative`` or ``sqlite:////absolute`` URL names."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise ConfigurationError(
            f"SQLite queue URL {url!r} must look like sqlite:///storage/queue.db (relative) "
            "or sqlite:////abs/path/queue.db (absolute)"
        )
    return Path(parts.path[1:])


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: takes the file's write lock first, so it never has to upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _rows(conn: sqlite3.Connection, sql: str, params: Mapping[str, Any] | None = None) -> list[sqlite3.Row]:
    # fetchall() runs each statement to completion, so no read snapshot outlives its query.
    return conn.execute(sql, params or {}).fetchall()


def _scalar(conn: sqlite3.Connection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    rows = _rows(conn, sql, params)
    return rows[0][0] if rows else None


def _job(row: sqlite3.Row, now: float) -> Job:
    job = Job.from_spec(row["spec"])
    state = JobState(row["state"])
    if state is JobState.PENDING and row["available_at"] > now:
        state = JobState.DELAYED
    job.state = state
    job.available_at = row["available_at"]
    job.attempts = row["attempts"]
    job.exceptions = row["exceptions"]
    job.reservation = row["reservation"]
    job.lease_until = row["lease_until"]
    job.reserved_at = row["reserved_at"]
    job.finished_at = row["finished_at"]
    job.runtime_s = row["runtime_s"]
    job.error = ErrorInfo.from_dict(json.loads(row["error"])) if row["error"] else None
    return job


def _error_json(error: ErrorInfo | None) -> str | None:
    return json.dumps(error.to_dict()) if error is not None else None


def _explain_open_error(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text:
        return (
            f"{path} is not an SQLite database (corrupt, or another kind of file); "
            "move it aside or point the queue URL at another file"
        )
    if "unable to open" in text or "readonly" in text:
        return (
            f"cannot open or create the SQLite queue database {path} ({text}); "
            "check that the file and its directory are writable"
        )
    return f"cannot use the SQLite queue database {path}: {text}"


class SQLiteBackend(Backend):
    """Jobs in one SQLite file shared by the processes of one host."""

    def __init__(self, url: str, settings: BackendSettings | None = None) -> None:
        self.url = url
        self.settings = settings or BackendSettings()
        self.path = database_path(url)
        try:
            self.busy_timeout_ms = int(self.settings.extra.get("busy_timeout_ms", "5000"))
            self.prune_interval_s = float(self.settings.extra.get("prune_interval_s", "5"))
        except ValueError as exc:
            raise ConfigurationError(f"SQLite queue URL {url!r} has a non-numeric option: {exc}") from exc
        self._q = load_queries()
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wakeup = asyncio.Event()
        # Touched only on the executor thread.
        self._completed_since_prune = 0
        self._last_prune = 0.0

    # ------------------------------------------------------------ plumbing
    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` on the connection's thread; sqlite3 errors become BackendError."""
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise BackendError(
                f"the SQLite queue backend for {self.path} is not connected; call connect() first"
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, functools.partial(fn, conn, *args, **kwargs))
        except sqlite3.Error as exc:
            raise BackendError(f"SQLite queue database {self.path} failed: {exc}") from exc

    def _notify_local(self) -> None:
        """Wake this instance's waiters: its own commits do not change its data_version."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, self._open)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._conn, self._executor = conn, executor
        self._wakeup = asyncio.Event()  # bound to this loop, should the instance outlive an earlier one

    def _open(self) -> sqlite3.Connection:
        path = self.path.absolute()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot create the directory {path.parent} for the SQLite queue database: "
                f"{exc.strerror or exc}"
            ) from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                path, timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            mode = _scalar(conn, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise BackendUnavailable(
                    f"the SQLite queue database {path} cannot use WAL mode (journal mode stayed "
                    f"{mode!r}); put it on a local filesystem"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn, path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise BackendUnavailable(_explain_open_error(path, exc)) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection, path: Path) -> None:
        if _scalar(conn, "PRAGMA user_version") == SCHEMA_VERSION:
            return
        with _immediate(conn):
            version = int(_scalar(conn, "PRAGMA user_version"))  # again: another process may have won
            if version > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"the SQLite queue database {path} has schema version {version}, newer than this "
                    f"docmill understands ({SCHEMA_VERSION}); upgrade docmill"
                )
            if version == SCHEMA_VERSION:
                return
            scripts = [self._q["schema"]] if version == 0 else []
            scripts += [self._q[f"schema_v{v}"] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)]
            for script in scripts:
                for statement in _statements(script):
                    try:
                        conn.execute(statement)
                    except sqlite3.OperationalError as exc:
                        # ADD COLUMN has no IF NOT EXISTS: a column already there is the goal met.
                        if "duplicate column name" not in str(exc):
                            raise
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def close(self) -> None:
        conn, executor = self._conn, self._executor
        self._conn = self._executor = None
        if conn is None or executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            executor.shutdown(wait=False)

    # ------------------------------------------------------------ producing
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        if not jobs:
            return []
        ids = await self._run(self._enqueue, list(jobs))
        self._notify_local()
        return ids

    def _enqueue(self, conn: sqlite3.Connection, jobs: list[Job]) -> list[str]:
        q = self._q
        now = time.time()
        params = [
            {
                "id": job.id,
                "queue": job.queue,
                "name": job.name,
                "spec": job.spec_json(),
                "available_at": job.available_at,
                "attempts": job.attempts,
                "exceptions": job.exceptions,
                "unique_key": job.unique_key,
                "created_at": job.created_at or now,
            }
            for job in jobs
        ]
        ids = [job.id for job in jobs]
        stored = [True] * len(jobs)
        with _immediate(conn):
            conn.executemany(
                q["register_queue"], [{"queue": name, "now": now} for name in {j.queue for j in jobs}]
            )
            conn.executemany(q["insert_job"], [p for p in params if p["unique_key"] is None])
            # Unique jobs one by one, in order: a key may be taken by an earlier job of this batch.
            for i, p in enumerate(params):
                if p["unique_key"] is not None and conn.execute(q["insert_job"], p).rowcount == 0:
                    holder = _scalar(conn, q["unique_holder"], p)
                    stored[i] = holder is None  # None: the id itself was already stored
                    ids[i] = holder or ids[i]
            conn.executemany(
                q["insert_tag"],
                [
                    {"tag": tag, "job_id": job.id}
                    for job, ok in zip(jobs, stored, strict=True)
                    if ok
                    for tag in job.tags
                ],
            )
        return ids

    # ------------------------------------------------------------ consuming
    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Reservation:
        return await self._run(self._reserve, queue, worker_id, lease_s, limit)

    def _reserve(
        self, conn: sqlite3.Connection, queue: str, worker_id: str, lease_s: float, limit: int
    ) -> Reservation:
        q = self._q
        now = time.time()
        jobs: list[Job] = []
        # Read first: an idle poll must not take the write lock every other process needs.
        if limit > 0 and _scalar(conn, q["reservable"], {"queue": queue, "now": now}):
            with _immediate(conn):
                now = time.time()
                if _scalar(conn, q["is_paused"], {"queue": queue}):
                    return Reservation([], None)
                conn.execute(
                    q["reclaim_expired"], {"queue": queue, "now": now, "error": _error_json(LEASE_EXPIRED)}
                )
                rows = _rows(
                    conn,
                    q["lease"],
                    {
                        "queue": queue,
                        "now": now,
                        "worker_id": worker_id,
                        "lease_until": now + lease_s,
                        "limit": limit,
                    },
                )
            jobs = sorted((_job(row, now) for row in rows), key=lambda job: (job.available_at, job.id))
        elif _scalar(conn, q["is_paused"], {"queue": queue}):
            return Reservation([], None)
        next_due = _scalar(conn, q["next_due"], {"queue": queue, "now": now})
        return Reservation(jobs, next_due)

    async def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + max(0.0, timeout_s)
        waiter = asyncio.ensure_future(self._wakeup.wait())
        try:
            version = await self._run(self._data_version)
            has_work, wake_at = await self._run(self._probe, list(queues))
            while not has_work:
                # Also wake when a delayed job comes due or a lease lapses: no commit announces those.
                deadline = give_up if wake_at is None else min(give_up, loop.time() + wake_at - time.time())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                done, _ = await asyncio.wait({waiter}, timeout=min(POLL_INTERVAL_S, remaining))
                if done:
                    return
                current = await self._run(self._data_version)
                if current != version:
                    version = current
                    has_work, wake_at = await self._run(self._probe, list(queues))
        finally:
            waiter.cancel()

    @staticmethod
    def _data_version(conn: sqlite3.Connection) -> int:
        return int(_scalar(conn, "PRAGMA data_version"))

    def _probe(self, conn: sqlite3.Connection, queues: list[str]) -> tuple[bool, float | None]:
        """Whether any queue has due work now, and when the next delayed job or lease comes due."""
        row = _rows(conn, self._q["wait_work"], {"queues": json.dumps(queues), "now": time.time()})[0]
        times = [t for t in (row[1], row[2]) if t is not None]
        return bool(row[0]), (min(times) if times else None)

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        if not jobs:
            return []
        return await self._run(self._extend, list(jobs), lease_s)

    def _extend(self, conn: sqlite3.Connection, jobs: list[Job], lease_s: float) -> list[str]:
        lost: list[str] = []
        with _immediate(conn):
            lease_until = time.time() + lease_s
            for job in jobs:
                params = {"id": job.id, "reservation": job.reservation, "lease_until": lease_until}
                if conn.execute(self._q["extend"], params).rowcount == 0:
                    lost.append(job.id)
        return lost

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        if not completions:
            return []
        return await self._run(self._complete, list(completions))

    def _complete(self, conn: sqlite3.Connection, completions: list[Completion]) -> list[str]:
        q = self._q
        ignored: list[str] = []
        totals: dict[str, list[float]] = {}  # queue -> [completed, runtime, wait]
        with _immediate(conn):
            now = time.time()
            for c in completions:
                params = {
                    "id": c.job.id,
                    "reservation": c.job.reservation,
                    "now": now,
                    "runtime_s": c.runtime_s,
                }
                rows = _rows(conn, q["complete"], params)
                if not rows:
                    ignored.append(c.job.id)
                    continue
                total = totals.setdefault(rows[0][0], [0, 0.0, 0.0])
                total[0] += 1
                total[1] += c.runtime_s
                total[2] += c.wait_s
            for queue, (count, runtime_s, wait_s) in totals.items():
                self._count(conn, queue, now, completed=int(count), runtime_s=runtime_s, wait_s=wait_s)
                conn.execute(q["trim_completed"], {"queue": queue, "keep": self.settings.completed_max})
        self._completed_since_prune += len(completions) - len(ignored)
        if (
            self._completed_since_prune >= PRUNE_EVERY_COMPLETIONS
            or time.monotonic() - self._last_prune >= self.prune_interval_s
        ):
            self._prune(conn)
        return ignored

    def _count(
        self,
        conn: sqlite3.Connection,
        queue: str,
        now: float,
        *,
        completed: int = 0,
        failed: int = 0,
        runtime_s: float = 0.0,
        wait_s: float = 0.0,
    ) -> None:
        conn.execute(
            self._q["count_metrics"],
            {
                "queue": queue,
                "minute": int(now // 60) * 60,
                "completed": completed,
                "failed": failed,
                "runtime_s": runtime_s,
                "wait_s": wait_s,
            },
        )

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Delete completed jobs, metrics and heartbeats past retention (every few seconds at most)."""
        q, s = self._q, self.settings
        with _immediate(conn):
            now = time.time()
            for row in _rows(conn, q["queues"]):
                conn.execute(
                    q["prune_completed_age"], {"queue": row[0], "before": now - s.completed_retention_s}
                )
            conn.execute(q["prune_metrics"], {"before": now - s.metrics_retention_s})
            conn.execute(q["prune_heartbeats"], {"now": now})
        self._completed_since_prune = 0
        self._last_prune = time.monotonic()

    async def retry_later(
        self,
        job: Job,
        *,
        delay_s: float,
        error: ErrorInfo | None,
        count_exception: bool,
        refund_attempt: bool,
    ) -> bool:
        params = {
            "id": job.id,
            "reservation": job.reservation,
            "delay_s": max(0.0, delay_s),
            "exceptions_add": int(count_exception),
            "attempts_refund": int(refund_attempt),
            "error": _error_json(error),
        }
        done = await self._run(self._retry_later, params)
        if done:
            self._notify_local()
        return done

    def _retry_later(self, conn: sqlite3.Connection, params: dict[str, Any]) -> bool:
        with _immediate(conn):
            params["available_at"] = time.time() + params.pop("delay_s")
            return conn.execute(self._q["retry_later"], params).rowcount > 0

    async def record_progress(self, job: Job) -> bool:
        params = {"id": job.id, "reservation": job.reservation}
        return await self._run(self._write_count, "record_progress", params) > 0

    async def fail(self, job: Job, error: ErrorInfo, *, count_exception: bool = False) -> bool:
        return await self._run(self._fail, job.id, job.reservation, error, count_exception)

    def _fail(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        reservation: str | None,
        error: ErrorInfo,
        count_exception: bool,
    ) -> bool:
        with _immediate(conn):
            now = time.time()
            params = {
                "id": job_id,
                "reservation": reservation,
                "now": now,
                "error": _error_json(error),
                "counted": int(count_exception),
            }
            rows = _rows(conn, self._q["fail"], params)
            if rows:
                self._count(conn, rows[0][0], now, failed=1)
        return bool(rows)

    # ------------------------------------------------------------ failed store
    async def failed_count(self, queue: str | None = None) -> int:
        return int(await self._run(_scalar, self._q["failed_count"], {"queue": queue}))

    async def failed_page(self, queue: str | None = None, *, offset: int = 0, limit: int = 50) -> list[Job]:
        params = {"queue": queue, "offset": max(0, offset), "limit": max(0, limit)}
        return await self._run(self._jobs, "failed_page" if queue is None else "failed_page_in_queue", params)

    async def oldest_failed_ids(self, queue: str | None = None, *, limit: int = 500) -> list[str]:
        query = self._q["oldest_failed_ids" if queue is None else "oldest_failed_ids_in_queue"]
        rows = await self._run(_rows, query, {"queue": queue, "limit": max(0, limit)})
        return [row[0] for row in rows]

    async def retry_failed(self, job_ids: Sequence[str]) -> int:
        if not job_ids:
            return 0
        moved = await self._run(self._write_count, "retry_failed", {"ids": json.dumps(list(job_ids))})
        if moved:
            self._notify_local()
        return moved

    async def forget_failed(self, job_id: str) -> bool:
        return await self._run(self._write_count, "forget_failed", {"id": job_id}) > 0

    async def flush_failed(self, queue: str | None = None, *, older_than_s: float | None = None) -> int:
        return await self._run(self._flush_failed, queue, older_than_s)

    def _flush_failed(self, conn: sqlite3.Connection, queue: str | None, older_than_s: float | None) -> int:
        before = None if older_than_s is None else time.time() - older_than_s
        return self._write_count(conn, "flush_failed", {"queue": queue, "before": before})

    def _write_count(self, conn: sqlite3.Connection, query: str, params: dict[str, Any]) -> int:
        """Run one write statement in its own transaction; return how many rows it changed."""
        with _immediate(conn):
            params.setdefault("now", time.time())
            return conn.execute(self._q[query], params).rowcount

    def _jobs(self, conn: sqlite3.Connection, query: str, params: dict[str, Any]) -> list[Job]:
        now = time.time()
        return [_job(row, now) for row in _rows(conn, self._q[query], params)]

    # ------------------------------------------------------------ control
    async def pause(self, queue: str) -> None:
        await self._run(self._write_count, "set_paused", {"queue": queue, "paused": 1})

    async def resume(self, queue: str) -> None:
        await self._run(self._write_count, "set_paused", {"queue": queue, "paused": 0})
        self._notify_local()

    async def paused_queues(self) -> set[str]:
        return {row[0] for row in await self._run(_rows, self._q["paused_queues"])}

    async def clear(self, queue: str) -> int:
        return await self._run(self._write_count, "clear", {"queue": queue})

    async def request_restart(self) -> float:
        now = time.time()
        await self._run(self._write_count, "set_meta", {"key": _RESTART_KEY, "value": repr(now)})
        return now

    async def restart_requested_at(self) -> float | None:
        value = await self._run(_scalar, self._q["get_meta"], {"key": _RESTART_KEY})
        return None if value is None else float(value)

    # ------------------------------------------------------------ observability
    async def queues(self) -> list[str]:
        return [row[0] for row in await self._run(_rows, self._q["queues"])]

    async def stats(self, queue: str) -> QueueStats:
        return await self._run(self._stats, queue)

    def _stats(self, conn: sqlite3.Connection, queue: str) -> QueueStats:
        q = self._q
        if _scalar(conn, q["has_expired"], {"queue": queue, "now": time.time()}):
            with _immediate(conn):
                params = {"queue": queue, "now": time.time(), "error": _error_json(LEASE_EXPIRED)}
                conn.execute(q["reclaim_expired"], params)
        now = time.time()
        row = _rows(conn, q["stats"], {"queue": queue, "now": now})[0]
        return QueueStats(
            queue=queue,
            pending=row[0],
            delayed=row[1],
            reserved=row[2],
            failed=row[3],
            paused=bool(row[5]),
            oldest_pending_age_s=None if row[4] is None else max(0.0, now - row[4]),
        )

    async def metrics(self, queue: str, *, minutes: int = 60) -> list[MinuteMetrics]:
        since = int(time.time() // 60) * 60 - (max(1, minutes) - 1) * 60
        rows = await self._run(_rows, self._q["metrics"], {"queue": queue, "since": since})
        return [MinuteMetrics(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def recent_completed(self, queue: str, *, limit: int = 50) -> list[Job]:
        params = {
            "queue": queue,
            "since": time.time() - self.settings.completed_retention_s,
            "limit": max(0, min(limit, self.settings.completed_max)),
        }
        return await self._run(self._jobs, "recent_completed", params)

    async def pending_page(self, queue: str, *, offset: int = 0, limit: int = 50) -> list[Job]:
        params = {"queue": queue, "offset": max(0, offset), "limit": max(0, limit)}
        return await self._run(self._jobs, "pending_page", params)

    async def get(self, job_id: str) -> Job | None:
        params = {"id": job_id, "since": time.time() - self.settings.completed_retention_s}
        jobs = await self._run(self._jobs, "get", params)
        return jobs[0] if jobs else None

    async def find_by_tag(self, tag: str, *, limit: int = 100) -> list[Job]:
        params = {
            "tag": tag,
            "since": time.time() - self.settings.completed_retention_s,
            "limit": max(0, limit),
        }
        return await self._run(self._jobs, "find_by_tag", params)

    # ------------------------------------------------------------ heartbeats
    # ------------------------------------------------------------ flags
    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        if data is None:
            await self._run(self._write_count, "clear_flag", {"name": name})
        else:
            await self._run(self._write_count, "set_flag", {"name": name, "data": json.dumps(dict(data))})

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        value = await self._run(_scalar, self._q["get_flag"], {"name": name})
        return None if value is None else dict(json.loads(value))

    # ------------------------------------------------------------ rate limits
    async def rate_take(
        self,
        key: str,
        costs: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> float:
        return await self._run(self._rate_take, key, dict(costs), dict(capacities), window_s)

    def _rate_take(
        self,
        conn: sqlite3.Connection,
        key: str,
        costs: dict[str, float],
        capacities: dict[str, float],
        window_s: float,
    ) -> float:
        with _immediate(conn):
            now = time.time()
            current: dict[str, Bucket | None] = {}
            for name in costs:
                rows = _rows(conn, self._q["get_bucket"], {"key": f"{key}:{name}", "now": now})
                current[name] = Bucket(rows[0][0], rows[0][1]) if rows else None
            wait_s, new = take(current, costs, capacities, window_s, now)
            for name, bucket in new.items():
                params = {"key": f"{key}:{name}", "level": bucket.level, "now": now}
                conn.execute(self._q["put_bucket"], {**params, "expires_at": now + 2 * window_s})
            if wait_s == 0.0 and os.urandom(1)[0] < 3:  # ~1 % of takes sweep idle buckets
                conn.execute(self._q["prune_buckets"], {"now": now})
            return wait_s

    async def rate_settle(
        self,
        key: str,
        charges: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> None:
        await self._run(self._rate_settle, key, dict(charges), dict(capacities), window_s)

    def _rate_settle(
        self,
        conn: sqlite3.Connection,
        key: str,
        charges: dict[str, float],
        capacities: dict[str, float],
        window_s: float,
    ) -> None:
        with _immediate(conn):
            now = time.time()
            current: dict[str, Bucket | None] = {}
            for name in charges:
                rows = _rows(conn, self._q["get_bucket"], {"key": f"{key}:{name}", "now": now})
                current[name] = Bucket(rows[0][0], rows[0][1]) if rows else None
            for name, bucket in settle(current, charges, capacities, window_s, now).items():
                params = {"key": f"{key}:{name}", "level": bucket.level, "now": now}
                conn.execute(self._q["put_bucket"], {**params, "expires_at": now + 2 * window_s})

    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        await self._run(self._counter_add, key, field, amount)

    def _counter_add(self, conn: sqlite3.Connection, key: str, field: str, amount: int) -> None:
        with _immediate(conn):
            now = time.time()
            params = {"key": key, "minute": minute_of(now), "field": field, "amount": amount}
            conn.execute(self._q["counter_add"], params)
            conn.execute(self._q["prune_counters"], {"before": minute_of(now - COUNTER_RETENTION_S)})

    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        now = time.time()
        since = max(first_minute(now, minutes), minute_of(now - COUNTER_RETENTION_S))
        rows = await self._run(_rows, self._q["counter_totals"], {"key": key, "since": since})
        return {row[0]: int(row[1]) for row in rows}

    async def put_heartbeat(self, kind: str, member: str, data: Mapping[str, Any], ttl_s: float) -> None:
        await self._run(self._put_heartbeat, kind, member, json.dumps(dict(data)), ttl_s)

    def _put_heartbeat(
        self, conn: sqlite3.Connection, kind: str, member: str, data: str, ttl_s: float
    ) -> None:
        with _immediate(conn):
            now = time.time()
            conn.execute(self._q["prune_heartbeats"], {"now": now})
            params = {"kind": kind, "member": member, "data": data, "expires_at": now + ttl_s}
            conn.execute(self._q["put_heartbeat"], params)

    async def heartbeats(self, kind: str) -> list[dict[str, Any]]:
        rows = await self._run(_rows, self._q["heartbeats"], {"kind": kind, "now": time.time()})
        return [json.loads(row[0]) for row in rows]

    async def delete_heartbeat(self, kind: str, member: str) -> None:
        await self._run(self._write_count, "delete_heartbeat", {"kind": kind, "member": member})
