"""The pipeline's handlers in a real worker: every example document from upload to its end.

The worker runs in-process on the memory or the SQLite queue backend; the model is the
offline extractive processor, or Claude through the real ``anthropic`` SDK against the
Messages API emulator. The broken example ends failed with its reason, and the job that
found it out completes: a bad file never fails the worker or its job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from docmill.documents import jobs
from docmill.documents.analyzing import analyze_document
from docmill.documents.context import DocumentContext
from docmill.documents.dispatch import WEBHOOK
from docmill.documents.models import ChunkResult, Document, DocumentEvent
from docmill.documents.processing import OFFLINE_PROCESSOR, process_document
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import TERMINAL, Status
from docmill.documents.webhook import SIGNATURE_HEADER, sign
from docmill.llm.ratelimit import RateLimits
from docmill.llm.settings import LLMSettings
from docmill.llm.types import LLMRequest, LLMResponse, Provider
from docmill.queue import Backend, Job, JobState, WorkerOptions, backend_from_url
from docmill.queue.events import CapturedEventLog
from docmill.queue.worker import Worker
from docmill.testing import AnthropicEmulator, EmulatorConfig, FaultKind

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "documents").iterdir())
BROKEN = "broken-truncated.pdf"
BROKEN_REASON = "The PDF is incomplete (the file ends too early); upload the complete file."
API_KEY = f"sk-emulator-{secrets.token_hex(8)}"
MODEL = "claude-haiku-4-5"
QUEUES = ("document-analysis", "document-processing", "default")
GENEROUS = RateLimits(
    requests_per_min=10_000, input_tokens_per_min=10_000_000, output_tokens_per_min=10_000_000
)
WEBHOOK_SECRET = "whsec-test-secret"
MESSAGES = "POST /v1/messages"  # how the emulator counts Messages API calls


@pytest.fixture(scope="module")
def emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=API_KEY)) as running:
        yield running


@pytest.fixture(params=["memory", "sqlite"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'queue.db'}"


@pytest.fixture(params=["extractive", "anthropic"])
def llm(request: pytest.FixtureRequest) -> LLMSettings:
    if request.param == "extractive":
        return LLMSettings(provider="extractive")
    emulator: AnthropicEmulator = request.getfixturevalue("emulator")
    emulator.reset(EmulatorConfig(api_key=API_KEY))
    return LLMSettings(
        provider="anthropic",
        anthropic_api_key=API_KEY,
        anthropic_base_url=emulator.url,
        default_model=MODEL,
        default_limits=GENEROUS,
    )


class Receiver:
    """A webhook receiver behind httpx's mock transport: keeps requests, answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status = 200

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def context(
    tmp_path: Path, queue_url: str, llm: LLMSettings, receiver: Receiver
) -> AsyncIterator[DocumentContext]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=queue_url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_tries=2,
        webhook_backoff_s=(0,),
        llm=llm,
    )
    backend = backend_from_url(queue_url)
    await backend.connect()
    opened = await DocumentContext.create(settings, backend=backend)
    opened.webhook_transport = httpx.MockTransport(receiver.handle)
    yield opened
    await opened.aclose()
    await backend.close()


async def work_until(
    context: DocumentContext, done: Callable[[], Awaitable[bool]], *, timeout_s: float = 90.0
) -> CapturedEventLog:
    """Run a worker on the pipeline's queues until ``done()`` and the queues are drained."""
    # A memory queue lives in this process only: the worker must share it (closing it at
    # the worker's stop only wakes waiters). An SQLite one gets its own connection, as a
    # worker process would.
    shared = context.backend.url.startswith("memory")
    backend = context.backend if shared else backend_from_url(context.backend.url)
    if not shared:
        await backend.connect()
    log = CapturedEventLog(level="info")
    worker = Worker(
        backend,
        jobs.registry,
        WorkerOptions(queues=QUEUES, concurrency=4, sleep_s=0.05, tries=3, stop_grace_s=5, memory_mb=0),
        log=log,
    )
    # The handlers use the test's context (its emulator provider and webhook transport).
    worker.context.state[jobs.DOCUMENTS] = context
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not (await done() and await drained(context.backend)):
                if task.done():
                    raise AssertionError(f"the worker stopped early: {task.result()}")
                await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)
    return log


async def drained(backend: Backend) -> bool:
    for queue in QUEUES:
        stats = await backend.stats(queue)
        if stats.pending or stats.delayed or stats.reserved:
            return False
    return True


def all_settled(context: DocumentContext, ids: list[int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        for document_id in ids:
            document = await context.service.get(document_id)
            if Status(document.status) not in TERMINAL | {Status.AWAITING_APPROVAL}:
                return False
        return True

    return check


async def statuses(context: DocumentContext, document_id: int) -> list[str]:
    return [event.to_status for event in await context.service.events(document_id)]


# ---------------------------------------------------------------------- every example
async def test_every_example_goes_through_the_pipeline(context: DocumentContext, llm: LLMSettings) -> None:
    service = context.service
    uploaded = {path.name: await service.upload(path.read_bytes(), path.name) for path in EXAMPLES}

    log = await work_until(context, all_settled(context, [d.id for d in uploaded.values()]))

    for name, upload in uploaded.items():
        document = await service.get(upload.id)
        if name == BROKEN:
            assert (document.status, document.error_reason) == ("failed", BROKEN_REASON)
            assert await statuses(context, document.id) == ["uploaded", "analyzing", "failed"]
            continue
        assert document.status == "completed", (name, document.error_reason)
        assert await statuses(context, document.id) == [
            "uploaded",
            "analyzing",
            "analyzed",
            "queued",
            "processing",
            "completed",
        ]
        result, markdown = await service.result(document.id)
        assert result["profile"] == "summary" and result["summary"] and result["title"]
        assert markdown.lstrip().startswith(("#", ">"))
        assert (
            document.estimate is not None and document.estimate["calls"]["total"] == document.progress_total
        )
        assert document.progress_done == document.progress_total >= 1
        if llm.provider == "extractive":
            assert result["processor"] == OFFLINE_PROCESSOR and document.cost_usd == 0.0
        else:
            assert result["processor"].startswith("anthropic (") and document.cost_usd > 0
            assert document.cost_usd == pytest.approx(result["usage"]["cost_usd"])
            assert document.estimate["token_source"] == "provider"
    # The bad file failed the document, never the job: no job failed and none was retried
    assert log.events("job.failed") == [] and log.events("job.retry") == []
    russian = await service.get(uploaded["procurement-report-ru.txt"].id)
    assert russian.analysis is not None and russian.analysis["language"]["code"] == "ru"


# ---------------------------------------------------------------------- the model's answers
@pytest.mark.parametrize("llm", ["anthropic"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_rate_limited_call_releases_the_job_without_spending_an_attempt(
    context: DocumentContext, emulator: AnthropicEmulator
) -> None:
    emulator.inject(FaultKind.RATE_LIMIT, count=2)
    document = await context.service.upload((EXAMPLES[1]).read_bytes(), EXAMPLES[1].name)

    log = await work_until(context, all_settled(context, [document.id]))

    assert (await context.service.get(document.id)).status == "completed"
    released = log.events("job.released")
    assert released and all(event["name"] == "documents.process" for event in released)
    done = [e for e in log.events("job.done") if e["name"] == "documents.process"]
    # released twice, still its first attempt (on a mismatch, show how the attempts were spent)
    assert [e["attempt"] for e in done] == ["1/3"], [
        e for e in log.records if e["event"].startswith(("job.", "worker.")) and e["event"] != "job.started"
    ]


@pytest.mark.parametrize("llm", ["anthropic"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_retired_model_fails_the_document_at_once_and_the_job_completes(
    context: DocumentContext,
) -> None:
    path = EXAMPLES[1]
    document = await context.service.upload(
        path.read_bytes(), path.name, {"model": "claude-3-5-sonnet-20241022"}
    )

    log = await work_until(context, all_settled(context, [document.id]))

    failed = await context.service.get(document.id)
    assert failed.status == "failed"
    assert failed.error_reason is not None and "retired" in failed.error_reason
    assert log.events("job.failed") == [] and log.events("job.retry") == []


@pytest.mark.parametrize("llm", ["anthropic"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_call_larger_than_the_input_limit_fails_the_document_with_the_reason(
    context: DocumentContext, emulator: AnthropicEmulator
) -> None:
    # Given an account allowed 200 input tokens a minute, fewer than one call of the document needs
    emulator.set_limits(itpm=200)
    path = EXAMPLES[1]
    first = await context.service.upload(path.read_bytes(), path.name)

    # When it is processed, the API refuses its first call (429, retry in 60 s) and its
    # headers tell the limit; a second such document is processed once the limit is known
    log = await work_until(context, all_settled(context, [first.id]))
    calls_for_the_first = emulator.stats["by_endpoint"][MESSAGES]
    second = await context.service.upload(path.read_bytes() + b"\n\nOne more line.", "again-" + path.name)
    await work_until(context, all_settled(context, [second.id]))

    # Then each fails at once with the reason, its job completing; the second made no call
    for document_id in (first.id, second.id):
        failed = await context.service.get(document_id)
        assert failed.status == "failed"
        assert failed.error_reason is not None
        assert "input tokens; the limit is 200 per minute" in failed.error_reason, failed.error_reason
    assert calls_for_the_first == 1
    assert emulator.stats["by_endpoint"][MESSAGES] == 1
    assert log.events("job.failed") == [] and log.events("job.released") == []


@pytest.mark.parametrize("llm", ["anthropic"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_an_estimate_over_the_budget_waits_for_approval(context: DocumentContext) -> None:
    context.settings = DocumentSettings(**{**context.settings.__dict__, "auto_approve_max_usd": 0.0})
    path = EXAMPLES[1]
    document = await context.service.upload(path.read_bytes(), path.name)

    await work_until(context, all_settled(context, [document.id]))
    waiting = await context.service.get(document.id)
    assert waiting.status == "awaiting_approval" and waiting.cost_usd == 0.0
    assert waiting.estimate is not None and waiting.estimate["cost_usd"] > 0

    await context.service.approve(document.id)
    await work_until(context, all_settled(context, [document.id]))
    assert (await context.service.get(document.id)).status == "completed"


# ---------------------------------------------------------------------- webhooks
@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
@pytest.mark.parametrize("queue_url", ["sqlite"], indirect=True)
async def test_a_completed_document_is_announced_with_a_signed_webhook(
    context: DocumentContext, receiver: Receiver
) -> None:
    path = EXAMPLES[1]
    document = await context.service.upload(
        path.read_bytes(), path.name, {"callback_url": "https://hooks.test/in"}
    )

    await work_until(context, all_settled(context, [document.id]))

    (request,) = receiver.requests
    assert str(request.url) == "https://hooks.test/in"
    assert request.headers[SIGNATURE_HEADER] == sign(request.content, WEBHOOK_SECRET)
    body = json.loads(request.content)
    assert body["event"] == "document.completed" and body["document"]["id"] == document.id
    assert body["result"]["processor"] == OFFLINE_PROCESSOR


@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_receiver_that_keeps_failing_leaves_the_webhook_in_the_failed_jobs(
    context: DocumentContext, receiver: Receiver
) -> None:
    receiver.status = 503
    broken = next(p for p in EXAMPLES if p.name == BROKEN)
    document = await context.service.upload(
        broken.read_bytes(), broken.name, {"callback_url": "https://h.test/x"}
    )

    log = await work_until(context, all_settled(context, [document.id]))

    assert len(receiver.requests) == 2  # webhook_tries
    assert json.loads(receiver.requests[0].content)["document"]["error_reason"] == BROKEN_REASON
    (failed,) = log.events("job.failed")
    assert failed["name"] == "documents.webhook" and "answered 503" in failed["error"]
    (job,) = [
        j
        for j in await context.backend.find_by_tag(f"document:{document.id}")
        if j.name == "documents.webhook"
    ]
    assert job.state is JobState.FAILED


class HttpServer:
    """A real HTTP server on loopback that answers 200 and counts who connected."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def webhook_job(context: DocumentContext, document_id: int) -> Job:
    (job,) = [j for j in await context.backend.find_by_tag(f"document:{document_id}") if j.name == WEBHOOK]
    return job


@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_callback_url_on_loopback_is_refused_and_failed_at_once(context: DocumentContext) -> None:
    # Given the real network (no in-process transport) and a receiver on 127.0.0.1
    context.webhook_transport = None
    path = EXAMPLES[1]
    server = HttpServer()
    async with server as url:
        document = await context.service.upload(path.read_bytes(), path.name, {"callback_url": url})
        log = await work_until(context, all_settled(context, [document.id]))
    # Then nothing reached it, and the webhook failed for good on its first attempt
    assert server.connections == 0
    (failed,) = log.events("job.failed")
    assert (
        failed["name"] == WEBHOOK and "WebhookRefused" in failed["error"] and "127.0.0.1" in failed["error"]
    )
    job = await webhook_job(context, document.id)
    assert job.state is JobState.FAILED and job.attempts == 1  # webhook_tries is 2: not retried
    assert (await context.service.get(document.id)).status == "completed"  # the document is unharmed


@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_private_callbacks_are_sent_where_the_setting_allows_them(
    context: DocumentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    context.webhook_transport = None
    monkeypatch.setattr(
        context, "settings", dataclasses.replace(context.settings, webhook_allow_private=True)
    )
    path = EXAMPLES[1]
    server = HttpServer()
    async with server as url:
        document = await context.service.upload(path.read_bytes(), path.name, {"callback_url": url})
        await work_until(context, all_settled(context, [document.id]))
    assert server.connections == 1
    assert (await webhook_job(context, document.id)).state is JobState.COMPLETED


# ---------------------------------------------------------------------- cancelling
@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_document_cancelled_before_its_analysis_is_left_alone(context: DocumentContext) -> None:
    path = EXAMPLES[1]
    document = await context.service.upload(path.read_bytes(), path.name)
    await context.service.cancel(document.id)

    await work_until(context, all_settled(context, [document.id]))

    assert await statuses(context, document.id) == ["uploaded", "cancelled"]
    events = await context.db.run(lambda s: s.query(DocumentEvent).count())
    assert events == 2
    assert await context.db.run(lambda s: s.get(Document, document.id).analysis) is None  # type: ignore[union-attr]


# ---------------------------------------------------------------------- crash and resume
class CrashingProvider:
    """Passes calls through to a real provider, and dies like a killed worker on call ``crash_on``."""

    def __init__(self, inner: Provider, crash_on: int) -> None:
        self.inner, self.crash_on, self.calls = inner, crash_on, 0
        self.name, self.is_offline = inner.name, inner.is_offline

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if self.calls == self.crash_on:
            raise RuntimeError("the worker died")
        return await self.inner.complete(request)

    async def count_tokens(self, request: LLMRequest) -> int:
        return await self.inner.count_tokens(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("llm", ["anthropic"], indirect=True)
@pytest.mark.parametrize("queue_url", ["memory"], indirect=True)
async def test_a_retry_after_a_crash_mid_document_pays_for_no_chunk_twice(
    context: DocumentContext, emulator: AnthropicEmulator
) -> None:
    # Given a long document analysed into several chunks and queued
    sections = [
        f"## Part {i}\n\n" + f"Harbour {i} moved {i * 7} containers this week. " * 180 for i in range(12)
    ]
    document = await context.service.upload(("# Long report\n\n" + "\n\n".join(sections)).encode(), "long.md")
    await analyze_document(context, document.id)
    queued = await context.service.get(document.id)
    assert queued.status == "queued" and queued.progress_total >= 4
    messages_before = emulator.stats["by_endpoint"].get(MESSAGES, 0)

    # When the first attempt dies on its third call
    real = await context.provider()
    context._provider = CrashingProvider(real, crash_on=3)
    context.settings = DocumentSettings(**{**context.settings.__dict__, "chunk_concurrency": 1})
    with pytest.raises(RuntimeError, match="the worker died"):
        await process_document(context, document.id)
    saved_after_crash = (await context.service.get(document.id)).progress_done

    # and the retry runs with the provider working again
    context._provider = real
    await process_document(context, document.id)

    # Then the calls paid for are exactly the plan, each saved once
    done = await context.service.get(document.id)
    assert done.status == "completed" and saved_after_crash == 2
    paid = emulator.stats["by_endpoint"][MESSAGES] - messages_before
    assert paid == done.progress_total == done.progress_done
    rows = await context.db.run(
        lambda s: s.query(ChunkResult.phase, ChunkResult.index).filter_by(document_id=document.id).all()
    )
    assert len(rows) == len(set(rows)) == done.progress_total
    assert done.cost_usd == pytest.approx(
        sum(
            r
            for (r,) in await context.db.run(
                lambda s: s.query(ChunkResult.cost_usd).filter_by(document_id=document.id).all()
            )
        )
    )


@pytest.mark.parametrize("llm", ["extractive"], indirect=True)
async def test_a_processing_job_that_fails_for_good_fails_its_document_with_a_reason(
    context: DocumentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given processing that hits an unexpected error on every attempt (a bug, say)
    async def broken(ctx: DocumentContext, document_id: int, **_: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(jobs, "process_document", broken)
    # one try, so the test does not wait out the processing job's backoff
    monkeypatch.setattr(context, "settings", dataclasses.replace(context.settings, processing_tries=1))
    path = EXAMPLES[1]
    document = await context.service.upload(path.read_bytes(), path.name, {})

    # When the job has spent its tries
    log = await work_until(context, all_settled(context, [document.id]))

    # Then the document does not stay "processing": it failed, saying what to do next
    [failed_job] = log.events("job.failed")
    failed = await context.service.get(document.id)
    assert failed.status == "failed"
    assert failed.error_reason == (
        "The processing stopped after an internal error (RuntimeError); retry the document, "
        f"or see `docmill queue failed {failed_job['id']}`."
    )
