"""`docmill queue work` as an operator runs it: real processes, real signals, real backends.

Each test runs on SQLite (a file in tmp_path) and on Redis (skipped on a laptop
without it, required in CI). Assertions read the worker's JSON log events and
the backend's state, never loose substrings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docmill.queue import Backend, Client, Dispatch, Job, JobOptions, JobState, backend_from_url

HERE = Path(__file__).resolve().parent
DOCMILL = str(Path(sys.executable).with_name("docmill"))


class WorkerProcess:
    """One `docmill queue work --json` process whose log events are collected as they come."""

    def __init__(self, url: str, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        argv = [DOCMILL, "queue", "work", "--connection", url, "--app", "worker_jobs:registry", "--json"]
        self.proc = subprocess.Popen(
            [*argv, "--sleep", "0.2", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            with contextlib.suppress(ValueError):  # a traceback line, not an event
                self.events.append(json.loads(line))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    def wait_for(self, event: str, count: int = 1, timeout_s: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.named(event)) < count:
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._reader.is_alive()):
                raise AssertionError(f"no {count}x {event} in time; log:\n{''.join(self.raw)}")
            time.sleep(0.02)
        return self.named(event)

    def wait(self, timeout_s: float = 20) -> int:
        code = self.proc.wait(timeout_s)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/queue.db"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


def start(workers: list[WorkerProcess], url: str, *args: str) -> WorkerProcess:
    worker = WorkerProcess(url, *args)
    workers.append(worker)
    return worker


def on_backend(url: str, action: Any) -> Any:
    async def run() -> Any:
        backend = backend_from_url(url)
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    return asyncio.run(run())


def dispatch(url: str, items: list[Dispatch]) -> list[str]:
    ids: list[str] = on_backend(url, lambda backend: Client(backend).dispatch_many(items))
    return ids


def jobs(url: str, ids: list[str]) -> list[Job]:
    async def get_all(backend: Backend) -> list[Job]:
        found = [await backend.get(job_id) for job_id in ids]
        assert all(job is not None for job in found)
        return [job for job in found if job is not None]

    found: list[Job] = on_backend(url, get_all)
    return found


def test_a_job_whose_worker_was_killed_comes_back_after_the_lease(
    url: str, workers: list[WorkerProcess]
) -> None:
    # Given a worker running a 2-second job under a 1-second lease
    [job_id] = dispatch(url, [Dispatch("accept.sleep", (2.0,), options=JobOptions(tries=3))])
    first = start(workers, url, "--lease", "1")
    first.wait_for("job.started")

    # When it is killed with SIGKILL mid-job and another worker starts
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    second = start(workers, url, "--lease", "1", "--max-jobs", "1")

    # Then the job comes back once its lease lapsed, runs again, and the lost run counted
    assert second.wait(30) == 0
    [started] = second.named("job.started")
    assert (started["id"], started["attempt"]) == (job_id, "2/3")
    [job] = jobs(url, [job_id])
    assert job.state is JobState.COMPLETED and job.attempts == 2
    assert second.named("worker.stopped")[0]["reason"] == "MAX_JOBS"


def test_sigterm_loses_no_job_and_exits_zero(url: str, workers: list[WorkerProcess]) -> None:
    # Given a worker with ten jobs in flight: five too long for the grace, five short ones
    long_ids = dispatch(url, [Dispatch("accept.sleep", (60,))] * 5)
    short_ids = dispatch(url, [Dispatch("accept.sleep", (0.3,))] * 15)
    worker = start(workers, url, "--concurrency", "10", "--grace", "1")
    worker.wait_for("job.started", 10)

    # When it gets SIGTERM
    worker.proc.send_signal(signal.SIGTERM)

    # Then it exits 0; the long jobs were put back at once, the short ones finished,
    # and every job is completed or pending: none stays reserved
    assert worker.wait() == 0
    assert {e["id"] for e in worker.named("job.requeued")} == set(long_ids)
    assert {job.state for job in jobs(url, long_ids)} == {JobState.PENDING}
    short_states = [job.state for job in jobs(url, short_ids)]
    assert set(short_states) <= {JobState.COMPLETED, JobState.PENDING}
    assert short_states.count(JobState.COMPLETED) == len(worker.named("job.done")) >= 5
    [stopped] = worker.named("worker.stopped")
    assert (stopped["reason"], stopped["exit_code"]) == ("INTERRUPTED", 0)


def test_a_stuck_sync_handler_ends_its_worker_at_the_timeout(url: str, workers: list[WorkerProcess]) -> None:
    # Given a sync job stuck in a loop, with a 0.5 s timeout and 2 tries
    [job_id] = dispatch(url, [Dispatch("accept.spin", options=JobOptions(tries=2, timeout_s=0.5))])

    for attempt in (1, 2):
        # When a worker runs it
        worker = start(workers, url)
        code = worker.wait(20)

        # Then the worker records the timeout and ends with JOB_TIMEOUT's exit code
        assert code == 13
        [timeout] = worker.named("worker.job_timeout")
        assert (timeout["id"], timeout["attempt"]) == (job_id, f"{attempt}/2")
        [stopped] = worker.named("worker.stopped")
        assert (stopped["reason"], stopped["exit_code"]) == ("JOB_TIMEOUT", 13)
        [job] = jobs(url, [job_id])
        assert job.error is not None and job.error.type == "JobTimeout"
        assert job.state is (JobState.PENDING if attempt == 1 else JobState.FAILED)
    assert worker.named("job.failed")[0]["id"] == job_id


def test_a_job_that_kills_its_worker_ends_in_the_failed_store_after_its_tries(
    url: str, workers: list[WorkerProcess]
) -> None:
    # Given a job that SIGKILLs whichever worker runs it, with 2 tries
    [job_id] = dispatch(url, [Dispatch("accept.suicide", options=JobOptions(tries=2))])

    # When workers keep being started (as a supervisor would) until one survives
    codes = []
    for _ in range(4):
        worker = start(workers, url, "--lease", "0.5", "--max-jobs", "1")
        codes.append(worker.wait(30))
        if codes[-1] == 0:
            break

    # Then two workers died, and the third failed the job without running it
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0]
    [job] = jobs(url, [job_id])
    assert job.state is JobState.FAILED and job.attempts == 3
    assert job.error is not None and job.error.type == "MaxAttemptsExceeded"
    [failed] = worker.named("job.failed")
    assert failed["id"] == job_id and failed["error"].startswith(
        "MaxAttemptsExceeded: accept.suicide has been"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--app", "no_such_module:registry"],
        ["--concurrency", "0"],
        ["--backoff", "soon"],
    ],
)
def test_a_worker_that_cannot_boot_exits_with_the_boot_failure_code(
    tmp_path: Path, workers: list[WorkerProcess], args: list[str]
) -> None:
    worker = start(workers, f"sqlite:///{tmp_path}/queue.db", *args)
    assert worker.wait() == 3
    assert [e["event"] for e in worker.events] == ["worker.boot_failed", "worker.stopped"]
    assert worker.events[-1]["reason"] == "BOOT_FAILURE"


def test_an_unreachable_backend_at_start_is_retried_then_reported_as_backend_lost(
    workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An outage is not a boot failure: the worker retries for its grace (1 s here), then exits
    # BACKEND_LOST so a supervisor keeps trying with backoff instead of marking the pool FATAL.
    monkeypatch.setenv("DOCMILL_CONNECT_GRACE_S", "1")
    worker = start(workers, "redis://127.0.0.1:1/0")
    assert worker.wait() == 14
    names = [e["event"] for e in worker.events]
    assert names[0] == "worker.backend_unreachable" and names.count("worker.backend_unreachable") >= 2
    assert worker.events[-1]["event"] == "worker.stopped" and worker.events[-1]["reason"] == "BACKEND_LOST"
