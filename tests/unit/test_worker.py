"""The worker's job outcomes against the in-process memory backend.

Each test dispatches jobs, runs a worker until the queues are empty
(``stop_when_empty``) or a condition holds, and then reads the backend's
state and the worker's structured events.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from docmill.queue import (
    Client,
    Dispatch,
    ErrorInfo,
    Fail,
    Job,
    JobOptions,
    JobState,
    QueueConfig,
    Registry,
    Release,
    WorkerOptions,
)
from docmill.queue.acks import AckPolicy
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.events import CapturedEventLog
from docmill.queue.prefetch import Prefetch
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker


class FakeClock:
    """Wall-clock time that tests move forward; shared by the backend and the worker."""

    def __init__(self) -> None:
        self.now = time.time() + 5  # ahead of the real clock that stamps dispatched jobs

    def __call__(self) -> float:
        return self.now


def make_worker(backend: MemoryBackend, registry: Registry, **options: Any) -> Worker:
    settings: dict[str, Any] = {"sleep_s": 0.05, "stop_when_empty": True, "stop_grace_s": 1.0, **options}
    ack_policy = settings.pop("ack_policy", None)
    return Worker(
        backend,
        registry,
        WorkerOptions(**settings),
        worker_id="w-test",
        log=CapturedEventLog(),
        clock=backend.clock,
        restart_poll_s=0.05,
        heartbeat_s=0.05,
        rss_mb=lambda: 40.0,  # the test process's own size must not trip the memory limit
        ack_policy=ack_policy,
    )


async def work(backend: MemoryBackend, registry: Registry, **options: Any) -> tuple[WorkerStopReason, Worker]:
    worker = make_worker(backend, registry, **options)
    reason = await asyncio.wait_for(worker.run(), 10)
    return reason, worker


def events(worker: Worker, name: str) -> list[dict[str, Any]]:
    assert isinstance(worker.log, CapturedEventLog)
    return worker.log.events(name)


async def test_a_job_that_succeeds_is_completed_once_and_logged() -> None:
    backend, registry = MemoryBackend(), Registry()
    calls: list[int] = []

    @registry.handler(name="add")
    async def add(a: int, b: int) -> None:
        calls.append(a + b)

    job_id = await Client(backend, registry).dispatch("add", 2, 3)
    reason, worker = await work(backend, registry)

    assert reason is WorkerStopReason.EMPTY
    assert calls == [5]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED
    [done] = events(worker, "job.done")
    assert {k: done[k] for k in ("queue", "id", "name", "attempt")} == {
        "queue": "default",
        "id": job_id,
        "name": "add",
        "attempt": "1/1",
    }


async def test_sync_handlers_run_in_threads() -> None:
    backend, registry = MemoryBackend(), Registry()
    seen: list[str] = []

    @registry.handler(name="sync")
    def sync(word: str) -> None:
        time.sleep(0.01)
        seen.append(word)

    await Client(backend, registry).dispatch("sync", "hi")
    reason, _ = await work(backend, registry)
    assert reason is WorkerStopReason.EMPTY
    assert seen == ["hi"]


async def test_precedence_job_over_queue_over_worker_decides_tries() -> None:
    # Given a worker allowing 1 try, the queue "q" allowing 2, and one job asking for 3
    backend, registry = MemoryBackend(), Registry()
    runs: dict[str, int] = {}

    @registry.handler(name="boom")
    async def boom(tag: str) -> None:
        runs[tag] = runs.get(tag, 0) + 1
        raise ValueError(tag)

    client = Client(backend, registry)
    await client.dispatch("boom", "job-says-3", options=JobOptions(queue="q", tries=3))
    await client.dispatch("boom", "queue-says-2", options=JobOptions(queue="q"))
    await client.dispatch("boom", "worker-says-1", options=JobOptions(queue="plain"))

    # When a worker runs them with no backoff
    await work(backend, registry, queues=("q", "plain"), tries=1, queue_config={"q": QueueConfig(tries=2)})

    # Then each ran as often as the most specific setting allows, and ended failed
    assert runs == {"job-says-3": 3, "queue-says-2": 2, "worker-says-1": 1}
    assert await backend.failed_count() == 3
    # and every attempt's exception is counted, the last one included
    failed = await backend.failed_page()
    assert sorted((job.attempts, job.exceptions) for job in failed) == [(1, 1), (2, 2), (3, 3)]


async def test_retries_follow_the_backoff_list_and_its_last_value_repeats() -> None:
    clock = FakeClock()
    backend, registry = MemoryBackend(), Registry()
    backend.clock = clock

    @registry.handler(name="flaky")
    async def flaky() -> None:
        raise ConnectionError("upstream down")

    job_id = await Client(backend, registry).dispatch("flaky", options=JobOptions(tries=4, backoff_s=(1, 5)))
    delays: list[float] = []
    for _ in range(4):
        _, worker = await work(backend, registry)
        delays += [e["delay_s"] for e in events(worker, "job.retry")]
        job = await backend.get(job_id)
        assert job is not None
        if job.state is JobState.FAILED:
            break
        assert job.available_at == clock.now + delays[-1]
        clock.now += delays[-1]

    assert delays == [1, 5, 5]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.attempts == 4
    assert job.error is not None and job.error.type == "ConnectionError"
    assert "upstream down" in job.error.traceback


async def test_max_exceptions_fails_the_job_before_its_tries_are_spent() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="bad")
    async def bad() -> None:
        raise RuntimeError("always")

    job_id = await Client(backend, registry).dispatch("bad", options=JobOptions(tries=10, max_exceptions=2))
    _, worker = await work(backend, registry)

    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.attempts == 2  # the second exception reached max_exceptions
    assert [e["error"] for e in events(worker, "job.failed")] == ["RuntimeError: always"]


class NotRetryable(Fail):
    pass


async def test_a_handler_that_raises_fail_is_failed_at_once_with_tries_left() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="hopeless")
    async def hopeless() -> None:
        raise NotRetryable("the address is refused")

    @registry.handler(name="hopeless_sync")
    def hopeless_sync() -> None:
        raise Fail("no retry can help")

    client = Client(backend, registry)
    ids = [await client.dispatch(name, options=JobOptions(tries=5)) for name in ("hopeless", "hopeless_sync")]
    _, worker = await work(backend, registry)

    for job_id in ids:
        job = await backend.get(job_id)
        assert job is not None and job.state is JobState.FAILED and job.attempts == 1
    assert sorted(e["error"] for e in events(worker, "job.failed")) == [
        "Fail: no retry can help",
        "NotRetryable: the address is refused",
    ]
    assert events(worker, "job.retry") == []


async def test_a_job_past_retry_until_is_failed_without_running() -> None:
    backend, registry = MemoryBackend(), Registry()
    ran: list[bool] = []

    @registry.handler(name="late")
    async def late() -> None:
        ran.append(True)

    options = JobOptions(tries=5, retry_until=time.time() - 1)
    job_id = await Client(backend, registry).dispatch("late", options=options)
    await work(backend, registry)

    assert ran == []
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.type == "MaxAttemptsExceeded"


async def test_an_exception_after_retry_until_fails_instead_of_retrying() -> None:
    clock = FakeClock()
    backend, registry = MemoryBackend(), Registry()
    backend.clock = clock

    @registry.handler(name="slowfail")
    async def slowfail() -> None:
        clock.now += 10  # the deadline passes while the job runs
        raise RuntimeError("too late")

    job_id = await Client(backend, registry).dispatch(
        "slowfail", options=JobOptions(tries=5, retry_until=clock.now + 5)
    )
    await work(backend, registry)
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.attempts == 1


async def test_a_job_reserved_more_often_than_its_tries_is_failed_with_the_last_error() -> None:
    # Given a job whose worker died twice (its reservations spent both of its tries)
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="crashy")
    async def crashy() -> None:
        raise AssertionError("must not run")

    job_id = await Client(backend, registry).dispatch("crashy", options=JobOptions(tries=2))
    for _ in range(2):
        [held] = (await backend.reserve("default", worker_id="dead", lease_s=30)).jobs
        await backend.retry_later(
            held, delay_s=0, error=ErrorInfo("LeaseExpired", "worker died"), count_exception=False,
            refund_attempt=False,
        )  # fmt: skip

    # When a live worker reserves it a third time
    await work(backend, registry)

    # Then it fails without running, naming the last error
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.attempts == 3
    assert job.error == ErrorInfo(
        "MaxAttemptsExceeded",
        "crashy has been attempted too many times; last error: LeaseExpired: worker died",
    )


async def test_release_puts_the_job_back_without_spending_an_attempt() -> None:
    backend, registry = MemoryBackend(), Registry()
    calls: list[int] = []

    @registry.handler(name="limited")
    async def limited() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise Release(0)

    job_id = await Client(backend, registry).dispatch("limited", options=JobOptions(tries=1))
    _, worker = await work(backend, registry)

    assert len(calls) == 3
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED
    assert (job.attempts, job.exceptions) == (1, 0)
    assert [e["delay_s"] for e in events(worker, "job.released")] == [0.0, 0.0]


async def test_an_async_handler_is_cancelled_at_its_timeout_and_the_attempt_counts() -> None:
    backend, registry = MemoryBackend(), Registry()
    cancelled: list[bool] = []

    @registry.handler(name="hang")
    async def hang() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    job_id = await Client(backend, registry).dispatch("hang", options=JobOptions(tries=2, timeout_s=0.05))
    started = time.monotonic()
    reason, worker = await work(backend, registry)

    assert reason is WorkerStopReason.EMPTY and time.monotonic() - started < 5
    assert cancelled == [True, True]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.attempts == 2
    assert job.error is not None and job.error.type == "JobTimeout"
    assert [e["error"] for e in events(worker, "job.retry")] == [
        "JobTimeout: hang ran longer than its timeout of 0.05 s"
    ]


async def test_a_handler_raising_timeout_error_itself_is_not_reported_as_a_job_timeout() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="own")
    async def own() -> None:
        raise TimeoutError("socket read")

    job_id = await Client(backend, registry).dispatch("own")
    await work(backend, registry)
    job = await backend.get(job_id)
    assert job is not None and job.error is not None and job.error.type == "TimeoutError"


async def test_an_unknown_handler_fails_the_job_with_a_clear_reason_once_the_wait_is_zero() -> None:
    backend, registry = MemoryBackend(), Registry()
    job_id = await Client(backend).dispatch("nobody.knows")
    await work(backend, registry, unknown_handler_wait_s=0)
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.type == "UnknownHandler"


async def test_strict_priority_drains_the_first_queue_before_the_next() -> None:
    backend, registry = MemoryBackend(), Registry()
    order: list[str] = []

    @registry.handler(name="rec")
    async def rec(tag: str) -> None:
        order.append(tag)

    client = Client(backend, registry)
    for i in range(3):
        await client.dispatch("rec", f"low{i}", options=JobOptions(queue="low"))
    for i in range(3):
        await client.dispatch("rec", f"high{i}", options=JobOptions(queue="high"))

    await work(backend, registry, queues=("high", "low"), concurrency=1)
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"]


async def test_reservations_fill_free_slots_from_the_first_queue_first() -> None:
    backend, registry = MemoryBackend(), Registry()
    started: list[str] = []
    gate = asyncio.Event()

    @registry.handler(name="hold")
    async def hold(tag: str) -> None:
        started.append(tag)
        await gate.wait()

    client = Client(backend, registry)
    for i in range(2):
        await client.dispatch("hold", f"high{i}", options=JobOptions(queue="high"))
    for i in range(5):
        await client.dispatch("hold", f"low{i}", options=JobOptions(queue="low"))

    worker = make_worker(backend, registry, queues=("high", "low"), concurrency=3)
    task = asyncio.create_task(worker.run())
    while len(started) < 3:
        await asyncio.sleep(0.01)
    assert sorted(started) == ["high0", "high1", "low0"]
    gate.set()
    assert await asyncio.wait_for(task, 10) is WorkerStopReason.EMPTY


async def test_delayed_jobs_are_picked_up_when_due_without_waiting_for_the_idle_sleep() -> None:
    backend, registry = MemoryBackend(), Registry()
    done_at: list[float] = []

    @registry.handler(name="later")
    async def later() -> None:
        done_at.append(time.time())

    dispatched = time.time()
    await Client(backend, registry).dispatch("later", options=JobOptions(delay_s=0.2))
    worker = make_worker(backend, registry, stop_when_empty=False, sleep_s=30, max_jobs=1)
    assert await asyncio.wait_for(worker.run(), 5) is WorkerStopReason.MAX_JOBS
    assert 0.19 <= done_at[0] - dispatched < 1.0


async def test_heartbeat_names_the_running_jobs_and_is_removed_on_stop() -> None:
    backend, registry = MemoryBackend(), Registry()
    gate = asyncio.Event()

    @registry.handler(name="hold")
    async def hold() -> None:
        await gate.wait()

    job_id = await Client(backend, registry).dispatch("hold")
    worker = make_worker(backend, registry)
    task = asyncio.create_task(worker.run())
    beats: list[dict[str, Any]] = []
    while not beats or not beats[0]["jobs"]:
        await asyncio.sleep(0.02)
        beats = await backend.heartbeats("worker")
    assert beats[0]["jobs"] == [{"id": job_id, "name": "hold"}]
    assert beats[0]["worker_id"] == "w-test" and beats[0]["concurrency"] == 10
    gate.set()
    await asyncio.wait_for(task, 10)
    assert await backend.heartbeats("worker") == []


def test_prefetch_reserves_ahead_only_while_jobs_are_short() -> None:
    prefetch = Prefetch(concurrency=4, short_job_s=0.05)
    assert prefetch.wanted(free_slots=4) == 4  # nothing learned yet: no jobs held back in a buffer
    prefetch.observe(0.04)
    assert prefetch.depth == 8 and prefetch.wanted(free_slots=4) == 12  # two jobs ahead per slot
    for _ in range(100):
        prefetch.observe(2.0)
    assert prefetch.depth == 0 and prefetch.wanted(free_slots=1) == 1


def test_prefetch_refills_at_a_quarter_or_when_jobs_are_quiet_and_it_has_room() -> None:
    prefetch = Prefetch(concurrency=4)
    prefetch.observe(0.04)  # depth 8
    prefetch.jobs.extend(Job.build("x") for _ in range(3))
    assert prefetch.wanted(free_slots=0) == 0  # in a burst: three left is enough for now
    assert prefetch.has_room()
    assert prefetch.wanted(free_slots=0, quiet=True) == 5  # between bursts: top it up
    prefetch.jobs.popleft()
    assert prefetch.wanted(free_slots=1) == 7  # down to a quarter: at once, burst or not
    prefetch.jobs.extend(Job.build("x") for _ in range(6))
    assert not prefetch.has_room() and prefetch.wanted(free_slots=0, quiet=True) == 0


def test_prefetch_holds_about_twenty_ms_of_work_when_jobs_take_milliseconds() -> None:
    def depth(concurrency: int, avg_runtime_s: float) -> int:
        prefetch = Prefetch(concurrency)
        prefetch.observe(avg_runtime_s)
        return prefetch.depth

    assert depth(10, 0.008) == 25  # 20 ms of work over 10 slots: fewer, larger refills ...
    assert depth(1, 0.002) == 10
    assert depth(10, 0.001) == 32  # ... capped ...
    assert depth(50, 0.001) == 100  # ... except that a slot always has two jobs ahead
    assert depth(10, 0.050) == 20
    assert depth(10, 0.150) == 10  # one a slot once jobs are not brief ...
    assert depth(10, 0.300) == 0  # ... and nothing for long jobs: none held back from other workers


async def test_jobs_reserved_ahead_are_put_back_at_once_on_stop() -> None:
    # Given a worker that learned its jobs are short and then meets a slow one
    backend, registry = MemoryBackend(), Registry()
    gate = asyncio.Event()

    @registry.handler(name="quick")
    async def quick() -> None:
        return None

    @registry.handler(name="blocker")
    async def blocker() -> None:
        await gate.wait()

    client = Client(backend, registry)
    await client.dispatch_many([Dispatch("quick")] * 5)
    worker = make_worker(backend, registry, concurrency=1, stop_when_empty=False, stop_grace_s=0.1)
    task = asyncio.create_task(worker.run())
    while worker.jobs_done < 5:
        await asyncio.sleep(0.01)
    blocker_id = await client.dispatch("blocker")
    waiting = [await client.dispatch("quick") for _ in range(3)]
    while len(worker.prefetch.jobs) < 1:
        await asyncio.sleep(0.01)

    # When it stops
    worker.request_stop()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED

    # Then the running job and the ones held ahead are all pending again, no attempt spent
    for job_id in [blocker_id, *waiting]:
        job = await backend.get(job_id)
        assert job is not None and job.state is JobState.PENDING and job.attempts == 0


async def test_a_failure_hook_runs_once_the_job_is_in_the_failed_store() -> None:
    # Given a handler that always raises, with a hook that records what it is given
    backend, registry = MemoryBackend(), Registry()
    seen: list[tuple[str, str, JobState | None]] = []

    @registry.handler(name="always_fails")
    async def always_fails() -> None:
        raise ValueError("bad input")

    @registry.on_failed("always_fails")
    async def record(job: Job, error: ErrorInfo) -> None:
        stored = await backend.get(job.id)
        seen.append((job.id, error.summary(), stored.state if stored else None))

    job_id = await Client(backend, registry).dispatch("always_fails", options=JobOptions(tries=2))

    # When a worker has run it out of tries
    await make_worker(backend, registry, backoff_s=0).run()

    # Then the hook ran once, after the job reached the failed store, with the last error
    assert seen == [(job_id, "ValueError: bad input", JobState.FAILED)]


async def test_a_failure_hook_that_raises_is_logged_and_the_job_stays_failed() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="fails")
    async def fails() -> None:
        raise RuntimeError("boom")

    @registry.on_failed("fails")
    def broken_hook(job: Job, error: ErrorInfo) -> None:
        raise KeyError("the hook itself is broken")

    job_id = await Client(backend, registry).dispatch("fails")
    worker = make_worker(backend, registry)
    await worker.run()

    stored = await backend.get(job_id)
    assert stored is not None and stored.state is JobState.FAILED
    assert isinstance(worker.log, CapturedEventLog)
    [event] = worker.log.events("job.failed_hook_error")
    assert event["id"] == job_id and "the hook itself is broken" in event["error"]


async def _learn_jobs_are_short(client: Client, worker: Worker) -> None:
    """Run a few quick jobs so the worker reserves ahead and its slots run buffered jobs back to back."""
    await client.dispatch_many([Dispatch("quick")] * 4)
    while worker.jobs_done < 4:
        await asyncio.sleep(0.01)


async def test_a_lost_lease_stops_only_that_job_when_a_slot_runs_buffered_jobs_back_to_back() -> None:
    # Given one slot that has moved on from job to job within its task
    backend, registry = MemoryBackend(), Registry()
    ran: list[str] = []
    victim_started = asyncio.Event()

    @registry.handler(name="quick")
    async def quick(tag: str = "") -> None:
        ran.append(tag)

    @registry.handler(name="victim")
    async def victim() -> None:
        victim_started.set()
        await asyncio.sleep(30)

    client = Client(backend, registry)
    worker = make_worker(backend, registry, concurrency=1, stop_when_empty=False)
    task = asyncio.create_task(worker.run())
    await _learn_jobs_are_short(client, worker)
    victim_id = (
        await client.dispatch_many(
            [Dispatch("quick", ("before",)), Dispatch("victim"), Dispatch("quick", ("after",))]
        )
    )[1]
    await asyncio.wait_for(victim_started.wait(), 5)

    # When the victim's lease is reported lost
    worker._on_leases_lost([victim_id])

    # Then the slot goes on with the next job, and the victim is neither acknowledged nor retried
    for _ in range(500):
        if "after" in ran:
            break
        await asyncio.sleep(0.01)
    worker.request_stop()
    assert await asyncio.wait_for(task, 5) is WorkerStopReason.INTERRUPTED
    job = await backend.get(victim_id)
    assert job is not None and job.state is JobState.RESERVED
    assert worker.jobs_done == 6  # four quick ones to learn, "before" and "after"; not the victim
    assert [e["id"] for e in events(worker, "job.lease_lost")] == [victim_id]


async def test_handlers_that_never_await_still_let_the_loop_in_between_jobs() -> None:
    # Given slots running many buffered jobs whose handlers return without ever awaiting
    backend, registry = MemoryBackend(), Registry()
    ticks = 0
    seen: list[int] = []

    @registry.handler(name="quick")
    async def quick() -> None:
        seen.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    client = Client(backend, registry)
    worker = make_worker(backend, registry, concurrency=32, stop_when_empty=False)
    ticking = asyncio.create_task(ticker())
    task = asyncio.create_task(worker.run())
    await _learn_jobs_are_short(client, worker)
    await client.dispatch_many([Dispatch("quick")] * 200)
    while worker.jobs_done < 204:
        await asyncio.sleep(0.01)
    worker.request_stop()
    await asyncio.wait_for(task, 5)
    ticking.cancel()

    # Then other tasks ran at least once per buffer's worth of jobs (free slots + two ahead each)
    longest = max(len(list(run)) for _, run in itertools.groupby(seen))
    assert longest <= 3 * 32


class RecordsCalls(MemoryBackend):
    """Notes each reservation (with how many jobs it returned) in a shared log."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Any:
        reservation = await super().reserve(queue, worker_id=worker_id, lease_s=lease_s, limit=limit)
        self.log.append(f"reserve:{len(reservation.jobs)}")
        return reservation


async def test_a_job_that_wakes_an_idle_worker_starts_before_the_workers_next_backend_call() -> None:
    # Given an idle worker
    log: list[str] = []
    backend, registry = RecordsCalls(log), Registry()

    @registry.handler(name="mark")
    async def mark() -> None:
        log.append("start")

    worker = make_worker(backend, registry, stop_when_empty=False, sleep_s=30)
    task = asyncio.create_task(worker.run())
    for _ in range(100):
        if worker._idle_task is not None:
            break
        await asyncio.sleep(0.01)
    log.clear()

    # When a job arrives and the wait reserves it
    await Client(backend, registry).dispatch("mark")
    for _ in range(100):
        if "start" in log and len(log) >= 3:
            break
        await asyncio.sleep(0.01)
    worker.request_stop()
    await asyncio.wait_for(task, 5)

    # Then the job started before the worker asked the backend for more
    assert log[:3] == ["reserve:1", "start", "reserve:0"]


class CountsCompletes(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def complete(self, completions: Any) -> list[str]:
        self.batches.append(len(completions))
        ignored: list[str] = await super().complete(completions)
        return ignored


async def test_jobs_finishing_in_a_stream_are_acknowledged_together_once_the_stream_pauses() -> None:
    # Given 30 jobs that end one millisecond after another
    backend, registry = CountsCompletes(), Registry()

    @registry.handler(name="nap")
    async def nap(ms: int) -> None:
        await asyncio.sleep(ms / 1000)

    await Client(backend, registry).dispatch_many([Dispatch("nap", (ms,)) for ms in range(30)])

    # When one worker runs them all at once (a quiet time that a loaded machine's stalls stay under)
    worker = make_worker(
        backend, registry, concurrency=30, ack_policy=AckPolicy(quiet_s=0.05, max_wait_s=1.0)
    )
    reason = await asyncio.wait_for(worker.run(), 10)

    # Then their acks went out in a few calls, not one every couple of milliseconds, and none was lost
    assert reason is WorkerStopReason.EMPTY
    assert sum(backend.batches) == 30
    assert len(backend.batches) <= 4, backend.batches
    stats = await backend.stats("default")
    assert (stats.reserved, stats.pending) == (0, 0)
