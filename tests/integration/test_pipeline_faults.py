"""The pipeline under faults, with real worker processes and Claude's emulator over HTTP.

Two ``docmill queue work`` processes serve the pipeline's queues on an SQLite queue and
an SQLite documents database for the whole module (booting them is the slow part); each
test uploads its own documents through ``DocumentService`` and counts what the emulator
saw. The crash test runs its own worker on its own queue, so killing it touches nothing
else.

    429 storm           documents complete, the 429s cost no attempt, every one counted
    529 (overloaded)    the same
    SIGKILL mid-document a new worker resumes; no chunk is paid for twice
    hostile files       each fails its document with its reason; the workers carry on
    API unreachable     past ``DOCMILL_LLM_UNREACHABLE_TIMEOUT_S`` the document fails saying
                        since when, no attempt spent; back before it, the document completes
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from test_analysis_files import hostile_files
from test_end_to_end import MESSAGES, PipelineWorkers, fake_key, pipeline_env

from docmill.documents.context import DocumentContext
from docmill.documents.errors import EmptyUpload
from docmill.documents.models import ChunkResult, Document
from docmill.documents.settings import DocumentSettings
from docmill.testing import AnthropicEmulator, EmulatorConfig

T = TypeVar("T")
API_KEY = fake_key()
ENDED = ("completed", "failed", "cancelled")


def report(number: int | str, sections: int = 8) -> tuple[str, bytes]:
    """A Markdown report of ``sections`` parts (eight make two chunks of the model's size, and a
    reduce); ``number`` makes its bytes unique, so it is never taken for an earlier upload."""
    parts = [
        f"## Part {i}\n\n"
        + " ".join(f"Harbour {number}-{i} moved {i * 7 + j} containers on day {j}." for j in range(100))
        for i in range(sections)
    ]
    return f"report-{number}.md", (f"# Report {number}\n\n" + "\n\n".join(parts)).encode()


@dataclass
class Pipeline:
    """Workers on one queue and database, and the test's way in: the documents service."""

    settings: DocumentSettings
    workers: PipelineWorkers

    def run(self, action: Callable[[DocumentContext], Awaitable[T]]) -> T:
        async def go() -> T:
            context = await DocumentContext.create(self.settings)
            try:
                return await action(context)
            finally:
                await context.aclose()

        return asyncio.run(go())

    def upload(self, files: list[tuple[str, bytes]]) -> list[int]:
        async def upload(context: DocumentContext) -> list[int]:
            return [(await context.service.upload(data, name)).id for name, data in files]

        return self.run(upload)

    def documents(self, ids: list[int]) -> list[Document]:
        async def read(context: DocumentContext) -> list[Document]:
            return [await context.service.get(i) for i in ids]

        return self.run(read)

    def wait(
        self, ids: list[int], *, until: Callable[[list[Document]], bool] | None = None
    ) -> list[Document]:
        """Poll until ``until`` holds (default: every document ended); 45 s at most."""
        done = until or (lambda documents: all(d.status in ENDED for d in documents))
        deadline = time.monotonic() + 45
        while not done(documents := self.documents(ids)):
            self.workers.assert_alive()
            assert time.monotonic() < deadline, ([(d.name, d.status) for d in documents], self.workers.tail())
            time.sleep(0.05)
        return documents

    def saved_calls(self, document_id: int) -> list[tuple[str, int]]:
        async def read(context: DocumentContext) -> list[tuple[str, int]]:
            def query(session: Any) -> list[tuple[str, int]]:
                rows = session.execute(
                    select(ChunkResult.phase, ChunkResult.index).where(ChunkResult.document_id == document_id)
                )
                return [(phase, index) for phase, index in rows]

            return await context.db.run(query)

        return self.run(read)

    def saved_count(self, document_id: int) -> int:
        async def read(context: DocumentContext) -> int:
            return await context.db.run(
                lambda s: int(
                    s.scalar(select(func.count(ChunkResult.id)).where(ChunkResult.document_id == document_id))
                    or 0
                )
            )

        return self.run(read)


def start_pipeline(root: Path, emulator: AnthropicEmulator | str, **extra: str) -> Pipeline:
    """A pipeline whose workers call Claude at ``emulator`` (or at a URL where nothing may listen)."""
    env = pipeline_env(
        storage=root / "storage",
        queue_url=f"sqlite:///{root / 'queue.db'}",
        database_url=f"sqlite:///{root / 'storage' / 'docmill.db'}",
        emulator_url=emulator if isinstance(emulator, str) else emulator.url,
        api_key=API_KEY,
        **extra,
    )
    pipeline = Pipeline(DocumentSettings.from_env(env), PipelineWorkers(env, root / "logs"))
    pipeline.run(lambda context: asyncio.sleep(0))  # create and migrate the database before the workers
    return pipeline


@pytest.fixture(scope="module")
def emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=API_KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, emulator: AnthropicEmulator) -> Iterator[Pipeline]:
    started = start_pipeline(tmp_path_factory.mktemp("faults"), emulator)
    started.workers.start()
    started.workers.start()
    started.workers.wait_started(2)  # tests mark the events so far: boot lines must not count as new
    yield started
    assert started.workers.stop() == [0, 0], started.workers.tail()


def mark(workers: PipelineWorkers) -> list[int]:
    """How many events each worker has logged so far."""
    return [len(workers.events(index=i)) for i in range(len(workers.processes))]


def new_events(
    workers: PipelineWorkers, since: list[int], event: str, name: str | None = None
) -> list[dict[str, Any]]:
    """The events of one kind (and job name) logged after ``since``, of every worker."""
    found = [e for i, seen in enumerate(since) for e in workers.events(index=i)[seen:]]
    return [e for e in found if e.get("event") == event and (name is None or e.get("name") == name)]


def wait_events(
    workers: PipelineWorkers, since: list[int], event: str, name: str, count: int
) -> list[dict[str, Any]]:
    """The events once ``count`` have been logged: a job's end is logged just after its document's."""
    deadline = time.monotonic() + 10
    while len(found := new_events(workers, since, event, name)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# ---------------------------------------------------------------------- the API pushes back
@pytest.mark.parametrize(
    ("fault", "status", "injected"),
    [("429", "429", 30), ("529", "529", 12)],
    ids=["429-storm", "529-overloaded"],
)
def test_documents_complete_through_rate_limits_and_overload_without_spending_attempts(
    pipeline: Pipeline, emulator: AnthropicEmulator, fault: str, status: str, injected: int
) -> None:
    # Given an API that refuses the next calls (a 429 says "retry in 1 s"; a 529 says nothing)
    emulator.reset(EmulatorConfig(api_key=API_KEY, fault_retry_after_s=1))
    emulator.inject(fault, count=injected)
    before = mark(pipeline.workers)

    # When three reports of several chunks each are uploaded
    ids = pipeline.upload([report(f"{fault}-{n}") for n in range(3)])
    documents = pipeline.wait(ids)

    # Then every one completed
    assert [d.status for d in documents] == ["completed"] * 3, [d.error_reason for d in documents]
    planned = sum(d.progress_total for d in documents)
    assert all(d.progress_total >= 3 for d in documents)  # maps and a reduce

    # And every refusal was one call, counted by the emulator; every chunk was paid for once
    stats = emulator.stats
    assert stats["by_status"][status] == injected
    assert stats["by_endpoint"][MESSAGES] == planned + injected
    for document in documents:
        calls = pipeline.saved_calls(document.id)
        assert len(calls) == len(set(calls)) == document.progress_total

    # And the jobs were put back without spending an attempt: each finished on its first
    released = new_events(pipeline.workers, before, "job.released", "documents.process")
    done = wait_events(pipeline.workers, before, "job.done", "documents.process", 3)
    assert released, pipeline.workers.tail()
    assert sorted(e["attempt"] for e in done) == ["1/3"] * 3, pipeline.workers.tail()
    assert new_events(pipeline.workers, before, "job.retry") == []
    assert new_events(pipeline.workers, before, "job.failed") == []


# ---------------------------------------------------------------------- hostile files
def test_each_hostile_file_fails_its_document_with_its_reason_and_the_workers_carry_on(
    pipeline: Pipeline, emulator: AnthropicEmulator
) -> None:
    emulator.reset(EmulatorConfig(api_key=API_KEY))
    before = mark(pipeline.workers)
    pids = [p.pid for p in pipeline.workers.processes]
    cases = hostile_files()

    # Given an empty file: the upload itself is refused, so no document is made
    with pytest.raises(EmptyUpload, match=r"^The file is empty; upload a file with content\.$"):
        pipeline.upload([(cases["empty"][0], cases["empty"][1])])

    # When every other hostile file is uploaded, and a good report after them
    hostile = {case: cases[case] for case in sorted(cases) if case != "empty"}
    ids = pipeline.upload([(name, data) for name, data, _, _ in hostile.values()] + [report(99, sections=2)])
    documents = pipeline.wait(ids)

    # Then each hostile file failed its document with its one-sentence reason
    for (case, (name, _, _, reason)), document in zip(hostile.items(), documents, strict=False):
        assert (document.name, document.status, document.error_reason) == (name, "failed", reason), case
        assert pipeline.saved_count(document.id) == 0 and document.cost_usd == 0.0
    # And the good report after them completed, in the same worker processes
    assert documents[-1].status == "completed"
    assert [p.pid for p in pipeline.workers.processes] == pids
    assert all(p.poll() is None for p in pipeline.workers.processes)
    # And no job failed or was retried: a bad file is the document's failure, never the job's
    analyses = wait_events(pipeline.workers, before, "job.done", "documents.analyze", len(ids))
    assert len(analyses) == len(ids)
    assert new_events(pipeline.workers, before, "job.failed") == []
    assert new_events(pipeline.workers, before, "job.retry") == []
    assert new_events(pipeline.workers, before, "worker.started") == []


# ---------------------------------------------------------------------- a worker dies
def test_a_worker_killed_mid_document_is_resumed_by_another_and_no_chunk_is_paid_twice(
    tmp_path: Path, emulator: AnthropicEmulator
) -> None:
    # Given a worker whose leases lapse in 2 s, making one model call at a time, 0.3 s each
    emulator.reset(EmulatorConfig(api_key=API_KEY, latency_s=0.3))
    pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY="1")
    workers = pipeline.workers
    lease = ("--lease", "2")
    try:
        first = workers.start(concurrency=2, extra=lease)
        [document_id] = pipeline.upload([report(7, sections=16)])

        # When it is SIGKILLed once two of the document's calls are saved
        pipeline.wait([document_id], until=lambda ds: ds[0].progress_done >= 2)
        workers.kill(first)
        paid_at_kill = emulator.stats["by_endpoint"][MESSAGES]
        saved_at_kill = pipeline.saved_count(document_id)
        [killed] = pipeline.documents([document_id])
        assert killed.status == "processing" and saved_at_kill < killed.progress_total

        # and another worker starts
        second = workers.start(concurrency=2, extra=lease)
        [document] = pipeline.wait([document_id])
    finally:
        codes = workers.stop()

    # Then the document completed, resumed by the second worker; the killed attempt had
    # saved calls, so it was given back and the job is on its first attempt again
    assert document.status == "completed", (document.error_reason, workers.tail())
    assert codes[first] < 0 and codes[second] == 0
    resumed = [e for e in workers.events("job.started", second) if e.get("name") == "documents.process"]
    assert [e["attempt"] for e in resumed] == ["1/3"]

    # And only the call in flight at the kill was lost; the second worker paid for exactly
    # the calls not yet saved, so no chunk was paid for twice
    planned = document.progress_total
    assert paid_at_kill - saved_at_kill in (0, 1)
    assert emulator.stats["by_endpoint"][MESSAGES] - paid_at_kill == planned - saved_at_kill
    calls = pipeline.saved_calls(document_id)
    assert len(calls) == len(set(calls)) == planned == document.progress_done


def test_kills_of_a_document_that_keeps_moving_forward_never_fail_it(
    tmp_path: Path, emulator: AnthropicEmulator
) -> None:
    # Given workers whose leases lapse in 5 s (long enough that a busy machine never lets a
    # live worker's lease lapse), making one model call at a time, 0.3 s each, and a document
    # of some 17 calls whose job has 3 tries
    emulator.reset(EmulatorConfig(api_key=API_KEY, latency_s=0.3))
    pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY="1")
    workers = pipeline.workers
    lease = ("--lease", "5")
    kills = 4
    try:
        worker = workers.start(concurrency=2, extra=lease)
        [document_id] = pipeline.upload([report("progress", sections=64)])
        [analysed] = pipeline.wait([document_id], until=lambda ds: ds[0].progress_total > 0)
        assert analysed.progress_total > 2 * kills + 1
        # When its worker is SIGKILLed more times than the job has tries, each time after the
        # document saved two more calls, and a new worker starts after each kill
        saved = 0
        for _ in range(kills):
            pipeline.wait([document_id], until=lambda ds, at_least=saved + 2: ds[0].progress_done >= at_least)
            workers.kill(worker)
            saved = pipeline.saved_count(document_id)
            worker = workers.start(concurrency=2, extra=lease)
        [document] = pipeline.wait([document_id])
    finally:
        workers.stop()

    # Then the document completed: no attempt that saved a call counted toward its tries
    assert document.status == "completed", (document.error_reason, workers.tail())
    assert workers.events("job.failed") == []
    # And every call is saved once; only the call in flight at each kill (one at a time
    # here) was paid for twice
    calls = pipeline.saved_calls(document_id)
    assert len(calls) == len(set(calls)) == document.progress_total
    assert emulator.stats["by_endpoint"][MESSAGES] - document.progress_total <= kills


def test_a_document_that_kills_its_worker_without_saving_anything_ends_failed(
    tmp_path: Path, emulator: AnthropicEmulator
) -> None:
    # Given calls so slow that no call of the document is ever saved before its worker dies
    emulator.reset(EmulatorConfig(api_key=API_KEY, latency_s=30))
    pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY="1")
    workers = pipeline.workers
    lease = ("--lease", "2")
    try:
        worker = workers.start(concurrency=2, extra=lease)
        [document_id] = pipeline.upload([report("stuck")])
        # When its worker is SIGKILLed in each of the job's 3 tries
        for _ in range(3):
            deadline = time.monotonic() + 30
            while not any(
                e.get("name") == "documents.process" for e in workers.events("job.started", worker)
            ):
                assert time.monotonic() < deadline, workers.tail()
                time.sleep(0.05)
            workers.kill(worker)
            worker = workers.start(concurrency=2, extra=lease)
        [document] = pipeline.wait([document_id])
    finally:
        workers.stop()

    # Then the job ended in the failed store and the document failed, saying where to look
    assert document.status == "failed"
    assert document.error_reason is not None and "docmill queue failed" in document.error_reason
    assert pipeline.saved_count(document_id) == 0
    assert [e["name"] for e in workers.events("job.failed")] == ["documents.process"]


# ---------------------------------------------------------------------- the API cannot be reached
def free_port() -> int:
    """A port nothing listens on (bound once, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def unreachable_reason(url: str, document: Document) -> str:
    since = document.llm_unreachable_since
    assert since is not None, (document.status, document.error_reason)
    return (
        f"The LLM provider at {url} could not be reached since {since:%Y-%m-%d %H:%M:%S} UTC; check the "
        f"network and the provider's base URL (ANTHROPIC_BASE_URL), then run `docmill documents retry "
        f"{document.id}`."
    )


def process_jobs(workers: PipelineWorkers, event: str) -> list[dict[str, Any]]:
    return [e for e in workers.events(event) if e.get("name") == "documents.process"]


def test_an_api_nothing_listens_for_fails_the_document_after_the_bound_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    # Given workers whose Claude API is at a port where nothing listens, with a bound of 2 s
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pipeline = start_pipeline(tmp_path, url, DOCMILL_LLM_UNREACHABLE_TIMEOUT_S="2")
    workers = pipeline.workers
    try:
        worker = workers.start(concurrency=2)
        pid = workers.processes[worker].pid

        # When a report is uploaded
        [document_id] = pipeline.upload([report("unreachable", sections=2)])
        [failed] = pipeline.wait([document_id])

        # Then it failed, saying where the API was looked for, since when, and what to do
        assert (failed.status, failed.error_reason) == ("failed", unreachable_reason(url, failed))
        assert failed.failed_at is not None and failed.llm_unreachable_since is not None
        assert failed.failed_at - failed.llm_unreachable_since >= timedelta(seconds=2)
        assert pipeline.saved_count(document_id) == 0 and failed.cost_usd == 0.0

        # And its job was put back without spending an attempt until then, and ended done
        done = wait_events(workers, [0], "job.done", "documents.process", 1)
        assert [e["attempt"] for e in done] == ["1/3"], workers.tail()
        assert process_jobs(workers, "job.released"), workers.tail()
        assert workers.events("job.failed") == [] and workers.events("job.retry") == []

        # And when the API answers on that port, the same worker processes the next report
        with AnthropicEmulator(EmulatorConfig(api_key=API_KEY), port=port):
            [next_id] = pipeline.upload([report("after-unreachable", sections=2)])
            [completed] = pipeline.wait([next_id])
        assert (completed.status, completed.llm_unreachable_since) == ("completed", None)
        assert workers.processes[worker].pid == pid and workers.processes[worker].poll() is None
        assert len(workers.events("worker.started")) == 1
    finally:
        codes = workers.stop()
    assert codes == [0], workers.tail()


def test_an_api_that_stops_mid_document_fails_it_after_the_bound_and_a_retry_resumes_it(
    tmp_path: Path,
) -> None:
    # Given an API that answers in 0.3 s, one call at a time, and a bound of 2 s
    emulator = AnthropicEmulator(EmulatorConfig(api_key=API_KEY, latency_s=0.3)).start()
    pipeline = start_pipeline(
        tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY="1", DOCMILL_LLM_UNREACHABLE_TIMEOUT_S="2"
    )
    workers = pipeline.workers
    try:
        workers.start(concurrency=2)
        [document_id] = pipeline.upload([report("stopped", sections=16)])

        # When the API stops once two of the document's calls are saved
        pipeline.wait([document_id], until=lambda ds: ds[0].progress_done >= 2)
        emulator.stop()

        # Then the document fails with the sentence, keeping the calls it paid for
        [failed] = pipeline.wait([document_id])
        assert (failed.status, failed.error_reason) == ("failed", unreachable_reason(emulator.url, failed))
        saved = pipeline.saved_count(document_id)
        assert 2 <= saved < failed.progress_total
        paid_before = emulator.stats["by_endpoint"][MESSAGES]

        # And when the API is back and the document is retried, it completes on a fresh clock,
        # paying only for the calls not yet saved
        emulator.start()
        pipeline.run(lambda context: context.service.retry(document_id))
        [done] = pipeline.wait([document_id])
        assert (done.status, done.llm_unreachable_since) == ("completed", None), done.error_reason
        assert emulator.stats["by_endpoint"][MESSAGES] - paid_before == done.progress_total - saved
        calls = pipeline.saved_calls(document_id)
        assert len(calls) == len(set(calls)) == done.progress_total

        # And no attempt was spent on the outage: both processing jobs ended done on their first
        done_jobs = wait_events(workers, [0], "job.done", "documents.process", 2)
        assert [e["attempt"] for e in done_jobs] == ["1/3", "1/3"], workers.tail()
        assert workers.events("job.failed") == [] and workers.events("job.retry") == []
    finally:
        codes = workers.stop()
        emulator.stop()
    assert codes == [0], workers.tail()


def test_an_api_back_before_the_bound_lets_the_document_complete(tmp_path: Path) -> None:
    # Given an API that answers in 0.3 s, one call at a time, and the default bound of 30 minutes
    emulator = AnthropicEmulator(EmulatorConfig(api_key=API_KEY, latency_s=0.3)).start()
    pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY="1")
    workers = pipeline.workers
    try:
        workers.start(concurrency=2)
        [document_id] = pipeline.upload([report("back", sections=16)])

        # When the API stops mid-document, and the worker finds it gone
        pipeline.wait([document_id], until=lambda ds: ds[0].progress_done >= 2)
        emulator.stop()
        [waiting] = pipeline.wait([document_id], until=lambda ds: ds[0].llm_unreachable_since is not None)
        assert waiting.status == "processing"

        # and comes back on the same port
        emulator.start()
        [done] = pipeline.wait([document_id])
    finally:
        codes = workers.stop()
        emulator.stop()

    # Then the document completed on its first attempt, its clock stopped, no chunk paid twice
    assert (done.status, done.llm_unreachable_since) == ("completed", None), done.error_reason
    calls = pipeline.saved_calls(document_id)
    assert len(calls) == len(set(calls)) == done.progress_total
    released = process_jobs(workers, "job.released")
    assert released and all(e["attempt"] == "1/3" for e in released), workers.tail()
    assert [e["attempt"] for e in process_jobs(workers, "job.done")] == ["1/3"], workers.tail()
    assert codes == [0], workers.tail()
