"""Documents sent by Message Batches, through the real ``anthropic`` SDK and Claude's emulator.

The pipeline's handlers run in an in-process worker on an SQLite queue (the crash test
runs ``docmill queue work`` processes and SIGKILLs one); the emulator answers batches
after ``batch_processing_s`` and counts every request it answered, in batches and
directly, so each test can check that no call was paid for twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_end_to_end import MESSAGES
from test_pipeline_faults import API_KEY, ENDED, Pipeline, report, start_pipeline
from test_pipeline_handlers import GENEROUS, MODEL, all_settled, work_until

from docmill.documents import batching
from docmill.documents.context import DocumentContext
from docmill.documents.models import ChunkResult, Document
from docmill.documents.settings import DocumentSettings
from docmill.llm.pricing import PriceTable
from docmill.llm.settings import LLMSettings
from docmill.llm.types import Usage
from docmill.testing import AnthropicEmulator, EmulatorConfig

BATCHES = "POST /v1/messages/batches"
CANCEL = "POST /v1/messages/batches/{id}/cancel"


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=API_KEY)) as running:
        yield running


@contextlib.asynccontextmanager
async def documents(
    root: Path, emulator: AnthropicEmulator, **settings: Any
) -> AsyncIterator[DocumentContext]:
    """A documents context on SQLite whose calls go to the emulator; batches looked at often."""
    llm = LLMSettings(
        provider="anthropic",
        anthropic_api_key=API_KEY,
        anthropic_base_url=emulator.url,
        default_model=MODEL,
        default_limits=GENEROUS,
    )
    values: dict[str, Any] = {"batch_poll_s": 0.05, **settings}
    context = await DocumentContext.create(
        DocumentSettings(
            storage_dir=root / "storage",
            database_url=f"sqlite:///{root / 'storage' / 'docmill.db'}",
            queue_url=f"sqlite:///{root / 'queue.db'}",
            llm=llm,
            **values,
        )
    )
    try:
        yield context
    finally:
        await context.aclose()


async def process(
    context: DocumentContext, *uploads: tuple[tuple[str, bytes], dict[str, Any]]
) -> list[Document]:
    """Upload, run the pipeline until every document ended, and return them."""
    ids = []
    for (name, data), options in uploads:
        ids.append((await context.service.upload(data, name, options, force=True)).id)
    await work_until(context, all_settled(context, ids), timeout_s=60)
    return [await context.service.get(i) for i in ids]


async def saved_rows(context: DocumentContext, document_id: int) -> list[ChunkResult]:
    return await context.db.run(
        lambda s: list(s.scalars(select(ChunkResult).where(ChunkResult.document_id == document_id)))
    )


def direct_calls(emulator: AnthropicEmulator) -> int:
    return emulator.stats["by_endpoint"].get(MESSAGES, 0)


# ---------------------------------------------------------------------- the batch path
async def test_a_batch_document_is_answered_by_batches_at_half_the_price(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=0.2))
    async with documents(tmp_path, emulator) as context:
        # When a two-chunk report is uploaded with batch, and the same bytes without
        [batched, direct] = await process(context, (report(1), {"batch": True}), (report(1), {}))
        rows = await saved_rows(context, batched.id)

    # Then both completed; the batched one by two batches (its maps, then the final reduce)
    # and not one direct call, each request answered once
    assert (batched.status, direct.status) == ("completed", "completed"), batched.error_reason
    stats = emulator.stats
    assert batched.progress_total == 3
    assert stats["batches"] == 2 and stats["by_endpoint"][BATCHES] == 2
    assert stats["batch_requests"] == stats["batch_succeeded"] == batched.progress_total
    assert direct_calls(emulator) == direct.progress_total
    shown = batched.to_dict()["batch"]
    assert shown["batch_id"] is None and shown["fallback"] is None and shown["started_at"]
    assert direct.to_dict()["batch"] is None

    # And every saved answer was priced at half the list price, as the estimate said
    prices = PriceTable()
    for row in rows:
        usage = Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens)
        assert row.cost_usd == pytest.approx(prices.cost_usd(row.model, usage) / 2)
    assert batched.estimate is not None and direct.estimate is not None
    assert (batched.estimate["batch"], direct.estimate["batch"]) == (True, False)
    assert batched.estimate["cost_usd"] == pytest.approx(direct.estimate["cost_usd"] / 2, abs=2e-6)


async def test_a_profile_named_in_the_batch_setting_goes_by_batch_unless_the_upload_says_not(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=0.1))
    async with documents(tmp_path, emulator, batch_profiles=frozenset({"summary"})) as context:
        [by_default, opted_out] = await process(context, (report(2), {}), (report(3), {"batch": False}))

    assert (by_default.status, opted_out.status) == ("completed", "completed")
    assert emulator.stats["batch_succeeded"] == by_default.progress_total
    assert direct_calls(emulator) == opted_out.progress_total


# ---------------------------------------------------------------------- falling back
async def test_requests_a_batch_errored_are_made_directly_and_nothing_is_paid_twice(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=0.1))
    emulator.inject("500")  # the first request answered (in the first batch) errors
    async with documents(tmp_path, emulator) as context:
        [document] = await process(context, (report(4), {"batch": True}))

    assert document.status == "completed", document.error_reason
    stats = emulator.stats
    assert stats["batches"] == 1 and stats["batch_requests"] == 2 and stats["batch_succeeded"] == 1
    # the errored map and the reduce went direct: every call was answered exactly once
    assert direct_calls(emulator) == 2
    assert stats["batch_succeeded"] + direct_calls(emulator) == document.progress_total
    reason = document.batch_fallback or ""
    assert reason.startswith("1 request(s) of batch msgbatch_") and reason.endswith(
        " ended errored (first error: The Claude API failed with HTTP 500: Internal server error), "
        "so the remaining calls are made directly"
    )


async def test_a_batch_that_expires_falls_back_to_direct_calls(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=3600, batch_expiry_s=0.3))
    async with documents(tmp_path, emulator) as context:
        [document] = await process(context, (report(5), {"batch": True}))

    assert document.status == "completed", document.error_reason
    assert emulator.stats["batch_succeeded"] == 0
    assert direct_calls(emulator) == document.progress_total
    assert document.batch_fallback is not None and "ended expired" in document.batch_fallback


async def test_past_the_deadline_the_running_batch_is_cancelled_and_the_calls_go_direct(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=3600))
    async with documents(tmp_path, emulator, batch_deadline_s=0.5) as context:
        [document] = await process(context, (report(6), {"batch": True}))

    assert document.status == "completed", document.error_reason
    stats = emulator.stats
    assert stats["by_endpoint"][CANCEL] == 1 and stats["batch_succeeded"] == 0
    assert direct_calls(emulator) == document.progress_total
    assert document.batch_fallback is not None and "DOCUMENT_BATCH_DEADLINE_S" in document.batch_fallback


async def test_a_batch_whose_id_was_never_kept_is_found_and_polled_not_sent_again(
    tmp_path: Path, shared_emulator: AnthropicEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run that dies between the API creating its first batch and the database keeping its id
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=0.3))
    keep = batching._keep
    lost: list[str] = []

    def keep_but_die_once(session: Any, document_id: int, **values: Any) -> None:
        batch_id = values.get("batch_id") or ""
        if batch_id.startswith("msgbatch_") and not lost:
            lost.append(batch_id)
            raise RuntimeError("the worker died here")
        keep(session, document_id, **values)

    monkeypatch.setattr(batching, "_keep", keep_but_die_once)
    async with documents(tmp_path, emulator) as context:
        # When the document is processed
        [document] = await process(context, (report(10), {"batch": True}))

    # Then the next attempt found that batch and polled it: two batches in all, no request
    # sent twice, nothing direct
    assert document.status == "completed", document.error_reason
    stats = emulator.stats
    assert len(lost) == 1 and stats["batches"] == 2
    assert stats["batch_requests"] == stats["batch_succeeded"] == document.progress_total
    assert direct_calls(emulator) == 0


# ---------------------------------------------------------------------- a worker dies
def test_a_worker_killed_while_its_batch_runs_leaves_the_next_polling_the_same_batch(
    tmp_path: Path, shared_emulator: AnthropicEmulator
) -> None:
    # Given a worker process and batches that take 3 s
    emulator = shared_emulator
    emulator.reset(EmulatorConfig(api_key=API_KEY, batch_processing_s=3))
    pipeline: Pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_BATCH_POLL_S="0.2")
    workers = pipeline.workers
    lease = ("--lease", "2")
    try:
        first = workers.start(concurrency=2, extra=lease)

        async def upload(context: DocumentContext) -> int:
            name, data = report(9)
            return (await context.service.upload(data, name, {"batch": True})).id

        document_id = pipeline.run(upload)

        # When it is SIGKILLed while the document's first batch runs
        [sent] = pipeline.wait(
            [document_id],
            until=lambda ds: (ds[0].batch_id or "").startswith("msgbatch_") or ds[0].status in ENDED,
        )
        workers.kill(first)
        assert (sent.status, sent.error_reason) == ("processing", None), workers.tail()
        assert emulator.stats["batches"] == 1

        # and another worker starts
        workers.start(concurrency=2, extra=lease)
        [document] = pipeline.wait([document_id])
    finally:
        workers.stop()

    # Then the document completed by the same first batch and one more for its reduce:
    # nothing was sent twice, nothing went direct
    assert document.status == "completed", (document.error_reason, workers.tail())
    stats = emulator.stats
    assert stats["batches"] == 2
    assert stats["batch_requests"] == stats["batch_succeeded"] == document.progress_total
    assert direct_calls(emulator) == 0
    calls = pipeline.saved_calls(document_id)
    assert len(calls) == len(set(calls)) == document.progress_total
