"""What only the SQLite backend has to prove: several processes on one file, the file itself,
and waking without a server to block on. The shared contract is in test_backend_conformance.py.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from docmill.queue import (
    Backend,
    BackendError,
    BackendUnavailable,
    Client,
    Completion,
    ConfigurationError,
    Dispatch,
    ErrorInfo,
    Job,
    JobOptions,
    backend_from_url,
)
from docmill.queue.backends.sqlite import SCHEMA_VERSION, load_queries

Connect = Callable[..., Awaitable[Backend]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue" / "q.db"


@pytest.fixture
async def connect(db_path: Path) -> AsyncIterator[Connect]:
    """Open a backend on the test's file; keyword arguments become URL options."""
    opened: list[Backend] = []

    async def open_backend(**options: Any) -> Backend:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        backend = backend_from_url(f"sqlite:///{db_path}" + (f"?{query}" if query else ""))
        await backend.connect()
        opened.append(backend)
        return backend

    yield open_backend
    for backend in reversed(opened):
        await backend.close()


def jobs(count: int, queue: str = "default", **options: Any) -> list[Job]:
    return [Job.build("tests.noop", [i], options=JobOptions(queue=queue, **options)) for i in range(count)]


def raw(db_path: Path, sql: str) -> Any:
    """Read the file directly, bypassing the backend's filters."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchone()[0]


# ---------------------------------------------------------------- several processes, one file


def _drain_in_process(url: str, start: Any, results: Any) -> None:
    """Child process: reserve and complete until the queue is empty; report every id it got."""

    async def drain() -> list[str]:
        backend = backend_from_url(url)
        await backend.connect()
        got: list[str] = []
        start.wait()
        while True:
            reservation = await backend.reserve("shared", worker_id="child", lease_s=60, limit=7)
            if not reservation.jobs:
                break
            got += [job.id for job in reservation.jobs]
            await backend.complete([Completion(job, 0.0, 0.0) for job in reservation.jobs])
        await backend.close()
        return got

    results.put(asyncio.run(drain()))


async def test_processes_reserving_from_one_file_never_get_the_same_job_twice(
    connect: Connect, db_path: Path
) -> None:
    # Given 2,000 jobs in one file
    backend = await connect()
    expected = {job_id for chunk in range(4) for job_id in await backend.enqueue(jobs(500, "shared"))}
    assert len(expected) == 2000

    # When 4 processes drain it at once
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_drain_in_process, args=(f"sqlite:///{db_path}", start, results)) for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    start.set()
    got = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0

    # Then every job was handed out exactly once, and more than one process took part
    counts = Counter(job_id for ids in got for job_id in ids)
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert sum(1 for ids in got if ids) >= 2
    stats = await backend.stats("shared")
    assert (stats.pending, stats.reserved) == (0, 0)
    assert raw(db_path, "SELECT max(attempts) FROM jobs") == 1


_RESERVE_AND_HANG = """
import asyncio, sys, time
from docmill.queue import backend_from_url

async def main():
    backend = backend_from_url(sys.argv[1])
    await backend.connect()
    reservation = await backend.reserve("default", worker_id="doomed", lease_s=0.5, limit=10)
    print(" ".join(job.id for job in reservation.jobs), flush=True)
    time.sleep(60)

asyncio.run(main())
"""


async def test_jobs_of_a_killed_process_come_back_when_its_lease_lapses(
    connect: Connect, db_path: Path
) -> None:
    backend = await connect()
    ids = await backend.enqueue(jobs(10))

    # Given a process that reserved every job and was then killed with SIGKILL
    child = subprocess.Popen(
        [sys.executable, "-c", _RESERVE_AND_HANG, f"sqlite:///{db_path}"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    held = child.stdout.readline().split()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert sorted(held) == sorted(ids)
    assert (await backend.reserve("default", worker_id="w", lease_s=30, limit=10)).jobs == []

    # When its lease lapses, another worker gets every job, with the lost attempt counted
    await asyncio.sleep(0.7)
    reservation = await backend.reserve("default", worker_id="w", lease_s=30, limit=10)
    assert [job.id for job in reservation.jobs] == ids
    assert {job.attempts for job in reservation.jobs} == {2}
    assert {job.error.type for job in reservation.jobs if job.error} == {"LeaseExpired"}


# ---------------------------------------------------------------- the file


async def test_wal_mode_is_on_and_the_schema_is_versioned(connect: Connect, db_path: Path) -> None:
    await connect()
    assert raw(db_path, "PRAGMA journal_mode") == "wal"
    assert raw(db_path, "PRAGMA user_version") == SCHEMA_VERSION


async def test_a_file_that_is_not_a_database_gives_backend_unavailable(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"%PDF-1.7 certainly not SQLite\n" * 200)
    backend = backend_from_url(f"sqlite:///{db_path}")
    with pytest.raises(BackendUnavailable, match=r"is not an SQLite database .*move it aside"):
        await backend.connect()


async def test_a_path_that_cannot_be_created_gives_backend_unavailable(tmp_path: Path) -> None:
    # A regular file where the directory should be (permissions cannot stop root, this can)
    (tmp_path / "storage").write_text("a file, not a directory")
    backend = backend_from_url(f"sqlite:///{tmp_path}/storage/queue.db")
    with pytest.raises(BackendUnavailable, match="cannot create the directory"):
        await backend.connect()


FAILED_STORE_INDEXES = {"jobs_failed_by_age", "jobs_failed_by_queue_age"}


def indexes(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


async def fail_one(backend: Backend, queue: str = "default") -> str:
    [job_id] = await Client(backend).dispatch_many([Dispatch("h", options=JobOptions(queue=queue))])
    [job] = (await backend.reserve(queue, worker_id="w", lease_s=30)).jobs
    await backend.fail(job, ErrorInfo("RuntimeError", "boom"))
    return job_id


async def test_a_file_from_schema_2_gains_the_failed_store_indexes_and_keeps_its_jobs(
    db_path: Path, connect: Connect
) -> None:
    # Given a file as docmill left it at schema 2, with a failed job in it
    backend = await connect()
    job_id = await fail_one(backend)
    await backend.close()
    with sqlite3.connect(db_path) as conn:
        for name in FAILED_STORE_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("PRAGMA user_version = 2")
    # When this docmill opens it
    reopened = await connect()
    # Then it is migrated, and the failed job is listed and streamed as before
    assert raw(db_path, "PRAGMA user_version") == SCHEMA_VERSION
    assert indexes(db_path) >= FAILED_STORE_INDEXES
    assert [job.id for job in await reopened.failed_page()] == [job_id]
    assert await reopened.oldest_failed_ids("default") == [job_id]


async def test_a_file_from_schema_3_gains_progress_and_keeps_its_reserved_job(
    db_path: Path, connect: Connect
) -> None:
    # Given a file as docmill left it at schema 3, with a job reserved when it stopped
    backend = await connect()
    await Client(backend).dispatch("h")
    [job] = (await backend.reserve("default", worker_id="w", lease_s=30)).jobs
    await backend.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("ALTER TABLE jobs DROP COLUMN progressed")
        conn.execute("PRAGMA user_version = 3")

    # When this docmill opens it, the reservation still holds and can record progress
    reopened = await connect()
    assert raw(db_path, "PRAGMA user_version") == SCHEMA_VERSION
    assert await reopened.record_progress(job)
    assert await reopened.retry_later(job, delay_s=0, error=None, count_exception=False, refund_attempt=False)
    stored = await reopened.get(job.id)
    assert stored is not None and stored.attempts == 0


@pytest.mark.parametrize(
    "query", ["failed_page", "failed_page_in_queue", "oldest_failed_ids", "oldest_failed_ids_in_queue"]
)
async def test_the_failed_store_is_read_along_an_index_never_sorted_whole(
    db_path: Path, connect: Connect, query: str
) -> None:
    await connect()
    sql = load_queries()[query].strip().rstrip(";")
    params = {"queue": "default", "limit": 500, "offset": 0}
    with sqlite3.connect(db_path) as conn:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "USING INDEX jobs_failed_by" in plan and "TEMP B-TREE" not in plan, plan


async def test_retrying_failed_jobs_looks_them_up_by_id(db_path: Path, connect: Connect) -> None:
    await connect()
    sql = load_queries()["retry_failed"].strip().rstrip(";")
    with sqlite3.connect(db_path) as conn:
        plan = " | ".join(
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {"ids": "[]", "now": 0.0})
        )
    assert "jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)" in plan, plan


async def test_a_newer_schema_is_refused(db_path: Path, connect: Connect) -> None:
    backend = await connect()
    await backend.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(BackendUnavailable, match="schema version 99, newer"):
        await backend_from_url(f"sqlite:///{db_path}").connect()


async def test_relative_urls_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = backend_from_url("sqlite:///storage/queue.db")
    await backend.connect()
    await backend.close()
    assert (tmp_path / "storage" / "queue.db").is_file()


def test_a_url_with_a_host_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"sqlite:///storage/queue\.db"):
        backend_from_url("sqlite://storage/queue.db")


async def test_a_locked_file_raises_backend_error_without_blocking_the_loop(
    connect: Connect, db_path: Path
) -> None:
    backend = await connect(busy_timeout_ms=300)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    # Given another connection holding the write lock
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    task = asyncio.create_task(ticker())
    try:
        # When a dispatch waits out the busy timeout, the event loop keeps running
        with pytest.raises(BackendError, match="locked"):
            await backend.enqueue(jobs(1))
    finally:
        task.cancel()
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ticks >= 10


# ---------------------------------------------------------------- retention


async def test_completed_jobs_past_retention_are_deleted_from_the_file(
    connect: Connect, db_path: Path
) -> None:
    backend = await connect(completed_retention_s=0.2, prune_interval_s=0)
    for job in await _reserve_all(backend, 5):
        await backend.complete([Completion(job, 0.01, 0.0)])
    assert raw(db_path, "SELECT count(*) FROM jobs WHERE state = 'completed'") == 5

    await asyncio.sleep(0.3)
    [late] = await _reserve_all(backend, 1)
    await backend.complete([Completion(late, 0.01, 0.0)])

    assert raw(db_path, "SELECT count(*) FROM jobs WHERE state = 'completed'") == 1
    assert [job.id for job in await backend.recent_completed("default")] == [late.id]


async def test_the_file_holds_at_most_completed_max_completed_jobs_per_queue(
    connect: Connect, db_path: Path
) -> None:
    backend = await connect(completed_max=3)
    reserved = await _reserve_all(backend, 10)
    await backend.complete([Completion(job, 0.01, 0.0) for job in reserved[:6]])
    await backend.complete([Completion(job, 0.01, 0.0) for job in reserved[6:]])

    assert raw(db_path, "SELECT count(*) FROM jobs WHERE state = 'completed'") == 3
    assert raw(db_path, "SELECT completed_held FROM queues WHERE name = 'default'") == 3
    # The survivors come from the newer batch (a batch shares one finish time)
    kept = {job.id for job in await backend.recent_completed("default")}
    assert len(kept) == 3
    assert kept <= {job.id for job in reserved[6:]}


async def _reserve_all(backend: Backend, count: int) -> list[Job]:
    await backend.enqueue(jobs(count))
    return (await backend.reserve("default", worker_id="w", lease_s=30, limit=count)).jobs


# ---------------------------------------------------------------- waking


async def test_wait_wakes_on_a_commit_from_another_connection(connect: Connect) -> None:
    worker_side, producer_side = await connect(), await connect()

    async def dispatch_later() -> float:
        await asyncio.sleep(0.2)
        await producer_side.enqueue(jobs(1))
        return time.monotonic()

    producer = asyncio.create_task(dispatch_later())
    started = time.monotonic()
    await worker_side.wait(["default"], timeout_s=5.0)
    woke = time.monotonic()
    dispatched = await producer

    assert woke - started >= 0.15  # it did wait for the commit
    assert woke - dispatched < 0.1  # and noticed it within a few polls


async def test_wait_sleeps_through_commits_that_bring_no_work(connect: Connect) -> None:
    worker_side, other = await connect(), await connect()
    await other.enqueue(jobs(1, "elsewhere"))

    async def chatter() -> None:
        for i in range(100):
            await other.put_heartbeat("worker", "w1", {"beat": i}, ttl_s=10)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(chatter())
    started = time.monotonic()
    await worker_side.wait(["default"], timeout_s=0.4)
    task.cancel()
    assert time.monotonic() - started >= 0.35


async def test_wait_wakes_when_a_delayed_job_comes_due(connect: Connect) -> None:
    backend = await connect()
    await backend.enqueue(jobs(1, delay_s=0.2))
    started = time.monotonic()
    await backend.wait(["default"], timeout_s=5.0)
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_an_empty_reserve_does_not_write_to_the_file(connect: Connect, db_path: Path) -> None:
    # Idle workers poll; if polling committed, every poll would wake every other worker.
    backend = await connect()
    observer = sqlite3.connect(db_path, isolation_level=None)
    try:
        before = observer.execute("PRAGMA data_version").fetchone()[0]
        for _ in range(5):
            assert (await backend.reserve("default", worker_id="w", lease_s=30, limit=10)).jobs == []
        assert observer.execute("PRAGMA data_version").fetchone()[0] == before
    finally:
        observer.close()
