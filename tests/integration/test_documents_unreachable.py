"""An LLM provider that cannot be reached: how long a document waits for it, on a real database.

``process_document`` runs in-process against an SQLite documents database with a provider
whose state the test switches (down: no connection; up: answers; 429: rate limited) and a
wall clock the test moves, so the bound of ``llm.unreachable_timeout_s`` is crossed without
waiting for it. The clock is the document's ``llm_unreachable_since`` column: each step
reads it back from the database, as the next worker (on any host) would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docmill.documents.analyzing import analyze_document
from docmill.documents.context import DocumentContext
from docmill.documents.models import ChunkResult, Document
from docmill.documents.processing import process_document
from docmill.documents.settings import DocumentSettings
from docmill.llm.errors import ProviderUnreachable, RateLimited
from docmill.llm.settings import LLMSettings
from docmill.llm.types import LLMRequest, LLMResponse, Usage
from docmill.queue import Backend, Release, backend_from_url

T0 = datetime(2026, 12, 8, 9, 30, 0, tzinfo=UTC)
BOUND_S = 1800.0
BASE_URL = "https://relay:***@llm.internal:8443"
LONG_REPORT = (
    "# Long report\n\n"
    + "\n\n".join(
        f"## Part {i}\n\n" + f"Harbour {i} moved {i * 7} containers this week. " * 180 for i in range(12)
    )
).encode()


def reason_since(since: datetime, document_id: int) -> str:
    return (
        f"The LLM provider at {BASE_URL} could not be reached since {since:%Y-%m-%d %H:%M:%S} UTC; "
        "check the network and the provider's base URL (ANTHROPIC_BASE_URL), then run "
        f"`docmill documents retry {document_id}`."
    )


class SwitchableProvider:
    """Claude as a test switches it: ``down`` (no connection), ``up``, or ``429``.

    ``answers_left`` (when set) is how many calls ``up`` answers before it goes down.
    """

    name = "anthropic"
    is_offline = False

    def __init__(self, state: str = "down") -> None:
        self.state = state
        self.answers_left: int | None = None
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if self.state == "up" and self.answers_left is not None:
            if self.answers_left == 0:
                self.state = "down"
            self.answers_left -= 1
        if self.state == "down":
            raise ProviderUnreachable(
                "cannot reach the Claude API: Connection to llm.internal:8443 failed: [Errno 111] refused",
                base_url=BASE_URL,
                base_url_setting="ANTHROPIC_BASE_URL",
                retry_after_s=10,
            )
        if self.state == "429":
            raise RateLimited(retry_after_s=7)
        text = json.dumps({"title": "T", "summary": f"answer {self.calls}", "language": "en"})
        return LLMResponse(
            text, Usage(100, 20), "claude-haiku-4-5-20251001", self.name, f"req_{self.calls}", 0.001
        )

    async def count_tokens(self, request: LLMRequest) -> int:
        return 100

    async def aclose(self) -> None:
        return None


class Wall:
    """The wall clock of the workers, moved by the test."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def move_to(self, seconds_after_t0: float) -> None:
        self.at = T0 + timedelta(seconds=seconds_after_t0)


@pytest.fixture
def settings(tmp_path: Path) -> DocumentSettings:
    return DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url="memory://",
        chunk_concurrency=1,
        llm=LLMSettings(
            provider="anthropic",
            anthropic_api_key="sk-ant-test-0000000000000000",
            anthropic_base_url="https://relay:hunter2@llm.internal:8443",
            unreachable_timeout_s=BOUND_S,
        ),
    )


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    opened = backend_from_url("memory://")
    await opened.connect()
    yield opened
    await opened.close()


@pytest.fixture
def provider() -> SwitchableProvider:
    return SwitchableProvider()


@pytest.fixture
async def context(
    settings: DocumentSettings, backend: Backend, provider: SwitchableProvider
) -> AsyncIterator[DocumentContext]:
    opened = await DocumentContext.create(settings, backend=backend, provider=provider)
    yield opened
    await opened.aclose()


@pytest.fixture
async def document_id(context: DocumentContext, provider: SwitchableProvider) -> int:
    """A long document, analysed and queued for processing (the provider counted its tokens)."""
    document = await context.service.upload(LONG_REPORT, "long.md")
    await analyze_document(context, document.id)
    queued = await context.service.get(document.id)
    assert queued.status == "queued" and queued.progress_total >= 4, queued.error_reason
    return document.id


async def run_released(context: DocumentContext, document_id: int, wall: Wall) -> float:
    """One run of the processing job that puts itself back; the delay it asked for."""
    with pytest.raises(Release) as released:
        await process_document(context, document_id, now=wall)
    return released.value.delay_s


async def read(context: DocumentContext, document_id: int) -> Document:
    return await context.service.get(document_id)


async def saved_calls(context: DocumentContext, document_id: int) -> int:
    rows = await context.db.run(lambda s: s.query(ChunkResult.id).filter_by(document_id=document_id).all())
    return len(rows)


async def test_an_unreachable_provider_is_waited_for_until_the_bound_then_the_document_fails(
    context: DocumentContext, document_id: int
) -> None:
    wall = Wall()

    # Given a provider that cannot be reached: the job is put back for what it asked (10 s)
    assert await run_released(context, document_id, wall) == 10.0
    document = await read(context, document_id)
    assert (document.status, document.llm_unreachable_since) == ("processing", T0)

    # When it stays unreachable, the clock keeps its start; the last wait ends at the bound
    wall.move_to(600)
    assert await run_released(context, document_id, wall) == 10.0
    wall.move_to(1795)
    assert await run_released(context, document_id, wall) == 5.0
    assert (await read(context, document_id)).llm_unreachable_since == T0

    # Then at the bound the document fails, saying where, since when and what to do; the job ends
    wall.move_to(1800)
    await process_document(context, document_id, now=wall)
    failed = await read(context, document_id)
    assert (failed.status, failed.error_reason) == ("failed", reason_since(T0, document_id))
    assert "hunter2" not in (failed.error_reason or "")
    assert await saved_calls(context, document_id) == 0


async def test_the_clock_survives_a_worker_restart_on_another_host(
    context: DocumentContext, settings: DocumentSettings, backend: Backend, document_id: int
) -> None:
    # Given a worker that found the provider unreachable, then went away
    wall = Wall()
    await run_released(context, document_id, wall)
    await context.aclose()

    # When another worker, with a context and provider of its own, takes the job up past the bound
    wall.move_to(1900)
    other = await DocumentContext.create(settings, backend=backend, provider=SwitchableProvider("down"))
    try:
        await process_document(other, document_id, now=wall)
        failed = await read(other, document_id)
    finally:
        await other.aclose()

    # Then it counts from the first worker's start, not its own
    assert (failed.status, failed.error_reason) == ("failed", reason_since(T0, document_id))


async def test_a_provider_back_after_an_outage_longer_than_the_bound_completes_the_document(
    context: DocumentContext, provider: SwitchableProvider, document_id: int
) -> None:
    # Given a provider unreachable since T0
    wall = Wall()
    await run_released(context, document_id, wall)

    # When it answers again an hour later (past the bound, but no run saw it down meanwhile)
    provider.state = "up"
    wall.move_to(3600)
    await process_document(context, document_id, now=wall)

    # Then the document completed and the clock is stopped
    done = await read(context, document_id)
    assert (done.status, done.llm_unreachable_since) == ("completed", None)
    assert await saved_calls(context, document_id) == done.progress_total


async def test_one_answer_restarts_the_clock_when_the_provider_goes_down_again(
    context: DocumentContext, provider: SwitchableProvider, document_id: int
) -> None:
    # Given a provider unreachable since T0
    wall = Wall()
    await run_released(context, document_id, wall)

    # When, near the bound, it answers one call and is gone again for the next
    wall.move_to(1790)
    provider.state, provider.answers_left = "up", 1
    assert await run_released(context, document_id, wall) == 10.0

    # Then the answer was saved and the clock starts again from the call that found no provider
    restarted = T0 + timedelta(seconds=1790)
    assert (await read(context, document_id)).llm_unreachable_since == restarted
    assert await saved_calls(context, document_id) == 1
    wall.move_to(1900)
    assert await run_released(context, document_id, wall) == 10.0
    document = await read(context, document_id)
    assert (document.status, document.llm_unreachable_since) == ("processing", restarted)


async def test_rate_limits_never_count_toward_the_bound(
    context: DocumentContext, provider: SwitchableProvider, document_id: int
) -> None:
    # Given an API that rate-limits every call for three hours: released for what it asked
    wall = Wall()
    provider.state = "429"
    for seconds in (0, 1800, 3600, 10_800):
        wall.move_to(seconds)
        assert await run_released(context, document_id, wall) == 7.0
        document = await read(context, document_id)
        assert (document.status, document.llm_unreachable_since) == ("processing", None)

    # And a 429 in an outage is an answer from an API that is up: it stops the running clock
    provider.state = "down"
    await run_released(context, document_id, wall)
    assert (await read(context, document_id)).llm_unreachable_since == T0 + timedelta(seconds=10_800)
    provider.state = "429"
    wall.move_to(10_800 + 1799)
    assert await run_released(context, document_id, wall) == 7.0
    provider.state = "down"
    wall.move_to(10_800 + 1801)
    assert await run_released(context, document_id, wall) == 10.0
    document = await read(context, document_id)
    assert (document.status, document.llm_unreachable_since) == (
        "processing",
        T0 + timedelta(seconds=10_800 + 1801),
    )


async def test_a_retried_document_starts_a_fresh_clock(context: DocumentContext, document_id: int) -> None:
    # Given a document failed after its provider was unreachable past the bound
    wall = Wall()
    await run_released(context, document_id, wall)
    wall.move_to(1800)
    await process_document(context, document_id, now=wall)
    assert (await read(context, document_id)).status == "failed"

    # When it is retried and the provider is still unreachable
    retried = await context.service.retry(document_id)
    assert retried.status == "queued"
    wall.move_to(5000)

    # Then it is waited for again, on a clock that starts now
    assert await run_released(context, document_id, wall) == 10.0
    document = await read(context, document_id)
    assert (document.status, document.llm_unreachable_since) == ("processing", T0 + timedelta(seconds=5000))
