"""The ProcessDocument stage: run the document's model calls and store the result.

``process_document`` claims the document (queued -> processing; a redelivered job finds
it processing and resumes), runs the call plan through ``mapreduce.run_plan`` with the
database as the ledger, and ends it by the outcome:

    done         completed, with the result JSON and Markdown; webhook queued
    retry        ``Release(retry_after_s)``: back in the queue, no attempt spent
    failed       failed at once with the provider's reason; the job itself completes
    stopped      nothing (the document was cancelled or deleted meanwhile)
    out_of_time  ``Release(0)``: a long document continues in a fresh attempt before
                 its job's timeout would cancel it and spend an attempt
    error        raised: the queue retries the job (saved calls are kept)

Every answer is saved as a ``ChunkResult`` the moment it arrives, together with the
document's running cost and progress, so a retry never pays twice for a finished call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from docmill.documents.calls import Calls
from docmill.documents.context import DocumentContext
from docmill.documents.errors import InvalidTransition
from docmill.documents.mapreduce import Outcome, SavedCall, run_plan
from docmill.documents.models import ChunkResult, Document, utcnow
from docmill.documents.pipeline import announce, default_model, fail_document
from docmill.documents.plan import CallRef, plan_calls
from docmill.documents.status import Status, change_status
from docmill.llm.errors import PermanentLLMError
from docmill.llm.types import LLMResponse
from docmill.queue import Release

OFFLINE_PROCESSOR = "extractive (offline, no model)"
OFFLINE_NOTE = (
    "> Processed by the extractive processor (offline, no model): the text is quoted from the "
    "document, not written by a language model.\n\n"
)


@dataclass(frozen=True)
class _Claimed:
    name: str
    options: dict[str, Any]
    analysis: dict[str, Any] | None
    chunks: list[dict[str, Any]]


class DatabaseLedger:
    """The ``mapreduce.Ledger`` of one document: its ``ChunkResult`` rows."""

    def __init__(self, ctx: DocumentContext, document_id: int) -> None:
        self.ctx = ctx
        self.document_id = document_id

    async def saved(self) -> dict[CallRef, SavedCall]:
        def read(session: Session) -> dict[CallRef, SavedCall]:
            rows = session.scalars(select(ChunkResult).where(ChunkResult.document_id == self.document_id))
            return {
                (row.phase, row.index): SavedCall(
                    row.text, row.provider, row.model, row.input_tokens, row.output_tokens, row.cost_usd
                )
                for row in rows
            }

        return await self.ctx.db.run(read)

    async def save(self, ref: CallRef, response: LLMResponse) -> bool:
        document_id = self.document_id

        def write(session: Session) -> bool:
            document = session.get(Document, document_id)
            if document is None:
                return False
            usage = response.usage
            session.add(
                ChunkResult(
                    document_id=document_id,
                    phase=ref[0],
                    index=ref[1],
                    text=response.text,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_input_tokens=usage.cache_read_input_tokens,
                    cache_creation_input_tokens=usage.cache_creation_input_tokens,
                    cost_usd=response.cost_usd,
                    request_id=response.request_id,
                    model=response.model,
                    provider=response.provider,
                    created_at=utcnow(),
                )
            )
            session.flush()
            mine = ChunkResult.document_id == document_id
            session.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(
                    cost_usd=select(func.coalesce(func.sum(ChunkResult.cost_usd), 0.0))
                    .where(mine)
                    .scalar_subquery(),
                    progress_done=select(func.count(ChunkResult.id)).where(mine).scalar_subquery(),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return document.status == Status.PROCESSING

        try:
            return await self.ctx.db.run(write)
        except IntegrityError:  # another run saved this call first; its answer stands
            return True


async def process_document(
    ctx: DocumentContext, document_id: int, *, clock: Callable[[], float] = time.monotonic
) -> None:
    """Run the processing stage for one document; see the module docstring."""
    started = clock()
    claimed = await ctx.db.run(lambda session: _claim(session, document_id))
    if claimed is None:
        return
    try:
        provider = await ctx.provider()
    except PermanentLLMError as exc:  # e.g. provider anthropic chosen without a key
        await fail_document(ctx, document_id, exc.reason)
        return
    calls = Calls.for_document(
        name=claimed.name,
        options=claimed.options,
        analysis=claimed.analysis,
        default_model=default_model(ctx.settings),
    )
    outcome = await run_plan(
        calls,
        claimed.chunks,
        provider,
        DatabaseLedger(ctx, document_id),
        concurrency=ctx.settings.chunk_concurrency,
        deadline=started + _budget_s(ctx),
        clock=clock,
    )
    if outcome.kind == "done":
        await _complete(ctx, document_id, claimed, calls, outcome)
    elif outcome.kind == "retry":
        raise Release(outcome.retry_after_s)
    elif outcome.kind == "out_of_time":
        raise Release(0)
    elif outcome.kind == "failed":
        await fail_document(ctx, document_id, outcome.reason)
    elif outcome.kind == "error" and outcome.error is not None:
        raise outcome.error


def _claim(session: Session, document_id: int) -> _Claimed | None:
    document = session.get(Document, document_id, options=[undefer(Document.chunks)])
    if document is None or document.status not in (Status.QUEUED, Status.PROCESSING):
        return None
    chunks = document.chunks or []
    if document.status == Status.QUEUED:
        change_status(
            session,
            document,
            Status.PROCESSING,
            "processing started",
            values={"progress_total": plan_calls(len(chunks)).total if chunks else 0},
        )
    return _Claimed(document.name, document.options, document.analysis, chunks)


def _budget_s(ctx: DocumentContext) -> float:
    """How long one attempt starts new calls: its timeout less one slow call and a margin."""
    timeout_s = ctx.settings.processing_timeout_s
    call_s = ctx.settings.llm.request_timeout_s if ctx.settings.llm is not None else 600.0
    return max(timeout_s * 0.5, timeout_s - call_s - 30.0)


def build_result(document_id: int, name: str, calls: Calls, outcome: Outcome) -> tuple[dict[str, Any], str]:
    """The result JSON (profile fields plus who produced it and what it cost) and its Markdown."""
    fields, markdown = calls.profile.finish(outcome.final.text, source=calls.source, options=calls.options)
    records = list(outcome.calls.values())
    providers = sorted({r.provider for r in records})
    models = sorted({r.model for r in records})
    offline = providers == ["extractive"]
    result: dict[str, Any] = {
        "document_id": document_id,
        "name": name,
        "profile": calls.profile.name,
        "processor": OFFLINE_PROCESSOR if offline else f"{', '.join(providers)} ({', '.join(models)})",
        "offline": offline,
        "models": models,
        **fields,
        "usage": {
            "calls": len(records),
            "input_tokens": sum(r.input_tokens for r in records),
            "output_tokens": sum(r.output_tokens for r in records),
            "cost_usd": round(sum(r.cost_usd for r in records), 6),
        },
    }
    return result, (OFFLINE_NOTE + markdown) if offline else markdown


async def _complete(
    ctx: DocumentContext, document_id: int, claimed: _Claimed, calls: Calls, outcome: Outcome
) -> None:
    result, markdown = build_result(document_id, claimed.name, calls, outcome)
    usage = result["usage"]
    message = f"completed: {usage['calls']} calls, ${usage['cost_usd']:.4f}, by {result['processor']}"

    def finish(session: Session) -> Document | None:
        document = session.get(Document, document_id)
        if document is None or document.status != Status.PROCESSING:
            return None
        change_status(
            session,
            document,
            Status.COMPLETED,
            message,
            values={"result": result, "result_markdown": markdown, "progress_done": document.progress_total},
        )
        return document

    try:
        document = await ctx.db.run(finish)
    except InvalidTransition:  # cancelled at the last moment
        return
    if document is not None:
        await announce(ctx, document)
