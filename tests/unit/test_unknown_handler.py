"""A job whose handler the worker lacks is put back for a worker that has it, then failed.

The scenario is a rolling deploy: the new code dispatches jobs of a new handler, and a
worker still running the old code reserves them first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from docmill.queue import (
    CapturedEventLog,
    Client,
    ConfigurationError,
    JobState,
    Registry,
    Worker,
    WorkerOptions,
)
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.unknown_handler import RECHECK_S


class FakeClock:
    def __init__(self) -> None:
        # Ahead of the real clock that stamps dispatched jobs; whole seconds, as the first
        # sighting is recorded to the millisecond.
        self.now = float(int(time.time()) + 5)

    def __call__(self) -> float:
        return self.now


async def run_worker(backend: MemoryBackend, registry: Registry, **options: Any) -> Worker:
    settings: dict[str, Any] = {"sleep_s": 0.05, "stop_when_empty": True, "stop_grace_s": 1.0, **options}
    worker = Worker(
        backend,
        registry,
        WorkerOptions(**settings),
        worker_id="w-unknown",
        log=CapturedEventLog(),
        clock=backend.clock,
        restart_poll_s=0.05,
        heartbeat_s=0.05,
        rss_mb=lambda: 40.0,
    )
    await asyncio.wait_for(worker.run(), 10)
    return worker


def events(worker: Worker, name: str) -> list[dict[str, Any]]:
    assert isinstance(worker.log, CapturedEventLog)
    return worker.log.events(name)


async def test_an_old_worker_puts_the_job_back_and_a_new_worker_runs_it() -> None:
    # Given a job of a handler only the new code has, and a worker of the old code
    clock = FakeClock()
    backend = MemoryBackend()
    backend.clock = clock
    job_id = await Client(backend).dispatch("mail.send_v2", "ann@example.com")

    # When the old worker reserves it
    old = await run_worker(backend, Registry(), unknown_handler_wait_s=60)

    # Then the job waits, its attempt refunded, with the reason an operator can read
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.DELAYED and job.attempts == 0
    assert job.available_at == clock.now + RECHECK_S
    assert job.error is not None and job.error.type == "UnknownHandler"
    assert "no handler named 'mail.send_v2'" in job.error.message
    assert [(e["action"], e["delay_s"], e["waited_s"]) for e in events(old, "job.unknown_handler")] == [
        ("released", RECHECK_S, 0)
    ]

    # When a new worker that has the handler takes it once it is due
    clock.now += RECHECK_S
    new, sent = Registry(), []

    @new.handler("mail.send_v2")
    async def send(address: str) -> None:
        sent.append(address)

    await run_worker(backend, new, unknown_handler_wait_s=60)

    # Then it runs, on its first attempt
    assert sent == ["ann@example.com"]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.COMPLETED and job.attempts == 1


async def test_the_job_fails_with_the_reason_once_no_worker_had_it_for_the_whole_wait() -> None:
    clock = FakeClock()
    backend = MemoryBackend()
    backend.clock = clock
    job_id = await Client(backend).dispatch("nobody.knows")
    first_seen = clock.now

    # Old workers keep meeting it while the wait (30 s) lasts: each puts it back
    releases = 0
    while True:
        worker = await run_worker(backend, Registry(), unknown_handler_wait_s=30)
        job = await backend.get(job_id)
        assert job is not None
        if job.state is JobState.FAILED:
            break
        releases += len(events(worker, "job.unknown_handler"))
        clock.now = job.available_at

    # Then it failed once 30 s had passed since the first worker met it, saying why
    assert releases == 6  # at 0, 5, 10, 15, 20 and 25 s; at 30 s the wait is over
    assert clock.now - first_seen >= 30
    assert job.error is not None and job.error.type == "UnknownHandler"
    assert "no handler named 'nobody.knows' is registered in any worker" in job.error.message
    assert "--app" in job.error.message
    assert job.attempts == 1 and job.exceptions == 0


async def test_a_job_retried_from_the_failed_store_gets_a_fresh_wait() -> None:
    clock = FakeClock()
    backend = MemoryBackend()
    backend.clock = clock
    job_id = await Client(backend).dispatch("nobody.knows")
    await run_worker(backend, Registry(), unknown_handler_wait_s=0)
    assert await backend.retry_failed([job_id]) == 1

    clock.now += 3600
    await run_worker(backend, Registry(), unknown_handler_wait_s=60)

    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.DELAYED


def test_the_wait_must_be_zero_or_more_seconds() -> None:
    with pytest.raises(ConfigurationError, match="unknown-handler wait must be 0 or more seconds"):
        WorkerOptions(unknown_handler_wait_s=-1)
    with pytest.raises(ConfigurationError):
        WorkerOptions(unknown_handler_wait_s=float("nan"))
    assert WorkerOptions().unknown_handler_wait_s == 300
