"""`retry all` retries the jobs that were failed when it started, on every backend, even
while workers fail the retried jobs again as fast as it retries them.

The workers are simulated deterministically: right after each retry batch lands, the
jobs it moved are reserved and failed again, as a worker pool running a handler that
still raises would do between two batches of a long `retry all`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from docmill.queue import Backend, Client, Dispatch, ErrorInfo, JobOptions, backend_from_url

QUEUE = "mail"
AGAIN = ErrorInfo("RuntimeError", "the mail server still refuses")


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/queue.db"
    else:
        url = request.getfixturevalue("redis_url")
    opened = backend_from_url(url)
    await opened.connect()
    yield opened
    await opened.close()


async def fail_all(backend: Backend, error: ErrorInfo) -> list[str]:
    """Reserve every due job of the queue and fail it, as a worker would; returns the ids."""
    failed: list[str] = []
    while jobs := (await backend.reserve(QUEUE, worker_id="w", lease_s=60, limit=100)).jobs:
        for job in jobs:
            assert await backend.fail(job, error)
            failed.append(job.id)
    return failed


def refail_after_each_batch(backend: Backend, retried: list[str]) -> None:
    """Make every job retried for the first time fail again at once (workers meanwhile)."""
    retry_failed = backend.retry_failed
    seen: set[str] = set()

    async def retry_then_workers_fail_them(ids: Sequence[str]) -> int:
        moved = await retry_failed(ids)
        retried.extend(ids)
        first_time = [i for i in ids if i not in seen]
        seen.update(ids)
        if first_time:
            await fail_all(backend, AGAIN)
        return moved

    backend.retry_failed = retry_then_workers_fail_them  # type: ignore[method-assign]


async def test_retry_all_retries_each_job_failed_at_its_start_once(backend: Backend) -> None:
    # Given 25 failed jobs
    await Client(backend).dispatch_many(
        Dispatch("mail.send", (n,), options=JobOptions(queue=QUEUE)) for n in range(25)
    )
    initially_failed = await fail_all(backend, ErrorInfo("RuntimeError", "the mail server refuses"))
    assert await backend.failed_count(QUEUE) == 25

    # When `retry all` runs in batches of 10 while workers fail each retried job again
    retried: list[str] = []
    refail_after_each_batch(backend, retried)
    count = await Client(backend).retry_all_failed(QUEUE, batch=10)

    # Then each of the 25 was retried once, and the 25 that failed again wait in the store
    assert count == 25
    assert sorted(retried) == sorted(initially_failed)
    assert await backend.failed_count(QUEUE) == 25


async def test_retry_all_of_an_empty_store_retries_nothing(backend: Backend) -> None:
    assert await Client(backend).retry_all_failed(QUEUE) == 0
