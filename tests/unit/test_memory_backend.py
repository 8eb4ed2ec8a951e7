"""The memory backend on a fake clock: the time-based rules without sleeping.

The shared behaviour is covered by the conformance suite; these tests move
``backend.clock`` to check retention windows and expiries at their edges.
"""

from __future__ import annotations

import pytest

from docmill.queue import BackendSettings, Completion, ErrorInfo, Job, JobOptions, JobState
from docmill.queue.backends import backend_from_url
from docmill.queue.backends.memory import MemoryBackend

T0 = 1_700_000_000.0  # 20 s into the minute that starts at 1_699_999_980


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_backend(clock: FakeClock, **settings: float) -> MemoryBackend:
    backend = MemoryBackend("memory://", BackendSettings(**settings))  # type: ignore[arg-type]
    backend.clock = clock
    return backend


def make_job(clock: FakeClock, queue: str = "default", **options: object) -> Job:
    return Job.build("h", options=JobOptions(queue=queue, **options), now=clock.now)  # type: ignore[arg-type]


async def reserve(backend: MemoryBackend, lease_s: float = 30.0) -> Job:
    [job] = (await backend.reserve("default", worker_id="w", lease_s=lease_s)).jobs
    return job


def test_the_url_scheme_memory_builds_a_memory_backend_with_the_urls_settings() -> None:
    backend = backend_from_url("memory://?completed_max=5")

    assert isinstance(backend, MemoryBackend)
    assert backend.settings.completed_max == 5


async def test_a_lease_is_kept_until_its_deadline_and_lost_at_it(clock: FakeClock) -> None:
    backend = make_backend(clock)
    await backend.enqueue([make_job(clock)])
    first = await reserve(backend, lease_s=30)

    clock.now += 29.9
    assert (await backend.reserve("default", worker_id="w2", lease_s=30)).jobs == []
    clock.now += 0.1

    again = await reserve(backend)
    assert (again.attempts, again.available_at) == (2, first.lease_until)
    assert again.error == ErrorInfo(
        "LeaseExpired", "the worker holding this job stopped renewing its lease (it probably died)"
    )


async def test_a_delayed_job_becomes_pending_exactly_when_due(clock: FakeClock) -> None:
    backend = make_backend(clock)
    job = make_job(clock, delay_s=10)
    await backend.enqueue([job])

    clock.now += 9.999
    held = await backend.get(job.id)
    assert held is not None and held.state is JobState.DELAYED
    clock.now += 0.001

    held = await backend.get(job.id)
    assert held is not None and held.state is JobState.PENDING
    assert (await backend.stats("default")).pending == 1


async def test_oldest_pending_age_follows_the_clock(clock: FakeClock) -> None:
    backend = make_backend(clock)
    await backend.enqueue([make_job(clock)])

    clock.now += 42

    assert (await backend.stats("default")).oldest_pending_age_s == 42


async def test_completed_jobs_are_kept_for_exactly_their_retention(clock: FakeClock) -> None:
    backend = make_backend(clock, completed_retention_s=60)
    job = make_job(clock)
    await backend.enqueue([job])
    await backend.complete([Completion(await reserve(backend), runtime_s=1, wait_s=0)])

    clock.now += 59.9
    assert await backend.get(job.id) is not None
    clock.now += 0.1

    assert await backend.get(job.id) is None
    assert await backend.recent_completed("default") == []


async def test_metrics_are_bucketed_per_minute_and_limited_to_the_asked_window(clock: FakeClock) -> None:
    backend = make_backend(clock)
    for minute in range(3):
        clock.now = T0 + minute * 60
        await backend.enqueue([make_job(clock)])
        await backend.complete([Completion(await reserve(backend), runtime_s=2, wait_s=1)])

    # The current minute and the one before it; the first minute is outside the window.
    rows = await backend.metrics("default", minutes=2)

    assert [row.minute for row in rows] == [1_699_999_980 + 60, 1_699_999_980 + 120]
    assert [(row.completed, row.avg_runtime_s, row.avg_wait_s) for row in rows] == [(1, 2, 1), (1, 2, 1)]


async def test_metrics_older_than_their_retention_are_dropped(clock: FakeClock) -> None:
    backend = make_backend(clock, metrics_retention_s=3600)
    await backend.enqueue([make_job(clock)])
    await backend.complete([Completion(await reserve(backend), runtime_s=2, wait_s=1)])

    clock.now += 3700

    assert await backend.metrics("default", minutes=24 * 60) == []


async def test_a_unique_lock_older_than_its_safety_ttl_is_released(clock: FakeClock) -> None:
    backend = make_backend(clock, unique_lock_ttl_s=100)
    first, second = make_job(clock, unique_key="k"), make_job(clock, unique_key="k")
    await backend.enqueue([first])

    clock.now += 100

    assert await backend.enqueue([second]) == [second.id]


async def test_a_heartbeat_expires_at_its_ttl(clock: FakeClock) -> None:
    backend = make_backend(clock)
    await backend.put_heartbeat("worker", "w1", {"pid": 1}, ttl_s=10)

    clock.now += 9.9
    assert await backend.heartbeats("worker") == [{"pid": 1}]
    clock.now += 0.1

    assert await backend.heartbeats("worker") == []


async def test_flush_failed_older_than_counts_from_the_failure_time(clock: FakeClock) -> None:
    backend = make_backend(clock)
    await backend.enqueue([make_job(clock), make_job(clock)])
    await backend.fail(await reserve(backend), ErrorInfo("E", "x"))
    clock.now += 100
    await backend.fail(await reserve(backend), ErrorInfo("E", "x"))
    clock.now += 50

    assert await backend.flush_failed(older_than_s=120) == 1
    assert await backend.failed_count() == 1


async def test_returned_jobs_are_copies_the_caller_cannot_corrupt(clock: FakeClock) -> None:
    backend = make_backend(clock)
    job = make_job(clock)
    await backend.enqueue([job])
    reserved = await reserve(backend)

    reserved.attempts = 99
    job.attempts = 98

    held = await backend.get(job.id)
    assert held is not None and held.attempts == 1
