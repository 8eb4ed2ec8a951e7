"""The AnalyzeDocumentStructure stage, then the estimate and the approval decision.

``analyze_document`` is idempotent per status, so a redelivered job (its worker died)
picks up where the first one stopped:

    uploaded | analyzing   parse the file in the sandbox -> analyzed (or failed with the
                           analysis reason: a bad file is the document's failure, never
                           the job's, so the worker carries on and nothing is retried)
    analyzed               estimate -> queued (approved; processing dispatched) or
                           awaiting_approval
    queued                 dispatch the processing again (a no-op while its job lives)
    anything else          nothing (cancelled, deleted, or a stale job)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, undefer

from docmill.documents import batching
from docmill.documents.analysis import AnalysisFailed, DocumentStructure, analyze_file
from docmill.documents.analysis.chunking import MIN_CHUNK_TOKENS, ChunkingOptions
from docmill.documents.calls import Calls
from docmill.documents.context import DocumentContext
from docmill.documents.dispatch import dispatch_processing
from docmill.documents.errors import InvalidTransition
from docmill.documents.estimate import estimate_document, queue_load
from docmill.documents.models import Document, utcnow
from docmill.documents.pipeline import (
    approval,
    default_model,
    fail_document,
    price_table,
    rate_limits,
    served_model,
)
from docmill.documents.plan import plan_calls
from docmill.documents.status import Status, change_status
from docmill.llm.errors import PermanentLLMError
from docmill.llm.models import context_window

log = logging.getLogger("docmill.documents")

CHUNK_SHARE_OF_LIMIT = 0.5
"""The largest chunk, as a share of the input tokens a minute allows (``chunk_budget``)."""


@dataclass(frozen=True)
class _Claimed:
    status: Status
    name: str
    sha256: str
    options: dict[str, Any]


async def analyze_document(ctx: DocumentContext, document_id: int) -> None:
    """Run the analysis stage for one document; see the module docstring."""

    def claim(session: Session) -> _Claimed | None:
        document = session.get(Document, document_id)
        if document is None:
            return None
        if document.status == Status.UPLOADED:
            change_status(session, document, Status.ANALYZING, "analysis started")
        return _Claimed(Status(document.status), document.name, document.sha256, document.options)

    claimed = await ctx.db.run(claim)
    if claimed is None:
        return
    if claimed.status is Status.ANALYZING:
        model = claimed.options.get("model") or default_model(ctx.settings)
        try:
            structure = await asyncio.to_thread(
                analyze_file,
                ctx.store.path_for(claimed.sha256),
                chunk_tokens=await chunk_budget(ctx, model),
                model_context_tokens=context_window(model),
                time_limit_s=ctx.settings.analysis_time_limit_s,
                memory_limit_mb=ctx.settings.analysis_memory_mb,
                filename=claimed.name,
            )
        except AnalysisFailed as exc:
            log.info("document.analysis_failed id=%s code=%s", document_id, exc.code.value)
            await fail_document(ctx, document_id, exc.reason)
            return
        if not await _save_analysis(ctx, document_id, structure):
            return
    elif claimed.status is Status.QUEUED:
        await dispatch_processing(ctx.client, ctx.settings, document_id)
        return
    elif claimed.status is not Status.ANALYZED:
        return
    await estimate_and_approve(ctx, document_id)


async def chunk_budget(ctx: DocumentContext, model: str) -> int | None:
    """A chunk size that keeps every map under the smallest input limit known for ``model``
    (``CHUNK_SHARE_OF_LIMIT`` of the tokens a minute allows, leaving room for the
    instructions), or None for the size the model's context window gives: while no limit
    is known but the built-in default, or when the window's size fits already."""
    by_window = ChunkingOptions.for_model(context_window(model)).chunk_tokens
    try:
        provider = await ctx.provider()
    except Exception:  # no provider yet (a bad key): processing will say why
        return None
    limiter = getattr(provider, "limiter", None)
    if limiter is None:
        return None
    try:
        limit = await limiter.known_input_limit(model)
    except Exception as exc:  # the store is away: the window's size, as before limits were known
        log.warning("document.chunk_budget_unknown model=%s error=%s", model, exc)
        return None
    if limit is None or limit * CHUNK_SHARE_OF_LIMIT >= by_window:
        return None
    return max(MIN_CHUNK_TOKENS, int(limit * CHUNK_SHARE_OF_LIMIT))


async def _save_analysis(ctx: DocumentContext, document_id: int, structure: DocumentStructure) -> bool:
    """analyzing -> analyzed with the structure; False when the document moved on meanwhile."""
    summary = structure.to_dict()
    chunks = summary.pop("chunks")
    summary["chunks"] = [{k: v for k, v in chunk.items() if k != "text"} for chunk in chunks]
    counts = structure.counts
    pages = f"{counts.pages} pages, " if counts.pages else ""
    message = (
        f"analysed: {structure.kind.value}, {pages}{counts.words} words, {counts.sections} sections, "
        f"{counts.tables} tables, {len(chunks)} chunks, language {structure.language.code}"
    )

    def save(session: Session) -> bool:
        document = session.get(Document, document_id)
        if document is None or document.status != Status.ANALYZING:
            return False
        change_status(
            session, document, Status.ANALYZED, message, values={"analysis": summary, "chunks": chunks}
        )
        return True

    try:
        return await ctx.db.run(save)
    except InvalidTransition:  # cancelled while the file was being parsed
        return False


async def estimate_and_approve(ctx: DocumentContext, document_id: int) -> None:
    """analyzed -> queued (and dispatch processing) or awaiting_approval, with the estimate."""
    document = await ctx.db.run(lambda s: s.get(Document, document_id, options=[undefer(Document.chunks)]))
    if document is None or document.status != Status.ANALYZED:
        return
    chunks = document.chunks or []
    if not chunks:
        await fail_document(ctx, document_id, "The document has no text to process; upload one with text.")
        return
    try:
        provider = await ctx.provider()
        calls = Calls.for_document(
            name=document.name,
            options=document.options,
            analysis=document.analysis,
            default_model=default_model(ctx.settings),
        )
        model = served_model(ctx.settings, provider, calls.model)
        estimate = await estimate_document(
            calls,
            chunks,
            provider=provider,
            prices=price_table(ctx.settings),
            limits=rate_limits(ctx.settings, provider, model),
            load=await queue_load(ctx.backend, ctx.settings.processing_queue),
            concurrency=ctx.settings.chunk_concurrency,
            model=model,
            batch=batching.wanted(calls, provider, batch_profiles=ctx.settings.batch_profiles),
        )
    except PermanentLLMError as exc:
        await fail_document(ctx, document_id, exc.reason)
        return
    approved, message = approval(
        estimate["cost_usd"],
        price_known=estimate["price_known"],
        auto_approve=bool(document.options.get("auto_approve")),
        max_usd=ctx.settings.auto_approve_max_usd,
        price_note=estimate.get("price_note"),
    )

    def decide(session: Session) -> bool:
        current = session.get(Document, document_id)
        if current is None or current.status != Status.ANALYZED:
            return False
        now = utcnow()
        values: dict[str, Any] = {
            "estimate": estimate,
            "estimated_at": now,
            "progress_total": plan_calls(len(chunks)).total,
        }
        if approved:
            values["approved_at"] = now
        change_status(
            session, current, Status.QUEUED if approved else Status.AWAITING_APPROVAL, message, values=values
        )
        return approved

    try:
        queued = await ctx.db.run(decide)
    except InvalidTransition:  # cancelled while estimating
        return
    if queued:
        await dispatch_processing(ctx.client, ctx.settings, document_id)
