"""A worker whose master dies, and a worker whose backend goes away for longer than its grace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from docmill.queue import BackendUnavailable, Client, JobState, Registry, WorkerOptions
from docmill.queue.backend import Completion, Reservation
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.events import CapturedEventLog
from docmill.queue.job import Job
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def events(worker: Worker, name: str) -> list[dict[str, Any]]:
    assert isinstance(worker.log, CapturedEventLog)
    return worker.log.events(name)


def make_worker(backend: MemoryBackend, registry: Registry, **options: Any) -> Worker:
    return Worker(
        backend,
        registry,
        WorkerOptions(**{"sleep_s": 0.05, **options}),
        log=CapturedEventLog(),
        rss_mb=lambda: 40.0,
        restart_poll_s=0.05,
        heartbeat_s=0.05,
        backend_grace_s=0.3,
    )


# ----------------------------------------------------------------------------- the master died


async def test_the_master_gone_signal_however_often_it_arrives_lets_running_jobs_finish() -> None:
    # Given a worker running a job, with a second job queued behind it
    backend, registry = MemoryBackend(), Registry()
    release = asyncio.Event()

    @registry.handler(name="step")
    async def step() -> None:
        await release.wait()

    client = Client(backend, registry)
    first = await client.dispatch("step")
    second = await client.dispatch("step")
    worker = make_worker(backend, registry, concurrency=1, stop_grace_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.jobs_started == 1)

    # When the master's death reaches it once per thread of the master
    for _ in range(5):
        worker._on_master_gone()
        await asyncio.sleep(0.02)
    release.set()

    # Then the running job finishes (no hurry), the other is not started, and the worker stops
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.MASTER_GONE
    done = await backend.get(first)
    assert done is not None and done.state is JobState.COMPLETED
    queued = await backend.get(second)
    assert queued is not None and queued.state is JobState.PENDING and queued.attempts == 0
    assert len(events(worker, "worker.master_gone")) == 1


async def test_repeated_stop_requests_are_one_request() -> None:
    backend, registry = MemoryBackend(), Registry()
    release = asyncio.Event()

    @registry.handler(name="step")
    async def step() -> None:
        await release.wait()

    job_id = await Client(backend, registry).dispatch("step")
    worker = make_worker(backend, registry, stop_grace_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.jobs_started == 1)
    for _ in range(3):
        worker.request_stop()
        worker.request_stop(WorkerStopReason.BACKEND_LOST)
    await asyncio.sleep(0.1)
    release.set()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED


# ----------------------------------------------------------------------------- the backend went away


class SwitchableBackend(MemoryBackend):
    """A memory backend that can be made unreachable, as Redis stopped; counts reservations."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.reserve_calls = 0

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailable("lost the connection to Redis at redis://x:6379/0")

    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Reservation:
        self._check()
        self.reserve_calls += 1
        return await super().reserve(queue, worker_id=worker_id, lease_s=lease_s, limit=limit)

    async def wait_and_reserve(
        self, queues: Sequence[str], timeout_s: float, *, worker_id: str, lease_s: float, limit: int
    ) -> Reservation | None:
        self._check()
        return await super().wait_and_reserve(
            queues, timeout_s, worker_id=worker_id, lease_s=lease_s, limit=limit
        )

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        self._check()
        return await super().extend(jobs, lease_s)

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        self._check()
        return await super().complete(completions)

    async def restart_requested_at(self) -> float | None:
        self._check()
        return await super().restart_requested_at()

    async def put_heartbeat(self, kind: str, member: str, data: Any, ttl_s: float) -> None:
        self._check()
        await super().put_heartbeat(kind, member, data, ttl_s)


async def test_a_worker_holding_unsent_acks_outlasts_the_grace_and_delivers_them_when_back() -> None:
    # Given a worker whose jobs finish while the backend is away
    backend, registry = SwitchableBackend(), Registry()
    release = asyncio.Event()

    @registry.handler(name="step")
    async def step() -> None:
        await release.wait()

    ids = [await Client(backend, registry).dispatch("step") for _ in range(3)]
    worker = make_worker(backend, registry, concurrency=3, lease_s=1.2, stop_grace_s=30)
    worker.outage.settle_s = 3600  # once back, this worker must not reserve before the test ends
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.jobs_started == 3)
    backend.down = True
    release.set()
    await until(lambda: len(worker.acks.pending) == 3)

    # When the outage lasts well past the worker's backend grace (0.3 s) and its leases (1.2 s)
    await asyncio.sleep(1.5)

    # Then the worker is still there, holding the acks, and stopped calling reserve
    assert not task.done()
    assert events(worker, "worker.backend_lost_holding_jobs")
    reserves_during_outage = backend.reserve_calls
    await asyncio.sleep(0.3)
    assert backend.reserve_calls == reserves_during_outage

    # And once the backend is back the acks are delivered before any reservation
    backend.down = False
    await until(lambda: not worker.acks.pending)
    assert backend.reserve_calls == reserves_during_outage
    worker.request_stop()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED
    for job_id in ids:
        job = await backend.get(job_id)
        assert job is not None and job.state is JobState.COMPLETED and job.attempts == 1


async def test_a_worker_stopped_during_an_outage_keeps_trying_its_acks_within_its_grace() -> None:
    backend, registry = SwitchableBackend(), Registry()
    release = asyncio.Event()

    @registry.handler(name="step")
    async def step() -> None:
        await release.wait()

    job_id = await Client(backend, registry).dispatch("step")
    worker = make_worker(backend, registry, lease_s=30, stop_grace_s=30)
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.jobs_started == 1)
    backend.down = True
    release.set()
    await until(lambda: len(worker.acks.pending) == 1)
    worker.request_stop()
    await asyncio.sleep(1.0)  # longer than the three tries the close used to make before dropping it
    assert not task.done()
    backend.down = False
    assert await asyncio.wait_for(task, 10) is WorkerStopReason.INTERRUPTED
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED


async def test_an_idle_worker_that_lost_its_backend_stops_with_backend_lost() -> None:
    backend = SwitchableBackend()
    backend.down = True
    worker = make_worker(backend, Registry())
    reason = await asyncio.wait_for(worker.run(), 10)
    assert reason is WorkerStopReason.BACKEND_LOST and reason.exit_code == 14
