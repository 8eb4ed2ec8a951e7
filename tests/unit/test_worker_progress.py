"""A running handler says "this attempt made progress" with ``await ctx.progress()``.

After that the attempt does not count toward the job's tries, whether the handler then
raises or its worker dies; an attempt without progress counts as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from docmill.queue import (
    Client,
    JobOptions,
    JobState,
    Registry,
    Release,
    WorkerContext,
    WorkerOptions,
)
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.client import Dispatch
from docmill.queue.events import CapturedEventLog
from docmill.queue.job import Job
from docmill.queue.progress import Attempt, current_attempt, running
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker


class CountsProgress(MemoryBackend):
    """Counts the progress reports that reach the backend."""

    def __init__(self) -> None:
        super().__init__()
        self.progress_calls = 0

    async def record_progress(self, job: Job) -> bool:
        self.progress_calls += 1
        return await super().record_progress(job)


async def work(backend: MemoryBackend, registry: Registry, **options: Any) -> Worker:
    settings: dict[str, Any] = {"sleep_s": 0.05, "stop_when_empty": True, "memory_mb": 0, **options}
    worker = Worker(backend, registry, WorkerOptions(**settings), log=CapturedEventLog(), worker_id="w-1")
    assert await asyncio.wait_for(worker.run(), 10) is WorkerStopReason.EMPTY
    return worker


async def dispatch(backend: MemoryBackend, registry: Registry, name: str, tries: int) -> str:
    await backend.connect()
    [job_id] = await Client(backend, registry).dispatch_many(
        [Dispatch(name, options=JobOptions(tries=tries))]
    )
    return job_id


async def test_a_handler_that_made_progress_and_raised_is_retried_though_it_had_one_try() -> None:
    # Given a job with one try whose handler saves work, says so, then raises the first time
    backend, registry, runs = MemoryBackend(), Registry(), []

    @registry.handler(name="saves", context=True)
    async def saves(ctx: WorkerContext) -> None:
        runs.append(await ctx.progress())
        if len(runs) == 1:
            raise RuntimeError("connection reset")

    job_id = await dispatch(backend, registry, "saves", tries=1)

    # When a worker runs it
    await work(backend, registry)

    # Then the failed attempt was not spent: the job ran again and completed
    job = await backend.get(job_id)
    assert job is not None
    assert runs == [True, True]
    assert (job.state, job.attempts, job.exceptions) == (JobState.COMPLETED, 1, 1)


async def test_a_handler_that_raised_without_progress_spends_its_try_and_fails() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="breaks", context=True)
    async def breaks(ctx: WorkerContext) -> None:
        raise RuntimeError("connection reset")

    job_id = await dispatch(backend, registry, "breaks", tries=1)
    await work(backend, registry)

    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED


async def test_progress_reaches_the_backend_once_per_attempt() -> None:
    backend, registry = CountsProgress(), Registry()
    answers: list[bool] = []

    @registry.handler(name="chatty", context=True)
    async def chatty(ctx: WorkerContext) -> None:
        for _ in range(3):
            answers.append(await ctx.progress())

    await dispatch(backend, registry, "chatty", tries=1)
    await work(backend, registry)

    assert answers == [True, True, True]
    assert backend.progress_calls == 1


async def test_a_release_after_progress_gives_back_one_attempt_not_two() -> None:
    # Given a job on its first attempt that records progress, then releases itself once
    backend, registry, seen = MemoryBackend(), Registry(), []

    @registry.handler(name="waits", context=True)
    async def waits(ctx: WorkerContext) -> None:
        await ctx.progress()
        seen.append(current_attempt())
        if len(seen) == 1:
            raise Release(0)

    job_id = await dispatch(backend, registry, "waits", tries=1)
    await work(backend, registry)

    job = await backend.get(job_id)
    assert job is not None and (job.state, job.attempts) == (JobState.COMPLETED, 1)
    assert all(isinstance(attempt, Attempt) for attempt in seen)


async def test_progress_outside_a_job_is_a_no_op() -> None:
    backend = MemoryBackend()
    ctx = WorkerContext("w-1", backend, Client(backend), CapturedEventLog())

    assert current_attempt() is None
    assert await ctx.progress() is False


async def test_progress_of_an_attempt_whose_lease_was_lost_says_so() -> None:
    # Given an attempt whose reservation is no longer the job's
    backend = MemoryBackend()
    await backend.enqueue([Job.build("h")])
    [job] = (await backend.reserve("default", worker_id="w", lease_s=30)).jobs
    ctx = WorkerContext("w-1", backend, Client(backend), CapturedEventLog())
    stale = Attempt(job.copy(reservation="lost"), backend)

    # Then progress reports it, and the current attempt is set only inside ``running``
    with running(stale):
        assert await ctx.progress() is False
    assert current_attempt() is None
    with running(Attempt(job, backend)):
        assert await ctx.progress() is True
