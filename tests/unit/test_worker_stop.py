"""How a worker stops (reasons, exit codes, graceful drain) and how it keeps its leases."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from docmill.queue import (
    BackendUnavailable,
    Client,
    Dispatch,
    Job,
    JobOptions,
    JobState,
    Registry,
    WorkerOptions,
)
from docmill.queue import worker as worker_module
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.events import CapturedEventLog
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker


def make_worker(backend: MemoryBackend, registry: Registry, **options: Any) -> Worker:
    settings: dict[str, Any] = {"sleep_s": 0.05, "stop_grace_s": 1.0, **options}
    seams: dict[str, Any] = {k: settings.pop(k) for k in ("rss_mb", "worker_id", "clock") if k in settings}
    seams.setdefault("rss_mb", lambda: 40.0)  # the test process's own size must not trip the limit
    return Worker(
        backend,
        registry,
        WorkerOptions(**settings),
        log=CapturedEventLog(),
        restart_poll_s=0.05,
        heartbeat_s=0.05,
        **seams,
    )


def events(worker: Worker, name: str) -> list[dict[str, Any]]:
    assert isinstance(worker.log, CapturedEventLog)
    return worker.log.events(name)


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (WorkerStopReason.INTERRUPTED, 0),
        (WorkerStopReason.MASTER_GONE, 0),
        (WorkerStopReason.MAX_TIME, 0),
        (WorkerStopReason.MAX_JOBS, 0),
        (WorkerStopReason.RESTART, 0),
        (WorkerStopReason.EMPTY, 0),
        (WorkerStopReason.MEMORY, 12),
        (WorkerStopReason.JOB_TIMEOUT, 13),
        (WorkerStopReason.BACKEND_LOST, 14),
        (WorkerStopReason.BOOT_FAILURE, 3),
    ],
)
def test_every_stop_reason_has_its_exit_code(reason: WorkerStopReason, code: int) -> None:
    assert reason.exit_code == code


async def test_max_jobs_stops_after_that_many_and_reserves_no_more() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="noop")
    async def noop() -> None:
        return None

    await Client(backend, registry).dispatch_many([Dispatch("noop")] * 20)
    worker = make_worker(backend, registry, concurrency=5, max_jobs=3)
    reason = await asyncio.wait_for(worker.run(), 5)

    assert reason is WorkerStopReason.MAX_JOBS
    stats = await backend.stats("default")
    assert (stats.pending, stats.reserved) == (17, 0)
    assert events(worker, "worker.stopped")[0] | {"ts": 0} == {
        "ts": 0,
        "level": "info",
        "event": "worker.stopped",
        "reason": "MAX_JOBS",
        "exit_code": 0,
        "jobs_done": 3,
    }


async def test_max_time_stops_an_idle_worker_on_time() -> None:
    worker = make_worker(MemoryBackend(), Registry(), max_time_s=0.2, sleep_s=30)
    started = time.monotonic()
    assert await asyncio.wait_for(worker.run(), 5) is WorkerStopReason.MAX_TIME
    assert 0.2 <= time.monotonic() - started < 1.5


async def test_stop_when_empty_waits_for_running_jobs() -> None:
    backend, registry = MemoryBackend(), Registry()
    done: list[int] = []

    @registry.handler(name="slow")
    async def slow() -> None:
        await asyncio.sleep(0.1)
        done.append(1)

    await Client(backend, registry).dispatch("slow")
    worker = make_worker(backend, registry, stop_when_empty=True)
    assert await asyncio.wait_for(worker.run(), 5) is WorkerStopReason.EMPTY
    assert done == [1]


async def test_a_restart_requested_after_start_stops_the_worker() -> None:
    backend = MemoryBackend()
    await backend.request_restart()  # an old request must not stop a new worker
    worker = make_worker(backend, Registry(), sleep_s=30)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.15)
    assert not task.done()
    backend.clock = lambda: time.time() + 1  # the request is certainly newer than the start
    await backend.request_restart()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.RESTART


@pytest.mark.parametrize("skew_s", [-3600.0, 3600.0])
async def test_a_restart_is_obeyed_whatever_this_hosts_clock_says(skew_s: float) -> None:
    # Given a worker whose host clock is an hour off the backend's, and a request older than it
    backend = MemoryBackend()
    await backend.request_restart()
    worker = make_worker(backend, Registry(), sleep_s=30, clock=lambda: time.time() + skew_s)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.15)
    assert not task.done()  # the old request does not stop it, even with the clock an hour behind
    # When a restart is requested after it started (by the backend's clock)
    backend.clock = lambda: time.time() + 1
    await backend.request_restart()
    # Then it stops for the restart, even with its clock an hour ahead
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.RESTART


async def test_memory_over_the_limit_stops_the_worker() -> None:
    worker = make_worker(MemoryBackend(), Registry(), memory_mb=100, rss_mb=lambda: 150.0)
    assert await asyncio.wait_for(worker.run(), 5) is WorkerStopReason.MEMORY


async def test_graceful_stop_lets_short_jobs_finish_and_puts_long_ones_back_at_once() -> None:
    # Given three jobs: one finishing within the grace, two that would run for a minute
    backend, registry = MemoryBackend(), Registry()
    started: list[float] = []

    @registry.handler(name="sleep")
    async def sleep(seconds: float) -> None:
        started.append(seconds)
        await asyncio.sleep(seconds)

    client = Client(backend, registry)
    short_id = await client.dispatch("sleep", 0.1)
    long_ids = [await client.dispatch("sleep", 60) for _ in range(2)]
    worker = make_worker(backend, registry, stop_grace_s=0.4, lease_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: len(started) == 3)

    # When the worker is asked to stop
    stop_at = time.monotonic()
    worker.request_stop()
    reason = await asyncio.wait_for(task, 5)

    # Then the short job completed, the long ones are pending again with their attempt refunded
    assert reason is WorkerStopReason.INTERRUPTED
    assert 0.4 <= time.monotonic() - stop_at < 2
    short = await backend.get(short_id)
    assert short is not None and short.state is JobState.COMPLETED
    for job_id in long_ids:
        job = await backend.get(job_id)
        assert job is not None and job.state is JobState.PENDING and job.attempts == 0
    stats = await backend.stats("default")
    assert (stats.pending, stats.reserved) == (2, 0)
    assert sorted(e["id"] for e in events(worker, "job.requeued")) == sorted(long_ids)


async def test_hurry_skips_the_rest_of_the_grace() -> None:
    backend, registry = MemoryBackend(), Registry()
    started = asyncio.Event()

    @registry.handler(name="forever")
    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    await Client(backend, registry).dispatch("forever")
    worker = make_worker(backend, registry, stop_grace_s=30)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.request_stop()
    await asyncio.sleep(0.1)
    worker.hurry()
    assert await asyncio.wait_for(task, 2) is WorkerStopReason.INTERRUPTED
    assert (await backend.stats("default")).pending == 1


async def test_a_sync_handler_past_its_timeout_ends_the_worker_and_puts_the_others_back() -> None:
    # Given a stuck sync job (tries 2) and an async job running beside it
    backend, registry = MemoryBackend(), Registry()
    release = threading.Event()
    other_started = asyncio.Event()

    @registry.handler(name="stuck")
    def stuck() -> None:
        release.wait(30)

    @registry.handler(name="other")
    async def other() -> None:
        other_started.set()
        await asyncio.sleep(60)

    client = Client(backend, registry)
    stuck_id = await client.dispatch("stuck", options=JobOptions(tries=2, timeout_s=0.2))
    other_id = await client.dispatch("other")
    worker = make_worker(backend, registry, stop_grace_s=30)

    # When the sync job overruns its timeout
    try:
        reason = await asyncio.wait_for(worker.run(), 5)
    finally:
        release.set()

    # Then the timeout is recorded as a failed attempt, the other job is back at once,
    # and the worker stops with JOB_TIMEOUT (its process must end)
    assert reason is WorkerStopReason.JOB_TIMEOUT and reason.exit_code == 13
    stuck_job = await backend.get(stuck_id)
    assert stuck_job is not None and stuck_job.state is JobState.PENDING
    assert stuck_job.error is not None and stuck_job.error.type == "JobTimeout"
    assert (stuck_job.attempts, stuck_job.exceptions) == (1, 1)
    other_job = await backend.get(other_id)
    assert other_job is not None and other_job.state is JobState.PENDING and other_job.attempts == 0
    assert [e["id"] for e in events(worker, "worker.job_timeout")] == [stuck_id]


class CountingBackend(MemoryBackend):
    """Counts ``extend`` calls and can pretend every lease was lost."""

    def __init__(self) -> None:
        super().__init__()
        self.extend_calls: list[int] = []
        self.lose_all = False

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        self.extend_calls.append(len(jobs))
        if self.lose_all:
            return [job.id for job in jobs]
        return await super().extend(jobs, lease_s)


async def test_lease_renewal_keeps_a_long_job_from_a_second_worker() -> None:
    # Given a job that runs 10x longer than the lease, and two workers on one backend
    backend, registry = CountingBackend(), Registry()
    runs: list[str] = []

    @registry.handler(name="long")
    async def long() -> None:
        runs.append("start")
        await asyncio.sleep(1.0)

    job_id = await Client(backend, registry).dispatch("long")
    first = make_worker(backend, registry, lease_s=0.1, worker_id="first", concurrency=3)
    second = make_worker(backend, registry, lease_s=0.1, worker_id="second", sleep_s=0.02)
    first_task = asyncio.create_task(first.run())
    await until(lambda: runs)
    second_task = asyncio.create_task(second.run())

    # When the job finishes
    await until(lambda: first.jobs_done == 1)
    first.request_stop()
    second.request_stop()
    await asyncio.gather(first_task, second_task)

    # Then it ran once, was completed, and all its leases were renewed in single calls
    assert runs == ["start"]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED and job.attempts == 1
    assert len(backend.extend_calls) >= 20 and set(backend.extend_calls) == {1}
    assert events(second, "job.started") == []


async def test_all_in_flight_leases_are_renewed_in_one_call() -> None:
    backend, registry = CountingBackend(), Registry()

    @registry.handler(name="wait")
    async def wait() -> None:
        await asyncio.sleep(0.5)

    await Client(backend, registry).dispatch_many([Dispatch("wait")] * 4)
    worker = make_worker(backend, registry, lease_s=0.15, stop_when_empty=True)
    await asyncio.wait_for(worker.run(), 5)
    assert 4 in backend.extend_calls and max(backend.extend_calls) == 4


async def test_a_lost_lease_cancels_the_job_without_acknowledging_it() -> None:
    backend, registry = CountingBackend(), Registry()
    cancelled = asyncio.Event()
    started = asyncio.Event()

    @registry.handler(name="victim")
    async def victim() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job_id = await Client(backend, registry).dispatch("victim")
    worker = make_worker(backend, registry, lease_s=0.15)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    backend.lose_all = True
    await asyncio.wait_for(cancelled.wait(), 5)
    await until(lambda: worker.jobs_done == 0 and not worker.heartbeat().jobs)
    worker.request_stop()
    await asyncio.wait_for(task, 5)

    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.RESERVED  # nobody acked, failed or put it back
    [lost] = events(worker, "job.lease_lost")
    assert lost["id"] == job_id
    assert events(worker, "job.requeued") == [] and events(worker, "job.done") == []


async def test_a_lost_lease_on_a_sync_handler_ends_the_worker_so_its_thread_stops() -> None:
    # Given a sync handler running in a thread, and another job waiting behind it
    backend, registry = CountingBackend(), Registry()
    started, release = threading.Event(), threading.Event()

    @registry.handler(name="blocking")
    def blocking() -> None:
        started.set()
        release.wait(10)

    stuck = await Client(backend, registry).dispatch("blocking")
    worker = make_worker(backend, registry, lease_s=0.15, concurrency=1)
    task = asyncio.create_task(worker.run())
    await asyncio.to_thread(started.wait, 5)
    # When its lease is lost (the backend may now give the job to another worker)
    backend.lose_all = True
    # Then the worker stops at once with LEASE_LOST: a thread cannot be cancelled otherwise
    try:
        assert await asyncio.wait_for(task, 5) is WorkerStopReason.LEASE_LOST
    finally:
        release.set()
    assert WorkerStopReason.LEASE_LOST.exit_code == 15
    [event] = events(worker, "worker.lease_lost_in_thread")
    assert event["id"] == stuck
    job = await backend.get(stuck)
    assert job is not None and job.state is JobState.RESERVED  # not acked: its lease brings it back


class UnreachableBackend(MemoryBackend):
    """Every reservation fails, as with Redis down."""

    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Any:
        raise BackendUnavailable("lost the connection to Redis at redis://x:6379/0")


async def test_a_backend_unreachable_longer_than_the_grace_stops_with_backend_lost() -> None:
    worker = Worker(
        UnreachableBackend(),
        Registry(),
        WorkerOptions(sleep_s=0.05),
        log=CapturedEventLog(),
        backend_grace_s=0.5,
        rss_mb=lambda: 40.0,
    )
    started = time.monotonic()
    reason = await asyncio.wait_for(worker.run(), 10)
    assert reason is WorkerStopReason.BACKEND_LOST and reason.exit_code == 14
    assert 0.5 <= time.monotonic() - started < 3
    errors = events(worker, "worker.backend_error")
    assert len(errors) >= 3 and errors[0]["during"] == "reserve"


class JobArrivesWithTheStop(MemoryBackend):
    """A job is dispatched just as the stop interrupts the idle wait, so the wait reserves it."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[str] = []

    async def interrupt_wait(self, worker_id: str) -> None:
        self.arrived += await Client(self).dispatch_many([Dispatch("noop")])
        await super().interrupt_wait(worker_id)


async def test_a_job_reserved_by_the_wait_a_stop_interrupts_is_put_back_at_once() -> None:
    # Given an idle worker whose wait is interrupted (not cancelled) by a stop, and reserves a job as it ends
    backend, registry = JobArrivesWithTheStop(), Registry()

    @registry.handler(name="noop")
    async def noop() -> None:
        return None

    worker = make_worker(backend, registry, stop_when_empty=False, sleep_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: worker._idle_task is not None)

    # When it stops
    worker.request_stop()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED

    # Then the job it reserved on the way out is pending again, its attempt refunded, and never ran
    [job_id] = backend.arrived
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.PENDING and job.attempts == 0
    assert [e["id"] for e in events(worker, "job.requeued")] == [job_id]
    assert events(worker, "job.started") == []


class DeafToInterrupts(MemoryBackend):
    """interrupt_wait never returns, as with a backend that stopped answering."""

    async def interrupt_wait(self, worker_id: str) -> None:
        await asyncio.Event().wait()


async def test_a_wait_the_backend_cannot_interrupt_is_cancelled_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "INTERRUPT_WAIT_S", 0.2)
    backend = DeafToInterrupts()
    worker = make_worker(backend, Registry(), stop_when_empty=False, sleep_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: worker._idle_task is not None)

    started = time.monotonic()
    worker.request_stop()

    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED
    assert time.monotonic() - started < 2.0  # not the 30 s of its idle wait
