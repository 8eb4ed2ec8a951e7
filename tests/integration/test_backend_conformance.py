"""One behaviour suite for every queue backend: the contract of ``docmill.queue.backend``.

Each test runs against the in-process reference backend, SQLite (a file in the
test's tmp dir) and Redis (a fresh key prefix on the test database). No clock
is faked: Redis reads its own ``TIME``, so leases and delays are tested with
short real durations (a 0.2 s lease and a 0.3 s sleep) and generous margins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from docmill.queue import Backend, Completion, ErrorInfo, Job, JobOptions, JobState, backend_from_url
from docmill.queue.job import new_job_id

BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]

Connect = Callable[..., Awaitable[Backend]]

SHORT_LEASE_S = 0.2
PAST_SHORT_LEASE_S = 0.35
BOOM = ErrorInfo("RuntimeError", "boom", "Traceback (most recent call last):\n  ...\nRuntimeError: boom")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def base_url(backend_kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if backend_kind == "memory":
        return "memory://"
    if backend_kind == "sqlite":
        return f"sqlite:///{tmp_path}/q.db"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def connect(base_url: str) -> AsyncIterator[Connect]:
    """Open a backend on the test's URL, with ``BackendSettings`` fields as URL options."""
    opened: list[Backend] = []

    async def open_backend(**settings: Any) -> Backend:
        url = base_url
        for key, value in settings.items():
            url += ("&" if "?" in url else "?") + f"{key}={value}"
        backend = backend_from_url(url)
        await backend.connect()
        opened.append(backend)
        return backend

    yield open_backend
    for backend in reversed(opened):
        await backend.close()


@pytest.fixture
async def backend(connect: Connect) -> Backend:
    return await connect()


# ---------------------------------------------------------------- helpers

_last_id = ""


def make_job(
    queue: str = "default",
    *,
    at: float | None = None,
    delay_s: float = 0.0,
    args: tuple[Any, ...] = (),
    **options: Any,
) -> Job:
    """A job whose id sorts after every job made before it (ids carry milliseconds)."""
    global _last_id
    opts = JobOptions(queue=queue, delay_s=delay_s, **options)
    job = Job.build("tests.echo", list(args), options=opts, now=at)
    while job.id <= _last_id:
        job = job.copy(id=new_job_id())
    _last_id = job.id
    return job


async def enqueue(backend: Backend, *jobs: Job) -> list[str]:
    return await backend.enqueue(list(jobs))


async def reserve_one(backend: Backend, queue: str = "default", *, lease_s: float = 30.0) -> Job:
    reservation = await backend.reserve(queue, worker_id="w1", lease_s=lease_s)
    assert len(reservation.jobs) == 1, reservation
    return reservation.jobs[0]


async def reserve_ids(backend: Backend, queue: str = "default", *, limit: int = 100) -> list[str]:
    reservation = await backend.reserve(queue, worker_id="w1", lease_s=30.0, limit=limit)
    return [job.id for job in reservation.jobs]


def done(job: Job, runtime_s: float = 0.5, wait_s: float = 0.25) -> Completion:
    return Completion(job=job, runtime_s=runtime_s, wait_s=wait_s)


async def failed_job(backend: Backend, queue: str = "default", **options: Any) -> Job:
    job = make_job(queue, **options)
    await enqueue(backend, job)
    assert await backend.fail(await reserve_one(backend, queue), BOOM)
    return job


async def get(backend: Backend, job_id: str) -> Job:
    job = await backend.get(job_id)
    assert job is not None, f"job {job_id} is not held"
    return job


# ---------------------------------------------------------------- enqueue and reserve


async def test_jobs_are_reserved_in_the_order_they_became_available(backend: Backend) -> None:
    base = time.time() - 10
    jobs = [make_job(at=base + i * 0.05) for i in range(5)]
    # Enqueued out of order: available_at decides, not arrival.
    await enqueue(backend, jobs[3], jobs[0], jobs[4], jobs[1], jobs[2])

    assert await reserve_ids(backend) == [job.id for job in jobs]


async def test_jobs_due_at_the_same_moment_are_reserved_in_id_order(backend: Backend) -> None:
    at = time.time() - 10
    first, second = make_job(at=at), make_job(at=at)
    await enqueue(backend, second, first)

    assert await reserve_ids(backend) == [first.id, second.id]


async def test_a_reserved_job_carries_a_fresh_token_a_lease_and_one_more_attempt(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)

    before = time.time()
    reserved = await reserve_one(backend, lease_s=30.0)

    assert reserved.id == job.id
    assert reserved.state is JobState.RESERVED
    assert reserved.attempts == 1
    assert reserved.reservation
    assert reserved.lease_until == pytest.approx(before + 30.0, abs=2.0)
    assert reserved.reserved_at == pytest.approx(before, abs=2.0)


async def test_the_job_spec_survives_storage_unchanged(backend: Backend) -> None:
    job = make_job(
        "spec",
        args=(1, "two", {"three": [3.5, None, True]}),
        tries=3,
        max_exceptions=2,
        timeout_s=12.5,
        backoff_s=(1, 5, 30),
        retry_until=time.time() + 3600,
        unique_key="document:42",
        tags=("document:42", "tenant:7"),
    )
    job = job.copy(kwargs={"model": "claude", "chunks": [1, 2]})
    await enqueue(backend, job)

    assert (await get(backend, job.id)).spec() == job.spec()
    assert (await reserve_one(backend, "spec")).spec() == job.spec()


async def test_reserve_on_an_empty_queue_returns_nothing_and_no_due_time(backend: Backend) -> None:
    reservation = await backend.reserve("default", worker_id="w1", lease_s=30.0)

    assert reservation.jobs == []
    assert reservation.next_available_at is None


async def test_reserve_hands_out_at_most_limit_jobs(backend: Backend) -> None:
    jobs = [make_job() for _ in range(5)]
    await enqueue(backend, *jobs)

    assert await reserve_ids(backend, limit=3) == [job.id for job in jobs[:3]]
    assert await reserve_ids(backend, limit=3) == [job.id for job in jobs[3:]]
    assert await reserve_ids(backend, limit=3) == []


async def test_queues_are_independent(backend: Backend) -> None:
    a, b = make_job("a"), make_job("b")
    await enqueue(backend, a, b)

    assert await reserve_ids(backend, "b") == [b.id]
    assert await reserve_ids(backend, "b") == []
    assert await reserve_ids(backend, "a") == [a.id]


async def test_bulk_enqueue_returns_one_id_per_job_in_order_and_stores_them_all(backend: Backend) -> None:
    base = time.time() - 10
    jobs = [make_job("bulk", at=base + i * 0.001) for i in range(250)]

    ids = await backend.enqueue(jobs)

    assert ids == [job.id for job in jobs]
    assert (await backend.stats("bulk")).pending == 250
    assert await reserve_ids(backend, "bulk", limit=100) == ids[:100]


async def test_a_delayed_job_is_not_reserved_before_it_is_due_and_its_due_time_is_reported(
    backend: Backend,
) -> None:
    job = make_job(delay_s=60)
    await enqueue(backend, job)

    reservation = await backend.reserve("default", worker_id="w1", lease_s=30.0)

    assert reservation.jobs == []
    assert reservation.next_available_at == pytest.approx(job.available_at, abs=0.01)


async def test_a_delayed_job_is_reserved_once_it_is_due(backend: Backend) -> None:
    job = make_job(delay_s=0.3)
    await enqueue(backend, job)
    assert await reserve_ids(backend) == []

    await asyncio.sleep(0.4)

    assert await reserve_ids(backend) == [job.id]


async def test_a_due_job_is_reserved_before_a_delayed_one_enqueued_earlier(backend: Backend) -> None:
    later = make_job(delay_s=60)
    now = make_job()
    await enqueue(backend, later, now)

    reservation = await backend.reserve("default", worker_id="w1", lease_s=30.0, limit=10)

    assert [job.id for job in reservation.jobs] == [now.id]
    assert reservation.next_available_at == pytest.approx(later.available_at, abs=0.01)


# ---------------------------------------------------------------- leases


async def test_a_job_whose_lease_lapses_is_reserved_again_with_its_attempt_kept_and_a_lease_expired_error(
    backend: Backend,
) -> None:
    # Given a worker that reserved a job and then died (it never renews its lease)
    job = make_job()
    await enqueue(backend, job)
    first = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    assert await reserve_ids(backend) == []

    # When the lease lapses
    await asyncio.sleep(PAST_SHORT_LEASE_S)

    # Then the next reserve hands the job out again, the lost attempt counted
    again = await reserve_one(backend)
    assert again.id == job.id
    assert again.attempts == 2
    assert again.reservation != first.reservation
    assert again.error is not None
    assert again.error.type == "LeaseExpired"
    assert again.error.message == "the worker holding this job stopped renewing its lease (it probably died)"


async def test_stats_count_a_job_with_a_lapsed_lease_as_pending_again(backend: Backend) -> None:
    await enqueue(backend, make_job())
    await reserve_one(backend, lease_s=SHORT_LEASE_S)
    await asyncio.sleep(PAST_SHORT_LEASE_S)

    stats = await backend.stats("default")

    assert (stats.pending, stats.reserved) == (1, 0)


async def test_a_reserved_job_is_not_reserved_again_while_its_lease_is_renewed(backend: Backend) -> None:
    await enqueue(backend, make_job())
    reserved = await reserve_one(backend, lease_s=0.3)

    # Renew four times over 0.6 s: twice the original lease.
    for _ in range(4):
        await asyncio.sleep(0.15)
        assert await backend.extend([reserved], 0.3) == []
        assert await reserve_ids(backend) == []

    assert (await backend.stats("default")).reserved == 1


async def test_extend_reports_the_jobs_whose_lease_was_lost(backend: Backend) -> None:
    kept, lost = make_job(), make_job()
    await enqueue(backend, kept, lost)
    held = await reserve_one(backend, lease_s=30.0)
    lapsing = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    await asyncio.sleep(PAST_SHORT_LEASE_S)
    await reserve_one(backend)  # a second worker takes the lapsed job

    assert await backend.extend([held, lapsing], 30.0) == [lost.id]


async def test_a_worker_that_lost_its_lease_cannot_overwrite_what_the_next_worker_does(
    backend: Backend,
) -> None:
    # Given worker 1 lost its lease and worker 2 holds the job now
    job = make_job()
    await enqueue(backend, job)
    stale = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    await asyncio.sleep(PAST_SHORT_LEASE_S)
    current = await reserve_one(backend, lease_s=30.0)

    # When worker 1 reports back late, every report is ignored
    assert await backend.complete([done(stale)]) == [job.id]
    assert await backend.extend([stale], 30.0) == [job.id]
    assert not await backend.retry_later(
        stale, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False
    )
    assert not await backend.fail(stale, BOOM)

    # Then worker 2 still holds the job and can finish it
    held = await get(backend, job.id)
    assert held.state is JobState.RESERVED
    assert held.reservation == current.reservation
    assert held.exceptions == 0
    assert await backend.complete([done(current)]) == []
    assert (await get(backend, job.id)).state is JobState.COMPLETED


async def test_complete_ignores_a_wrong_reservation_token(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend)

    assert await backend.complete([done(reserved.copy(reservation="not-the-token"))]) == [job.id]
    assert (await get(backend, job.id)).state is JobState.RESERVED


async def test_extend_ignores_a_wrong_reservation_token(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend, lease_s=30.0)

    assert await backend.extend([reserved.copy(reservation="not-the-token")], 3600.0) == [job.id]
    lease_until = (await get(backend, job.id)).lease_until
    assert lease_until is not None and lease_until < time.time() + 60


async def test_retry_later_ignores_a_wrong_reservation_token(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend)

    wrong = reserved.copy(reservation="not-the-token")
    assert not await backend.retry_later(
        wrong, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False
    )
    assert (await get(backend, job.id)).state is JobState.RESERVED


async def test_fail_ignores_a_wrong_reservation_token(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend)

    assert not await backend.fail(reserved.copy(reservation="not-the-token"), BOOM)
    assert (await get(backend, job.id)).state is JobState.RESERVED
    assert await backend.failed_count() == 0


async def test_a_failed_unique_job_is_retried_even_while_another_job_holds_its_key(
    backend: Backend,
) -> None:
    # Given a unique job that failed, and a second job that took the key since
    first = make_job(unique_key="report-42")
    await enqueue(backend, first)
    assert await backend.fail(await reserve_one(backend), BOOM)
    second = make_job(unique_key="report-42")
    assert await enqueue(backend, second) == [second.id]

    # When the operator retries the failed one
    assert await backend.retry_failed([first.id]) == 1

    # Then both wait to run, and the key still belongs to the second
    assert (await get(backend, first.id)).state is JobState.PENDING
    assert (await get(backend, second.id)).state is JobState.PENDING
    assert await enqueue(backend, make_job(unique_key="report-42")) == [second.id]


async def test_fail_counts_the_last_exception_only_when_asked(backend: Backend) -> None:
    first, second = make_job(), make_job()
    await enqueue(backend, first)
    await enqueue(backend, second)
    reserved = await reserve_one(backend)
    assert await backend.fail(reserved, BOOM, count_exception=True)
    reserved = await reserve_one(backend)
    assert await backend.fail(reserved, BOOM)

    assert (await get(backend, first.id)).exceptions == 1
    assert (await get(backend, second.id)).exceptions == 0


async def test_reports_about_a_job_that_was_never_reserved_are_ignored(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)

    assert await backend.complete([done(job)]) == [job.id]
    assert await backend.extend([job], 30.0) == [job.id]
    assert not await backend.fail(job, BOOM)
    assert (await get(backend, job.id)).state is JobState.PENDING


# ---------------------------------------------------------------- retry_later


async def test_retry_later_puts_the_job_back_delayed_with_the_exception_counted(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend)

    before = time.time()
    assert await backend.retry_later(
        reserved, delay_s=60, error=BOOM, count_exception=True, refund_attempt=False
    )

    back = await get(backend, job.id)
    assert back.state is JobState.DELAYED
    assert (back.attempts, back.exceptions) == (1, 1)
    assert back.error == BOOM
    assert back.available_at == pytest.approx(before + 60, abs=2.0)
    assert back.reservation is None
    reservation = await backend.reserve("default", worker_id="w1", lease_s=30.0)
    assert reservation.jobs == []
    assert reservation.next_available_at == pytest.approx(back.available_at, abs=0.01)
    stats = await backend.stats("default")
    assert (stats.delayed, stats.reserved) == (1, 0)


async def test_retry_later_with_a_refund_gives_the_attempt_back(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    reserved = await reserve_one(backend)

    assert await backend.retry_later(
        reserved, delay_s=0, error=None, count_exception=False, refund_attempt=True
    )

    again = await reserve_one(backend)
    assert again.id == job.id
    assert (again.attempts, again.exceptions) == (1, 0)


async def test_retry_later_without_an_error_keeps_the_last_one(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    first = await reserve_one(backend)
    assert await backend.retry_later(first, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)
    second = await reserve_one(backend)

    assert await backend.retry_later(
        second, delay_s=0, error=None, count_exception=False, refund_attempt=True
    )

    again = await reserve_one(backend)
    assert again.error == BOOM
    assert (again.attempts, again.exceptions) == (2, 1)


# ---------------------------------------------------------------- completion


async def test_a_completed_job_leaves_the_queue_and_is_kept_as_recently_completed(backend: Backend) -> None:
    first, second = make_job(), make_job()
    await enqueue(backend, first, second)
    assert await backend.complete([done(await reserve_one(backend), runtime_s=1.25)]) == []
    await asyncio.sleep(0.01)
    assert await backend.complete([done(await reserve_one(backend))]) == []

    completed = await get(backend, first.id)
    assert completed.state is JobState.COMPLETED
    assert completed.runtime_s == pytest.approx(1.25)
    assert completed.finished_at == pytest.approx(time.time(), abs=2.0)
    assert await reserve_ids(backend) == []
    stats = await backend.stats("default")
    assert (stats.pending, stats.reserved, stats.size) == (0, 0, 0)
    assert [job.id for job in await backend.recent_completed("default")] == [second.id, first.id]
    assert [job.id for job in await backend.recent_completed("default", limit=1)] == [second.id]


async def test_completed_jobs_beyond_completed_max_are_dropped(connect: Connect) -> None:
    backend = await connect(completed_max=2)
    jobs = [make_job() for _ in range(3)]
    await enqueue(backend, *jobs)
    for _ in jobs:
        await backend.complete([done(await reserve_one(backend))])
        await asyncio.sleep(0.01)

    assert [job.id for job in await backend.recent_completed("default")] == [jobs[2].id, jobs[1].id]
    assert await backend.get(jobs[0].id) is None


async def test_completed_jobs_are_dropped_after_their_retention(connect: Connect) -> None:
    backend = await connect(completed_retention_s=1)
    job = make_job()
    await enqueue(backend, job)
    await backend.complete([done(await reserve_one(backend))])
    assert (await get(backend, job.id)).state is JobState.COMPLETED

    await asyncio.sleep(1.3)

    assert await backend.get(job.id) is None
    assert await backend.recent_completed("default") == []


# ---------------------------------------------------------------- failed store


async def test_a_failed_job_is_kept_in_the_failed_store_with_its_error(backend: Backend) -> None:
    job = await failed_job(backend)

    failed = await get(backend, job.id)
    assert failed.state is JobState.FAILED
    assert failed.error == BOOM
    assert failed.attempts == 1
    assert failed.finished_at == pytest.approx(time.time(), abs=2.0)
    assert failed.spec() == job.spec()
    assert await backend.failed_count() == 1
    assert (await backend.stats("default")).failed == 1
    assert await reserve_ids(backend) == []


async def test_failed_page_lists_newest_failure_first_and_filters_by_queue(backend: Backend) -> None:
    a1 = await failed_job(backend, "a")
    await asyncio.sleep(0.01)
    b1 = await failed_job(backend, "b")
    await asyncio.sleep(0.01)
    a2 = await failed_job(backend, "a")

    assert [job.id for job in await backend.failed_page()] == [a2.id, b1.id, a1.id]
    assert [job.id for job in await backend.failed_page("a")] == [a2.id, a1.id]
    counts = [await backend.failed_count(queue) for queue in (None, "a", "b")]
    assert counts == [3, 2, 1]
    assert all(job.state is JobState.FAILED and job.error == BOOM for job in await backend.failed_page())


async def test_failed_page_pages_with_offset_and_limit(backend: Backend) -> None:
    jobs = []
    for _ in range(5):
        jobs.append(await failed_job(backend))
        await asyncio.sleep(0.01)
    newest_first = [job.id for job in reversed(jobs)]

    pages = [await backend.failed_page(offset=offset, limit=2) for offset in (0, 2, 4, 6)]

    assert [[job.id for job in page] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]


async def test_failed_pages_of_several_queues_and_of_one_are_slices_of_one_order(backend: Backend) -> None:
    jobs = []
    for number in range(7):
        jobs.append(await failed_job(backend, "a" if number % 3 else "b"))
        await asyncio.sleep(0.01)
    newest_first = [job.id for job in reversed(jobs)]
    only_a = [job.id for job in reversed(jobs) if job.queue == "a"]

    every = [await backend.failed_page(offset=offset, limit=3) for offset in (0, 3, 6)]
    of_a = [await backend.failed_page("a", offset=offset, limit=2) for offset in (0, 2, 4)]

    assert [[job.id for job in page] for page in every] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    assert [[job.id for job in page] for page in of_a] == [only_a[0:2], only_a[2:4], only_a[4:]]


async def test_pending_page_lists_waiting_jobs_in_the_order_reserve_hands_them_out(backend: Backend) -> None:
    base = time.time() - 10
    early, tie_a, tie_b = make_job(at=base), make_job(at=base + 1), make_job(at=base + 1)
    later = make_job(delay_s=60)
    soon = make_job(delay_s=30)
    elsewhere = make_job("other", at=base - 5)
    await enqueue(backend, later, tie_b, soon, early, elsewhere, tie_a)

    page = await backend.pending_page("default")

    assert [job.id for job in page] == [early.id, tie_a.id, tie_b.id, soon.id, later.id]
    assert [job.state for job in page] == [JobState.PENDING] * 3 + [JobState.DELAYED] * 2
    assert page[0].spec() == early.spec()
    assert [job.id for job in await backend.pending_page("other")] == [elsewhere.id]
    assert await backend.pending_page("nothing-here") == []
    assert await reserve_ids(backend, limit=3) == [early.id, tie_a.id, tie_b.id]


async def test_pending_page_pages_and_leaves_out_jobs_that_stopped_waiting(backend: Backend) -> None:
    base = time.time() - 10
    jobs = [make_job(at=base + i) for i in range(7)]
    await enqueue(backend, *jobs)
    running = await reserve_one(backend)
    assert running.id == jobs[0].id
    finished = await reserve_one(backend)
    assert not await backend.complete([done(finished)])
    assert await backend.fail(await reserve_one(backend), BOOM)
    put_back = await reserve_one(backend)
    assert await backend.retry_later(
        put_back, delay_s=60, error=None, count_exception=False, refund_attempt=True
    )
    waiting = [jobs[4].id, jobs[5].id, jobs[6].id, put_back.id]

    pages = [await backend.pending_page("default", offset=offset, limit=2) for offset in (0, 2, 4)]

    assert [[job.id for job in page] for page in pages] == [waiting[0:2], waiting[2:4], []]
    assert pages[1][1].state is JobState.DELAYED
    assert await backend.pending_page("default", limit=0) == []
    stats = await backend.stats("default")
    assert (stats.pending, stats.delayed, stats.reserved) == (3, 1, 1)


async def test_oldest_failed_ids_lists_the_oldest_failures_first(backend: Backend) -> None:
    jobs = []
    for queue in ("a", "b", "a", "a"):
        jobs.append(await failed_job(backend, queue))
        await asyncio.sleep(0.01)

    assert await backend.oldest_failed_ids(limit=2) == [jobs[0].id, jobs[1].id]
    assert await backend.oldest_failed_ids("a") == [jobs[0].id, jobs[2].id, jobs[3].id]


async def test_retry_failed_makes_jobs_pending_with_attempts_and_exceptions_reset(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    first = await reserve_one(backend)
    await backend.retry_later(first, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)
    assert await backend.fail(await reserve_one(backend), BOOM)

    assert await backend.retry_failed([job.id, "0000000000000000000000"]) == 1

    back = await get(backend, job.id)
    assert back.state is JobState.PENDING
    assert (back.attempts, back.exceptions) == (0, 0)
    assert await backend.failed_count() == 0
    again = await reserve_one(backend)
    assert (again.id, again.attempts) == (job.id, 1)


async def test_retry_failed_ignores_jobs_that_are_not_failed(backend: Backend) -> None:
    pending = make_job()
    await enqueue(backend, pending)

    assert await backend.retry_failed([pending.id]) == 0
    assert (await get(backend, pending.id)).attempts == 0


async def test_forget_failed_deletes_one_failed_job(backend: Backend) -> None:
    kept, forgotten = await failed_job(backend), await failed_job(backend)

    assert await backend.forget_failed(forgotten.id)
    assert not await backend.forget_failed(forgotten.id)

    assert await backend.get(forgotten.id) is None
    assert [job.id for job in await backend.failed_page()] == [kept.id]


async def test_forget_failed_leaves_jobs_that_are_not_failed(backend: Backend) -> None:
    pending = make_job()
    await enqueue(backend, pending)

    assert not await backend.forget_failed(pending.id)
    assert (await get(backend, pending.id)).state is JobState.PENDING


async def test_flush_failed_deletes_every_failed_job_or_one_queues(backend: Backend) -> None:
    await failed_job(backend, "a")
    await failed_job(backend, "a")
    b = await failed_job(backend, "b")

    assert await backend.flush_failed("a") == 2
    assert [job.id for job in await backend.failed_page()] == [b.id]
    assert await backend.flush_failed() == 1
    assert await backend.failed_count() == 0
    assert await backend.get(b.id) is None


async def test_flush_failed_older_than_keeps_recent_failures(backend: Backend) -> None:
    old = await failed_job(backend)
    await asyncio.sleep(0.6)
    recent = await failed_job(backend)

    assert await backend.flush_failed(older_than_s=0.3) == 1

    assert await backend.get(old.id) is None
    assert [job.id for job in await backend.failed_page()] == [recent.id]


# ---------------------------------------------------------------- unique jobs


async def test_a_second_dispatch_of_a_unique_job_returns_the_first_id_while_it_is_pending(
    backend: Backend,
) -> None:
    first, second = make_job(unique_key="doc:1"), make_job(unique_key="doc:1")

    assert await enqueue(backend, first) == [first.id]
    assert await enqueue(backend, second) == [first.id]

    assert await backend.get(second.id) is None
    assert (await backend.stats("default")).pending == 1


async def test_a_second_dispatch_of_a_unique_job_returns_the_first_id_while_it_is_delayed(
    backend: Backend,
) -> None:
    first, second = make_job(unique_key="doc:1", delay_s=60), make_job(unique_key="doc:1")
    await enqueue(backend, first)

    assert await enqueue(backend, second) == [first.id]


async def test_a_second_dispatch_of_a_unique_job_returns_the_first_id_while_it_is_reserved(
    backend: Backend,
) -> None:
    first, second = make_job(unique_key="doc:1"), make_job(unique_key="doc:1")
    await enqueue(backend, first)
    await reserve_one(backend)

    assert await enqueue(backend, second) == [first.id]
    assert await reserve_ids(backend) == []


async def test_a_unique_key_repeated_in_one_bulk_enqueue_is_stored_once(backend: Backend) -> None:
    first, second, other = make_job(unique_key="doc:1"), make_job(unique_key="doc:1"), make_job()

    assert await backend.enqueue([first, second, other]) == [first.id, first.id, other.id]
    assert (await backend.stats("default")).pending == 2


async def test_unique_keys_are_held_per_queue(backend: Backend) -> None:
    a, b = make_job("a", unique_key="doc:1"), make_job("b", unique_key="doc:1")

    assert await enqueue(backend, a, b) == [a.id, b.id]


async def test_a_unique_key_is_freed_when_its_job_completes(backend: Backend) -> None:
    first, second = make_job(unique_key="doc:1"), make_job(unique_key="doc:1")
    await enqueue(backend, first)
    await backend.complete([done(await reserve_one(backend))])

    assert await enqueue(backend, second) == [second.id]


async def test_a_unique_key_is_freed_when_its_job_fails(backend: Backend) -> None:
    first = await failed_job(backend, unique_key="doc:1")
    second = make_job(unique_key="doc:1")

    assert await enqueue(backend, second) == [second.id]
    assert second.id != first.id


async def test_a_unique_key_is_freed_when_its_queue_is_cleared(backend: Backend) -> None:
    first, second = make_job(unique_key="doc:1"), make_job(unique_key="doc:1")
    await enqueue(backend, first)
    assert await backend.clear("default") == 1

    assert await enqueue(backend, second) == [second.id]


async def test_a_unique_key_stays_held_while_its_job_waits_for_a_retry(backend: Backend) -> None:
    first, second = make_job(unique_key="doc:1"), make_job(unique_key="doc:1")
    await enqueue(backend, first)
    reserved = await reserve_one(backend)
    await backend.retry_later(reserved, delay_s=60, error=BOOM, count_exception=True, refund_attempt=False)

    assert await enqueue(backend, second) == [first.id]


# ---------------------------------------------------------------- queue control


async def test_a_paused_queue_hands_out_nothing_and_resume_restores_it(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)

    await backend.pause("default")

    assert await reserve_ids(backend) == []
    assert await backend.paused_queues() == {"default"}
    assert (await backend.stats("default")).paused

    await backend.resume("default")

    assert await backend.paused_queues() == set()
    assert not (await backend.stats("default")).paused
    assert await reserve_ids(backend) == [job.id]


async def test_a_paused_queue_still_accepts_jobs_and_other_queues_keep_working(backend: Backend) -> None:
    await backend.pause("a")
    a, b = make_job("a"), make_job("b")

    assert await enqueue(backend, a, b) == [a.id, b.id]

    assert (await backend.stats("a")).pending == 1
    assert await reserve_ids(backend, "b") == [b.id]
    assert await reserve_ids(backend, "a") == []


async def test_clear_removes_pending_and_delayed_jobs_only(backend: Backend) -> None:
    failed = await failed_job(backend)
    await enqueue(backend, make_job())
    reserved = await reserve_one(backend)
    await enqueue(backend, make_job(), make_job(), make_job(delay_s=60), make_job("other"))

    assert await backend.clear("default") == 3

    stats = await backend.stats("default")
    assert (stats.pending, stats.delayed, stats.reserved, stats.failed) == (0, 0, 1, 1)
    assert (await backend.stats("other")).pending == 1
    assert (await get(backend, failed.id)).state is JobState.FAILED
    assert await backend.complete([done(reserved)]) == []


async def test_a_restart_request_is_recorded_with_its_time(backend: Backend) -> None:
    assert await backend.restart_requested_at() is None

    requested = await backend.request_restart()

    assert requested == pytest.approx(time.time(), abs=2.0)
    assert await backend.restart_requested_at() == pytest.approx(requested, abs=0.001)


async def test_a_later_restart_request_replaces_the_earlier_one(backend: Backend) -> None:
    first = await backend.request_restart()
    await asyncio.sleep(0.01)
    second = await backend.request_restart()

    assert second > first
    assert await backend.restart_requested_at() == pytest.approx(second, abs=0.001)


# ---------------------------------------------------------------- observability


async def test_queues_lists_every_queue_dispatched_to_or_paused_sorted(backend: Backend) -> None:
    assert await backend.queues() == []

    await enqueue(backend, make_job("beta"), make_job("alpha", delay_s=60))
    await backend.pause("gamma")

    assert await backend.queues() == ["alpha", "beta", "gamma"]


async def test_stats_count_jobs_in_every_state(backend: Backend) -> None:
    await failed_job(backend)
    await enqueue(backend, make_job())
    await reserve_one(backend)
    await enqueue(backend, make_job(), make_job(), make_job(delay_s=60))

    stats = await backend.stats("default")

    assert stats.queue == "default"
    assert (stats.pending, stats.delayed, stats.reserved, stats.failed) == (2, 1, 1, 1)
    assert stats.size == 4
    assert not stats.paused


async def test_stats_of_an_unknown_queue_are_zero(backend: Backend) -> None:
    stats = await backend.stats("nothing-here")

    assert (stats.pending, stats.delayed, stats.reserved, stats.failed) == (0, 0, 0, 0)
    assert stats.oldest_pending_age_s is None
    assert not stats.paused


async def test_oldest_pending_age_is_measured_from_when_the_oldest_job_became_available(
    backend: Backend,
) -> None:
    assert (await backend.stats("default")).oldest_pending_age_s is None
    await enqueue(backend, make_job(at=time.time() - 5), make_job(), make_job(delay_s=60))

    age = (await backend.stats("default")).oldest_pending_age_s

    assert age is not None
    assert 4.0 <= age < 10.0


async def test_metrics_count_completed_and_failed_jobs_with_runtime_and_wait_per_minute(
    backend: Backend,
) -> None:
    await enqueue(backend, make_job(), make_job())
    await backend.complete([done(await reserve_one(backend), runtime_s=0.5, wait_s=0.25)])
    await backend.complete([done(await reserve_one(backend), runtime_s=1.5, wait_s=0.75)])
    await failed_job(backend)
    await failed_job(backend, "other")

    rows = await backend.metrics("default", minutes=5)

    # The jobs may straddle a minute boundary: check the rows' shape, then their sums.
    now = time.time()
    assert 1 <= len(rows) <= 2
    assert [row.minute for row in rows] == sorted(row.minute for row in rows)
    assert all(row.minute % 60 == 0 and now - 300 <= row.minute <= now for row in rows)
    assert sum(row.completed for row in rows) == 2
    assert sum(row.failed for row in rows) == 1
    assert sum(row.runtime_s_total for row in rows) == pytest.approx(2.0)
    assert sum(row.wait_s_total for row in rows) == pytest.approx(1.0)


async def test_metrics_of_an_idle_queue_are_empty(backend: Backend) -> None:
    await enqueue(backend, make_job())

    assert await backend.metrics("default") == []


async def test_get_finds_a_job_in_every_state(backend: Backend) -> None:
    failed = await failed_job(backend)
    completed, reserved = make_job(), make_job()
    await enqueue(backend, completed)
    await backend.complete([done(await reserve_one(backend))])
    await enqueue(backend, reserved)
    await reserve_one(backend)
    pending, delayed = make_job(), make_job(delay_s=60)
    await enqueue(backend, pending, delayed)

    held = (failed, completed, reserved, pending, delayed)
    states = {job.id: (await get(backend, job.id)).state for job in held}

    assert states == {
        failed.id: JobState.FAILED,
        completed.id: JobState.COMPLETED,
        reserved.id: JobState.RESERVED,
        pending.id: JobState.PENDING,
        delayed.id: JobState.DELAYED,
    }


async def test_get_of_an_unknown_id_returns_none(backend: Backend) -> None:
    assert await backend.get(new_job_id()) is None


async def test_find_by_tag_returns_the_tagged_jobs_newest_first(backend: Backend) -> None:
    base = time.time() - 10
    old = make_job(at=base, tags=("document:42",))
    other = make_job(at=base + 1, tags=("document:7",))
    new = make_job(at=base + 2, tags=("document:42", "tenant:1"))
    await enqueue(backend, old, other, new)
    await backend.complete([done(await reserve_one(backend))])  # tags survive completion

    assert [job.id for job in await backend.find_by_tag("document:42")] == [new.id, old.id]
    assert [job.id for job in await backend.find_by_tag("document:42", limit=1)] == [new.id]
    assert [job.id for job in await backend.find_by_tag("tenant:1")] == [new.id]
    assert await backend.find_by_tag("document:99") == []


async def test_find_by_tag_reports_each_jobs_current_state(backend: Backend) -> None:
    job = make_job(tags=("document:42",))
    await enqueue(backend, job)
    await backend.fail(await reserve_one(backend), BOOM)

    [found] = await backend.find_by_tag("document:42")

    assert (found.id, found.state) == (job.id, JobState.FAILED)


# ---------------------------------------------------------------- heartbeats


async def test_heartbeats_are_listed_until_they_expire(backend: Backend) -> None:
    await backend.put_heartbeat("worker", "host-1:100", {"pid": 100, "queues": ["default"]}, 0.3)
    await backend.put_heartbeat("worker", "host-1:101", {"pid": 101, "queues": ["default"]}, 30)
    await backend.put_heartbeat("supervisor", "host-1", {"pid": 1}, 30)

    assert sorted(beat["pid"] for beat in await backend.heartbeats("worker")) == [100, 101]
    await asyncio.sleep(0.4)

    [alive] = await backend.heartbeats("worker")
    assert alive.items() >= {"pid": 101, "queues": ["default"]}.items()
    assert [beat["pid"] for beat in await backend.heartbeats("supervisor")] == [1]


async def test_a_new_heartbeat_replaces_the_members_previous_one(backend: Backend) -> None:
    await backend.put_heartbeat("worker", "host-1:100", {"pid": 100, "jobs": 1}, 30)
    await backend.put_heartbeat("worker", "host-1:100", {"pid": 100, "jobs": 2}, 30)

    [beat] = await backend.heartbeats("worker")
    assert beat["jobs"] == 2


async def test_a_deleted_heartbeat_is_gone(backend: Backend) -> None:
    await backend.put_heartbeat("worker", "host-1:100", {"pid": 100}, 30)

    await backend.delete_heartbeat("worker", "host-1:100")
    await backend.delete_heartbeat("worker", "never-existed")

    assert await backend.heartbeats("worker") == []


# ---------------------------------------------------------------- wait


async def producer_for(backend_kind: str, backend: Backend, connect: Connect) -> Backend:
    """Another instance on the same URL; memory instances share nothing, so the same one."""
    return backend if backend_kind == "memory" else await connect()


async def test_wait_returns_promptly_after_an_enqueue_from_another_instance(
    backend_kind: str, backend: Backend, connect: Connect
) -> None:
    producer = await producer_for(backend_kind, backend, connect)
    waiter = asyncio.create_task(backend.wait(["other", "default"], timeout_s=10))
    await asyncio.sleep(0.2)
    assert not waiter.done()

    started = time.monotonic()
    await enqueue(producer, make_job())
    await asyncio.wait_for(waiter, timeout=3)

    assert time.monotonic() - started < 1.5


async def test_wait_does_not_miss_an_enqueue_made_just_before_it(
    backend_kind: str, backend: Backend, connect: Connect
) -> None:
    # Given a worker that found the queue empty, and a job that arrives before it waits
    producer = await producer_for(backend_kind, backend, connect)
    assert await reserve_ids(backend) == []
    await enqueue(producer, make_job())

    # Then its wait returns at once instead of sleeping through the whole timeout
    started = time.monotonic()
    await asyncio.wait_for(backend.wait(["default"], timeout_s=10), timeout=3)
    assert time.monotonic() - started < 1.5


async def test_wait_returns_after_its_timeout_when_nothing_arrives(backend: Backend) -> None:
    started = time.monotonic()

    await asyncio.wait_for(backend.wait(["default"], timeout_s=0.3), timeout=3)

    # Spurious wake-ups are allowed, but an idle queue must not make a worker spin.
    assert 0.2 <= time.monotonic() - started < 2.0


async def _wait_and_reserve(backend: Backend, queues: list[str], timeout_s: float) -> list[str]:
    """The ids a worker gets from one idle wait: reserved with the wait, or by the reserve after it."""
    reservation = await backend.wait_and_reserve(queues, timeout_s, worker_id="w1", lease_s=30.0, limit=5)
    if reservation is None:  # this backend only waits: the worker reserves as usual
        return await reserve_ids(backend, queues[0], limit=5)
    return [job.id for job in reservation.jobs]


async def test_wait_and_reserve_hands_over_a_job_dispatched_while_waiting(
    backend_kind: str, backend: Backend, connect: Connect
) -> None:
    producer = await producer_for(backend_kind, backend, connect)
    waiter = asyncio.create_task(_wait_and_reserve(backend, ["default", "other"], 10))
    await asyncio.sleep(0.2)
    assert not waiter.done()

    job = make_job()
    started = time.monotonic()
    await enqueue(producer, job)

    assert await asyncio.wait_for(waiter, timeout=3) == [job.id]
    assert time.monotonic() - started < 1.5
    reserved = await get(backend, job.id)
    assert reserved.state is JobState.RESERVED and reserved.attempts == 1


async def test_wait_and_reserve_takes_only_from_the_first_queue(backend: Backend) -> None:
    # Strict priority stays the worker's: a job in a later queue wakes the wait but is not taken
    job = make_job("other")
    waiter = asyncio.create_task(
        backend.wait_and_reserve(["default", "other"], 10, worker_id="w1", lease_s=30.0, limit=5)
    )
    await asyncio.sleep(0.1)
    await enqueue(backend, job)
    reservation = await asyncio.wait_for(waiter, timeout=3)
    assert reservation is None or reservation.jobs == []
    assert (await get(backend, job.id)).state is JobState.PENDING


async def test_an_interrupt_ends_a_wait_at_once_and_one_made_before_it_is_not_lost(
    backend_kind: str, backend: Backend, connect: Connect
) -> None:
    if not backend.interrupts_waits:  # the worker cancels such a backend's waits instead
        with pytest.raises(NotImplementedError, match="cannot interrupt a wait"):
            await backend.interrupt_wait("w1")
        return
    other = await producer_for(backend_kind, backend, connect)

    # Given a worker waiting with nothing to do
    waiter = asyncio.create_task(
        backend.wait_and_reserve(["default"], 10, worker_id="w1", lease_s=30.0, limit=5)
    )
    await asyncio.sleep(0.2)
    assert not waiter.done()

    # When another connection interrupts it, the wait returns well before its timeout
    started = time.monotonic()
    await other.interrupt_wait("w1")
    reservation = await asyncio.wait_for(waiter, timeout=3)
    assert time.monotonic() - started < 1.5
    assert reservation is not None and reservation.jobs == []

    # And an interrupt that comes before the wait (a stop racing the worker going idle) ends the next wait
    await other.interrupt_wait("w1")
    started = time.monotonic()
    await asyncio.wait_for(
        backend.wait_and_reserve(["default"], 10, worker_id="w1", lease_s=30.0, limit=5), timeout=3
    )
    assert time.monotonic() - started < 1.5
    # But not another worker's
    quiet = asyncio.create_task(
        backend.wait_and_reserve(["default"], 0.5, worker_id="w2", lease_s=30.0, limit=5)
    )
    await other.interrupt_wait("w1")
    await asyncio.sleep(0.2)
    assert not quiet.done()
    await asyncio.wait_for(quiet, timeout=3)


# ---------------------------------------------------------------- flags


async def test_a_flag_is_seen_by_every_instance_until_cleared(
    backend: Backend, connect: Connect, backend_kind: str
) -> None:
    other = await producer_for(backend_kind, backend, connect)
    assert await other.get_flag("workers_stopped") is None
    await backend.set_flag("workers_stopped", {"by": "ops", "at": 12.5})
    assert await other.get_flag("workers_stopped") == {"by": "ops", "at": 12.5}
    await other.set_flag("workers_stopped", None)
    assert await backend.get_flag("workers_stopped") is None


# ---------------------------------------------------------------- rate limits

LIMITS = {"requests": 4.0, "tokens": 1000.0}


async def test_rate_take_takes_from_full_buckets_until_one_lacks(backend: Backend) -> None:
    for _ in range(4):
        assert await backend.rate_take("m", {"requests": 1, "tokens": 100}, LIMITS, 60) == 0.0
    wait_s = await backend.rate_take("m", {"requests": 1, "tokens": 100}, LIMITS, 60)
    # 4 per 60 s refill one request every 15 s; a little of it has refilled already.
    assert 14.0 < wait_s <= 15.0


async def test_rate_take_is_all_or_nothing(backend: Backend) -> None:
    assert await backend.rate_take("m", {"requests": 1, "tokens": 900}, LIMITS, 60) == 0.0
    # Tokens lack (100 left, 500 asked): nothing is taken, not even the request.
    wait_s = await backend.rate_take("m", {"requests": 1, "tokens": 500}, LIMITS, 60)
    assert 23.0 < wait_s <= 24.0  # 400 tokens at 1000/60 per second
    for _ in range(3):
        assert await backend.rate_take("m", {"requests": 1}, LIMITS, 60) == 0.0


async def test_rate_take_lets_a_cost_above_capacity_pass_on_a_full_bucket(backend: Backend) -> None:
    assert await backend.rate_take("big", {"tokens": 5000}, LIMITS, 60) == 0.0
    assert await backend.rate_take("big", {"tokens": 1}, LIMITS, 60) > 0.0


async def test_rate_buckets_refill_continuously_and_are_shared(
    backend: Backend, connect: Connect, backend_kind: str
) -> None:
    other = await producer_for(backend_kind, backend, connect)
    limits = {"requests": 10.0}
    for _ in range(10):
        assert await backend.rate_take("fast", {"requests": 1}, limits, 1.0) == 0.0
    assert await other.rate_take("fast", {"requests": 1}, limits, 1.0) > 0.0
    await asyncio.sleep(0.25)  # 10 per second: two have come back
    assert await other.rate_take("fast", {"requests": 2}, limits, 1.0) == 0.0


async def test_rate_keys_do_not_share_buckets(backend: Backend) -> None:
    assert await backend.rate_take("a", {"requests": 4}, LIMITS, 60) == 0.0
    assert await backend.rate_take("b", {"requests": 4}, LIMITS, 60) == 0.0


async def test_rate_take_meets_the_rate_store_contract_the_llm_limiter_relies_on(backend: Backend) -> None:
    from rate_store_contract import check_rate_store

    await check_rate_store(backend)


# ---------------------------------------------------------------- queue names

# Every word the Redis key schema uses, old or new, and names that hold its separators:
# no queue name may share storage with another queue or with the backend's own keys.
RESERVED_WORDS = [
    "waiting", "reserved", "failed", "completed", "seq", "paused", "notify", "wake", "worker",
    "job", "unique", "tag", "m", "q", "queues", "restart", "schema", "hb", "flag", "rate~llm",
]  # fmt: skip
ODD_NAMES = [
    "a:b", "notify:failed", "q:{default}", "{default}", "default}", "{", "}:failed", "%7B",
    "job:1", "with space", "Rechnungen März", "документы", "队列", "ñ:{ü}",
]  # fmt: skip
QUEUE_NAMES = RESERVED_WORDS + ODD_NAMES


@pytest.mark.parametrize("queue", QUEUE_NAMES)
async def test_failure_and_retry_work_on_a_queue_of_any_valid_name_beside_every_other_name(
    backend: Backend, queue: str
) -> None:
    # Given one waiting job on every other queue name, so each neighbour's storage exists
    neighbours = [make_job(name) for name in QUEUE_NAMES if name != queue]
    await enqueue(backend, *neighbours)
    job = make_job(queue, tags=("document:1",), unique_key="u")
    await enqueue(backend, job)

    # When its job raises once (retried), then fails for good, is retried and completes
    first = await reserve_one(backend, queue)
    assert await backend.retry_later(first, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)
    second = await reserve_one(backend, queue)
    assert second.attempts == 2
    assert await backend.fail(second, BOOM)

    # Then the failed store lists it under its queue, and only there
    assert [j.id for j in await backend.failed_page(queue)] == [job.id]
    assert await backend.failed_count() == 1
    assert (await get(backend, job.id)).state is JobState.FAILED
    assert (await backend.stats(queue)).failed == 1
    assert await backend.retry_failed([job.id]) == 1
    third = await reserve_one(backend, queue)
    assert (third.id, third.attempts) == (job.id, 1)
    assert await backend.complete([done(third)]) == []
    assert (await get(backend, job.id)).state is JobState.COMPLETED
    assert [j.id for j in await backend.recent_completed(queue)] == [job.id]
    assert [j.id for j in await backend.find_by_tag("document:1")] == [job.id]
    # And every neighbour still holds exactly its own waiting job
    for neighbour in neighbours:
        stats = await backend.stats(neighbour.queue)
        assert (stats.pending, stats.reserved, stats.failed) == (1, 0, 0), neighbour.queue
    assert set(await backend.queues()) == set(QUEUE_NAMES)


async def test_every_queue_name_keeps_its_own_failed_store_paused_flag_and_clear(backend: Backend) -> None:
    # Given one job failed on each queue name and one waiting on each
    failed = [await failed_job(backend, name) for name in QUEUE_NAMES]
    await enqueue(backend, *[make_job(name) for name in QUEUE_NAMES])
    await backend.pause("failed")

    # Then each failure is filed once, under its own queue
    assert await backend.failed_count() == len(QUEUE_NAMES)
    for name, job in zip(QUEUE_NAMES, failed, strict=True):
        assert [j.id for j in await backend.failed_page(name)] == [job.id], name
    assert await backend.paused_queues() == {"failed"}
    assert await reserve_ids(backend, "failed") == []
    # And clearing one queue clears no other
    assert await backend.clear("notify") == 1
    assert sum([(await backend.stats(name)).pending for name in QUEUE_NAMES]) == len(QUEUE_NAMES) - 1
    assert await backend.retry_failed([job.id for job in failed]) == len(QUEUE_NAMES)
    assert await backend.failed_count() == 0


async def test_a_job_failed_on_notify_beside_a_queue_named_failed_is_in_the_failed_store_and_retried(
    backend: Backend,
) -> None:
    # Given a job on `notify` that fails, and any job on `failed` (a worker serves both)
    job = make_job("notify")
    await enqueue(backend, job, make_job("failed"))
    await backend.wait(["notify", "failed"], timeout_s=0.01)

    # When the worker reports the failure
    assert await backend.fail(await reserve_one(backend, "notify"), BOOM)

    # Then `queue failed` lists it, and `queue retry ID` brings it back
    assert [j.id for j in await backend.failed_page()] == [job.id]
    assert await backend.retry_failed([job.id]) == 1
    assert (await reserve_one(backend, "notify")).id == job.id
    assert (await backend.stats("failed")).pending == 1


@pytest.mark.parametrize("queue", ["notify", "failed", "a:b", "{x}", "Rechnungen März"])
async def test_wait_wakes_for_a_job_on_a_queue_of_any_name(backend: Backend, queue: str) -> None:
    waiter = asyncio.create_task(backend.wait([queue], timeout_s=5.0))
    await asyncio.sleep(0.05)
    await enqueue(backend, make_job(queue))
    await asyncio.wait_for(waiter, 2.0)
    assert (await backend.stats(queue)).pending == 1


# ---------------------------------------------------------------- progress


async def lapse(backend: Backend, job: Job, *, lease_s: float = 30.0) -> Job:
    """Let ``job``'s short lease lapse (its worker was killed) and reserve it again."""
    await asyncio.sleep(PAST_SHORT_LEASE_S)
    again = await reserve_one(backend, lease_s=lease_s)
    assert again.id == job.id
    return again


async def test_an_attempt_that_recorded_progress_is_given_back_when_its_lease_lapses(
    backend: Backend,
) -> None:
    # Given a job reserved, and its worker said the attempt made progress, then was killed
    await enqueue(backend, make_job())
    first = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    assert await backend.record_progress(first)

    # Then the next reservation counts as its first attempt again
    again = await lapse(backend, first)
    assert again.attempts == 1
    assert again.error is not None and again.error.type == "LeaseExpired"


async def test_progress_protects_only_its_own_attempt(backend: Backend) -> None:
    # Given an attempt that made progress and lapsed, then one that did not
    await enqueue(backend, make_job())
    first = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    assert await backend.record_progress(first)
    second = await lapse(backend, first, lease_s=SHORT_LEASE_S)

    # When the second attempt's worker dies without progress
    again = await lapse(backend, second)

    # Then that attempt is spent
    assert (second.attempts, again.attempts) == (1, 2)


async def test_progress_is_recorded_once_per_attempt_and_refunded_once(backend: Backend) -> None:
    # Given a job on its second attempt that records progress twice, then releases itself
    await enqueue(backend, make_job())
    first = await reserve_one(backend)
    assert await backend.retry_later(first, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)
    second = await reserve_one(backend)
    assert second.attempts == 2
    assert await backend.record_progress(second)
    assert await backend.record_progress(second)
    assert await backend.retry_later(
        second, delay_s=0, error=None, count_exception=False, refund_attempt=True
    )

    # Then one attempt came back, not two
    assert (await get(backend, first.id)).attempts == 1


async def test_an_attempt_that_recorded_progress_and_raised_is_not_spent_but_its_exception_counts(
    backend: Backend,
) -> None:
    await enqueue(backend, make_job())
    job = await reserve_one(backend)
    assert await backend.record_progress(job)

    assert await backend.retry_later(job, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)

    stored = await get(backend, job.id)
    assert (stored.attempts, stored.exceptions) == (0, 1)


async def test_record_progress_ignores_a_wrong_or_stale_reservation(backend: Backend) -> None:
    # Given a job whose first worker lost its lease to a second worker
    await enqueue(backend, make_job())
    first = await reserve_one(backend, lease_s=SHORT_LEASE_S)
    never = first.copy(reservation="not-a-token")
    assert not await backend.record_progress(never)
    second = await lapse(backend, first, lease_s=SHORT_LEASE_S)

    # When the first worker reports progress late
    assert not await backend.record_progress(first)

    # Then the second worker's attempt is not protected by it
    assert (second.attempts, (await lapse(backend, second)).attempts) == (2, 3)


async def test_record_progress_of_a_job_that_is_not_reserved_is_ignored(backend: Backend) -> None:
    job = make_job()
    await enqueue(backend, job)
    assert not await backend.record_progress(job)
    reserved = await reserve_one(backend)
    assert await backend.fail(reserved, BOOM)
    assert not await backend.record_progress(reserved)
    assert (await get(backend, job.id)).state is JobState.FAILED


async def test_a_job_that_recorded_progress_can_still_fail_and_complete(backend: Backend) -> None:
    await enqueue(backend, make_job(), make_job())
    failing, completing = (await backend.reserve("default", worker_id="w1", lease_s=30.0, limit=2)).jobs
    for job in (failing, completing):
        assert await backend.record_progress(job)

    assert await backend.fail(failing, BOOM)
    assert await backend.complete([done(completing)]) == []

    assert (await get(backend, failing.id)).state is JobState.FAILED
    assert (await get(backend, completing.id)).state is JobState.COMPLETED
