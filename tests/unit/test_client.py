"""The producer: dispatch, bulk dispatch in chunks, registered options, streamed 'retry all'."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from docmill.queue import Client, Dispatch, ErrorInfo, Job, JobOptions, Registry, UnknownHandler
from docmill.queue import client as client_module
from docmill.queue.backends.memory import MemoryBackend


class RecordingBackend(MemoryBackend):
    """The memory backend, remembering the size of every enqueue call."""

    def __init__(self) -> None:
        super().__init__()
        self.enqueue_sizes: list[int] = []

    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        self.enqueue_sizes.append(len(jobs))
        return await super().enqueue(jobs)


class FailedBacklog(MemoryBackend):
    """A failed store of ``size`` jobs that only ids pass through, counting the largest batch."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.failed_ids = [f"{i:022x}" for i in range(size)]
        self.largest_batch = 0
        self.calls = 0

    async def oldest_failed_ids(self, queue: str | None = None, *, limit: int = 500) -> list[str]:
        self.calls += 1
        return self.failed_ids[:limit]

    async def failed_count(self, queue: str | None = None) -> int:
        return len(self.failed_ids)

    async def failed_page(self, queue: str | None = None, *, offset: int = 0, limit: int = 50) -> list[Job]:
        newest_first = self.failed_ids[::-1][offset : offset + limit]
        return [Job(id=job_id, name="h", queue="default") for job_id in newest_first]

    async def retry_failed(self, job_ids: Sequence[str]) -> int:
        self.largest_batch = max(self.largest_batch, len(job_ids))
        wanted = set(job_ids)
        before = len(self.failed_ids)
        self.failed_ids = [job_id for job_id in self.failed_ids if job_id not in wanted]
        return before - len(self.failed_ids)


def analyze(document_id: int) -> None:
    del document_id


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


async def test_dispatch_stores_one_job_with_its_arguments_and_returns_its_id(
    backend: RecordingBackend,
) -> None:
    client = Client(backend)

    job_id = await client.dispatch("docmill.jobs.analyze", 42, options=JobOptions(tries=2), model="claude")

    job = await backend.get(job_id)
    assert job is not None
    assert (job.name, job.queue, job.args, job.kwargs, job.tries) == (
        "docmill.jobs.analyze",
        "default",
        [42],
        {"model": "claude"},
        2,
    )


async def test_dispatch_uses_the_clients_default_queue(backend: RecordingBackend) -> None:
    job_id = await Client(backend, default_queue="mail").dispatch("h")

    job = await backend.get(job_id)
    assert job is not None and job.queue == "mail"


async def test_a_function_is_dispatched_under_its_registered_name(backend: RecordingBackend) -> None:
    registry = Registry()
    registry.register(analyze, name="analyze")

    job_id = await Client(backend, registry).dispatch(analyze, 42)

    job = await backend.get(job_id)
    assert job is not None and job.name == "analyze"


async def test_a_function_without_a_registry_is_dispatched_under_its_dotted_name(
    backend: RecordingBackend,
) -> None:
    job_id = await Client(backend).dispatch(analyze, 42)

    job = await backend.get(job_id)
    assert job is not None and job.name == f"{__name__}.analyze"


async def test_an_unregistered_function_cannot_be_dispatched_through_a_registry(
    backend: RecordingBackend,
) -> None:
    with pytest.raises(UnknownHandler):
        await Client(backend, Registry()).dispatch(analyze, 42)
    assert backend.enqueue_sizes == []


async def test_registered_options_apply_and_dispatch_options_override_them(backend: RecordingBackend) -> None:
    registry = Registry()
    registry.handler(name="analyze", queue="document-analysis", tries=3, timeout_s=300.0)(analyze)
    client = Client(backend, registry)

    job_id = await client.dispatch("analyze", 42, options=JobOptions(tries=5))

    job = await backend.get(job_id)
    assert job is not None
    assert (job.queue, job.tries, job.timeout_s) == ("document-analysis", 5, 300.0)


async def test_a_second_dispatch_of_a_unique_job_returns_the_first_id(backend: RecordingBackend) -> None:
    client = Client(backend)
    unique = JobOptions(unique_key="document:42")

    first = await client.dispatch("h", options=unique)
    second = await client.dispatch("h", options=unique)

    assert second == first


async def test_dispatch_many_sends_chunks_of_bulk_chunk_jobs(
    backend: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "BULK_CHUNK", 3)
    items = [Dispatch("h", (i,)) for i in range(7)]

    ids = await Client(backend).dispatch_many(items)

    assert backend.enqueue_sizes == [3, 3, 1]
    assert len(ids) == len(set(ids)) == 7
    jobs = [await backend.get(job_id) for job_id in ids]
    assert [job.args for job in jobs if job is not None] == [[i] for i in range(7)]


async def test_dispatch_many_in_exact_chunks_sends_no_empty_call(
    backend: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "BULK_CHUNK", 3)

    await Client(backend).dispatch_many(Dispatch("h") for _ in range(6))

    assert backend.enqueue_sizes == [3, 3]


async def test_dispatch_many_of_nothing_calls_nothing(backend: RecordingBackend) -> None:
    assert await Client(backend).dispatch_many([]) == []
    assert backend.enqueue_sizes == []


async def test_dispatch_many_by_default_sends_a_thousand_jobs_per_call(backend: RecordingBackend) -> None:
    await Client(backend).dispatch_many(Dispatch("h") for _ in range(2500))

    assert backend.enqueue_sizes == [1000, 1000, 500]


async def test_dispatch_many_applies_each_items_options(backend: RecordingBackend) -> None:
    ids = await Client(backend).dispatch_many(
        [Dispatch("h", options=JobOptions(queue="a")), Dispatch("h", options=JobOptions(queue="b"))]
    )

    jobs = [await backend.get(job_id) for job_id in ids]
    assert [job.queue for job in jobs if job is not None] == ["a", "b"]


async def test_retry_all_failed_streams_the_backlog_in_batches() -> None:
    backlog = FailedBacklog(10_500)
    seen: list[int] = []

    retried = await Client(backlog).retry_all_failed(batch=500, progress=seen.append)

    assert retried == 10_500
    assert backlog.failed_ids == []
    assert backlog.largest_batch == 500  # never more ids in memory than one batch
    assert seen == [*range(500, 10_501, 500)]


async def test_retry_all_failed_stops_when_nothing_moves() -> None:
    class Stuck(FailedBacklog):
        async def retry_failed(self, job_ids: Sequence[str]) -> int:
            return 0  # another operator forgot these meanwhile

    backlog = Stuck(3)

    assert await Client(backlog).retry_all_failed() == 0
    assert backlog.calls == 1


async def test_retry_all_failed_on_an_empty_store_retries_nothing() -> None:
    assert await Client(FailedBacklog(0)).retry_all_failed() == 0


async def test_retry_all_failed_really_retries_through_the_backend() -> None:
    backend = MemoryBackend()
    client = Client(backend)
    for queue in ("a", "a", "b"):
        await client.dispatch("h", options=JobOptions(queue=queue))
    for queue in ("a", "a", "b"):
        [job] = (await backend.reserve(queue, worker_id="w", lease_s=30)).jobs
        await backend.fail(job, ErrorInfo("RuntimeError", "boom"))

    assert await client.retry_all_failed("a", batch=1) == 2
    assert (await backend.failed_count("a"), await backend.failed_count("b")) == (0, 1)
    assert (await backend.stats("a")).pending == 2
