"""The ProcessDocument stage: run the document's model calls and store the result.

``process_document`` claims the document (queued -> processing; a redelivered job finds
it processing and resumes), runs the call plan through ``mapreduce.run_plan`` with the
database as the ledger, and ends it by the outcome:

    done         completed, with the result JSON and Markdown; webhook queued
    retry        ``Release(retry_after_s)``: back in the queue, no attempt spent; a
                 provider that cannot be reached at all is waited for up to
                 ``llm.unreachable_timeout_s``, then the document fails (below)
    failed       failed at once with the provider's reason; the job itself completes
    stopped      nothing (the document was cancelled or deleted meanwhile)
    out_of_time  ``Release(0)``: a long document continues in a fresh attempt before
                 its job's timeout would cancel it and spend an attempt
    error        raised: the queue retries the job (saved calls are kept)

Every answer is saved as a ``ChunkResult`` the moment it arrives, together with the
document's running cost and progress, so a retry never pays twice for a finished call.
An attempt that saved a call tells the queue so (``WorkerContext.progress``): it then does
not count toward the job's tries even if its worker is killed, so a long document that keeps
moving forward is never failed for its kills; one that kills its worker without saving
anything still ends in the failed store. Only the calls in flight at a kill are paid again:
at most ``DOCUMENT_CHUNK_CONCURRENCY`` (4) per document.

A document sent by Message Batches (``batch``) first goes through ``batching.advance``,
which releases the job while its batch runs and saves the batch's answers to the same
ledger; the run below then finds them saved, or makes directly what the batches did not.

The wait for an unreachable provider is bounded by a clock kept on the document
(``llm_unreachable_since``), not in a worker's memory nor in the job, so it runs on
through releases, worker restarts and other hosts' workers taking the job up:

    a call finds no provider to connect to         the clock starts then, unless it runs
    any call is answered (or gets a 429 or 529)    the clock stops (NULL), until a later
                                                   call of the run finds no provider
    the document (re)enters processing (retry)     the clock stops (NULL)
    anything else (a 5xx, the shared limiter)      the clock is left as it is

When a run ends finding no provider, the job is released until the clock reaches the
bound (at most ``retry_after_s``); once it has, the document fails saying since when.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from docmill.documents import batching
from docmill.documents.calls import Calls
from docmill.documents.context import DocumentContext
from docmill.documents.errors import InvalidTransition
from docmill.documents.mapreduce import Outcome, SavedCall, run_plan
from docmill.documents.models import ChunkResult, Document, utcnow
from docmill.documents.pipeline import announce, default_model, fail_document
from docmill.documents.plan import CallRef, plan_calls
from docmill.documents.status import Status, change_status
from docmill.llm.errors import PermanentLLMError, ProviderUnreachable
from docmill.llm.ratelimit import start_calls_by
from docmill.llm.settings import DEFAULT_UNREACHABLE_TIMEOUT_S
from docmill.llm.types import LLMResponse
from docmill.queue import Release

log = logging.getLogger("docmill.documents")

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
    unreachable_since: datetime | None
    estimate: dict[str, Any] | None


class DatabaseLedger:
    """The ``mapreduce.Ledger`` of one document: its ``ChunkResult`` rows.

    ``on_saved`` is awaited after each answer this run saved (the queue's ``progress``: an
    attempt that saved a call does not spend one of the job's tries).
    """

    def __init__(
        self,
        ctx: DocumentContext,
        document_id: int,
        on_saved: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.document_id = document_id
        self.on_saved = on_saved

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
                    llm_unreachable_since=None,  # the provider answered
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return document.status == Status.PROCESSING

        try:
            processing = await self.ctx.db.run(write)
        except IntegrityError:  # another run saved this call first; its answer stands
            return True
        if self.on_saved is not None:
            await self.on_saved()
        return processing


async def process_document(
    ctx: DocumentContext,
    document_id: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utcnow,
    on_progress: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Run the processing stage for one document; see the module docstring.

    ``clock`` times this attempt's budget; ``now`` (UTC) is the unreachable provider's clock;
    ``on_progress`` is awaited after each call saved (the worker's ``progress``).
    """
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
        estimate=claimed.estimate,
    )
    if batching.wanted(calls, provider, batch_profiles=ctx.settings.batch_profiles):
        # Sends the calls by Message Batches and releases the job while a batch runs; goes on
        # below once every call is saved (completing without a call) or the rest goes direct.
        ledger = DatabaseLedger(ctx, document_id)
        if not await batching.advance(ctx, document_id, calls, claimed.chunks, ledger, now=now):
            return
    deadline = started + _budget_s(ctx)
    # A call waiting its turn at the rate limiter never books one past this attempt's budget.
    with start_calls_by(time.monotonic() + (deadline - clock())):
        outcome = await run_plan(
            calls,
            claimed.chunks,
            provider,
            DatabaseLedger(ctx, document_id, on_progress),
            concurrency=ctx.settings.chunk_concurrency,
            deadline=deadline,
            clock=clock,
            now=now,
        )
    if outcome.kind == "done":
        await _complete(ctx, document_id, claimed, calls, outcome)
    elif outcome.kind == "retry":
        await _retry_later(ctx, document_id, claimed, outcome, now)
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
    if document.status == Status.QUEUED:  # a first run, or the first after a retry: a fresh clock
        change_status(
            session,
            document,
            Status.PROCESSING,
            "processing started",
            values={
                "progress_total": plan_calls(len(chunks)).total if chunks else 0,
                "llm_unreachable_since": None,
            },
        )
    return _Claimed(
        document.name,
        document.options,
        document.analysis,
        chunks,
        document.llm_unreachable_since,
        document.estimate,
    )


# ---------------------------------------------------------------------- an unreachable provider
def unreachable_clock(outcome: Outcome, since: datetime | None) -> datetime | None:
    """The document's clock after a run that found it at ``since``: stopped by an answer,
    started by a call that found no provider after the run's last answer."""
    if outcome.unreachable_since is None:
        return None if outcome.answered else since
    if outcome.answered:
        return outcome.unreachable_since
    return since or outcome.unreachable_since


def unreachable_wait_s(
    since: datetime, now: datetime, *, timeout_s: float, retry_after_s: float
) -> float | None:
    """How long to wait before calling a provider unreachable since ``since`` again: what it
    asked, cut so the last wait ends at ``timeout_s``; None once ``timeout_s`` has passed."""
    left_s = timeout_s - (now - since).total_seconds()
    if left_s <= 0:
        return None
    return min(retry_after_s, left_s)


def unreachable_reason(error: ProviderUnreachable, since: datetime, document_id: int) -> str:
    """The sentence a document fails with once its provider has been unreachable too long."""
    return (
        f"The LLM provider at {error.base_url} could not be reached since "
        f"{since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; check the network and the provider's base URL "
        f"({error.base_url_setting}), then run `docmill documents retry {document_id}`."
    )


async def _retry_later(
    ctx: DocumentContext,
    document_id: int,
    claimed: _Claimed,
    outcome: Outcome,
    now: Callable[[], datetime],
) -> None:
    """Release the job as the provider asked, or fail the document once its provider has been
    unreachable for ``unreachable_timeout_s``; keep the clock either way (module docstring)."""
    since = unreachable_clock(outcome, claimed.unreachable_since)
    if since != claimed.unreachable_since:
        await ctx.db.run(lambda session: _keep_clock(session, document_id, since))
    if outcome.unreachable is None or since is None:
        raise Release(outcome.retry_after_s)
    timeout_s = (
        ctx.settings.llm.unreachable_timeout_s
        if ctx.settings.llm is not None
        else DEFAULT_UNREACHABLE_TIMEOUT_S
    )
    at = now()
    wait_s = unreachable_wait_s(since, at, timeout_s=timeout_s, retry_after_s=outcome.retry_after_s)
    log.warning(
        "document.llm_unreachable id=%s since=%s unreachable_s=%.1f timeout_s=%g error=%s",
        document_id,
        since.isoformat(),
        (at - since).total_seconds(),
        timeout_s,
        outcome.unreachable,
    )
    if wait_s is None:
        await fail_document(ctx, document_id, unreachable_reason(outcome.unreachable, since, document_id))
        return
    raise Release(wait_s)


def _keep_clock(session: Session, document_id: int, since: datetime | None) -> None:
    session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(llm_unreachable_since=since)
        .execution_options(synchronize_session=False)
    )


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
