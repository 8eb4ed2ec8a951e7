"""Processing a document through Claude's Message Batches API: half the price, answered later.

A document whose upload asks for ``batch`` (or whose profile goes by batch by default,
``profiles.sends_by_batch``) has its calls sent level by level in batches: every map not
yet saved in one batch, then each level of reduces in the next. ``advance`` runs at the
start of each processing attempt, before the direct path (``processing``):

    no batch in flight           send the next level's unsaved calls in one batch, keep its
                                 id on the document, release the job (``Release(delay)``)
    a batch in flight            look at it; still running: release again, the pause growing
                                 with its age (``llm.batches.poll_delay_s``, at least
                                 ``DOCUMENT_BATCH_POLL_S``); ended: save each answer to the
                                 document's ledger as the results stream in, forget the id,
                                 and send the next level
    nothing left to send         go on: the direct path finds every call saved and completes

The job holds no worker while a batch runs, and the batch id lives on the document, so a
worker killed at any point leaves the next one polling the same batch: nothing is paid
twice. Before a batch is sent the document is marked ``sending:<tag>``, the tag a random
prefix of the batch's custom ids (``<tag>-map-3``). A run that finds the mark (the worker
died, or the create call's answer was lost, between the API accepting the batch and the
database keeping its id) looks for that batch among those created since (the same number
of requests, its first custom id carrying the tag; a candidate still running is waited
for) and polls it if found, or sends the calls again if no batch was created.

The calls go direct (``batch_fallback`` says why, and stays) when:

    the deadline passes           ``DOCUMENT_BATCH_DEADLINE_S`` after the first batch was
                                  sent (default 6 h); a batch in flight is cancelled first
                                  and the answers it made are saved
    a batch ends with requests    errored, expired or canceled: those (and the calls after
    not answered                  them) are made directly, where a request the API refuses
                                  fails the document with the API's reason as usual
    the provider is not Claude    the Message Batches API is Claude's alone

A retryable error (429, 5xx, no connection) releases the job for the time asked; a
permanent one (key, spend limit, retired model) fails the document with its reason.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from docmill.documents.calls import Calls
from docmill.documents.context import DocumentContext
from docmill.documents.mapreduce import Ledger, SavedCall
from docmill.documents.models import Document, utcnow
from docmill.documents.pipeline import fail_document
from docmill.documents.plan import MAP, REDUCE, CallRef, plan_calls
from docmill.documents.profiles import sends_by_batch
from docmill.llm.errors import PermanentLLMError, RetryableLLMError
from docmill.llm.settings import LLMSettings
from docmill.llm.types import LLMRequest, Provider
from docmill.queue import Release

if TYPE_CHECKING:
    from docmill.llm.batches import BatchClient, BatchResult

log = logging.getLogger("docmill.documents")

SENDING = "sending:"
# How much earlier than the database's clock the API's may date a batch it created.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class BatchTrack:
    """What the document keeps of its batches (the ``batch_*`` columns)."""

    batch_id: str | None
    submitted_at: datetime | None
    started_at: datetime | None
    fallback: str | None


def wanted(calls: Calls, provider: Provider, *, batch_profiles: frozenset[str]) -> bool:
    """Whether the document's calls go by batch: asked for, and the provider is Claude's."""
    return provider.name == "anthropic" and sends_by_batch(calls.options, batch_profiles=batch_profiles)


def custom_id(ref: CallRef, tag: str) -> str:
    """The id a call's answer comes back under: ``<tag>-map-3``, ``<tag>-reduce-0``."""
    return f"{tag}-{ref[0]}-{ref[1]}"


def ref_of(custom: str) -> CallRef:
    """The call a custom id names, whatever its tag."""
    head, _, index = custom.rpartition("-")
    return head.rpartition("-")[2], int(index)


def next_level(
    calls: Calls, chunks: Sequence[dict[str, Any]], saved: dict[CallRef, SavedCall]
) -> dict[CallRef, LLMRequest]:
    """The unsaved calls of the first level that has any (maps, then each level of reduces);
    empty when every call is saved. A reduce is built from the saved answers it combines,
    so the requests of a level are the same whenever they are built."""
    total = len(chunks)
    maps = {(MAP, i): calls.map(chunks[i], total) for i in range(total) if (MAP, i) not in saved}
    if maps:
        return maps
    plan = plan_calls(total)
    for level in sorted({step.level for step in plan.reduces}):
        reduces = {
            (REDUCE, step.index): calls.reduce([saved[ref].text for ref in step.inputs], final=step.final)
            for step in plan.reduces
            if step.level == level and (REDUCE, step.index) not in saved
        }
        if reduces:
            return reduces
    return {}


async def advance(
    ctx: DocumentContext,
    document_id: int,
    calls: Calls,
    chunks: Sequence[dict[str, Any]],
    ledger: Ledger,
    *,
    now: Callable[[], datetime] = utcnow,
) -> bool:
    """Move the document's batches on (see the module docstring). Raises ``Release`` while a
    batch runs; returns True when the direct path should go on (every call saved, or the
    rest goes direct), False when the document ended here (failed, or stopped meanwhile)."""
    track = await ctx.db.run(lambda session: _track(session, document_id))
    if track is None:
        return False
    if track.fallback is not None:
        return True
    # Imported here: the anthropic SDK loads with the first job that calls Claude, not at boot.
    from docmill.llm.batches import build_batch_client

    client = build_batch_client(ctx.settings.llm or LLMSettings.from_env({}), rate_store=ctx.backend)
    if client is None:
        return True
    try:
        return await _advance(ctx, document_id, calls, chunks, ledger, client, track, now)
    except RetryableLLMError as exc:
        log.warning(
            "document.batch_wait id=%s retry_after_s=%g error=%s", document_id, exc.retry_after_s, exc
        )
        raise Release(exc.retry_after_s) from None
    except PermanentLLMError as exc:
        await fail_document(ctx, document_id, exc.reason)
        return False
    finally:
        await client.aclose()


async def _advance(
    ctx: DocumentContext,
    document_id: int,
    calls: Calls,
    chunks: Sequence[dict[str, Any]],
    ledger: Ledger,
    client: BatchClient,
    track: BatchTrack,
    now: Callable[[], datetime],
) -> bool:
    from docmill.llm.batches import BatchItem, poll_delay_s

    settings = ctx.settings
    at = now()
    late = (
        track.started_at is not None and (at - track.started_at).total_seconds() >= settings.batch_deadline_s
    )
    if track.batch_id is not None and track.batch_id.startswith(SENDING):
        track = await _recover(
            ctx, document_id, client, track, len(next_level(calls, chunks, await ledger.saved()))
        )
    if track.batch_id is not None:
        batch = await client.retrieve(track.batch_id)
        if not batch.ended:
            if late and batch.status == "in_progress":
                await client.cancel(track.batch_id)
                log.warning(
                    "document.batch_cancel id=%s batch=%s reason=deadline", document_id, track.batch_id
                )
                raise Release(settings.batch_poll_s)
            age_s = (at - (track.submitted_at or at)).total_seconds()
            raise Release(poll_delay_s(age_s, min_s=settings.batch_poll_s))
        requests = next_level(calls, chunks, await ledger.saved())
        unanswered: list[BatchResult] = []
        async for result in client.results(track.batch_id, lambda custom: requests.get(ref_of(custom))):
            if result.response is None:
                unanswered.append(result)
            elif not await ledger.save(ref_of(result.custom_id), result.response):
                return False  # cancelled or deleted meanwhile
        fallback = _fallback_reason(track.batch_id, unanswered, late, settings.batch_deadline_s)
        log.info(
            "document.batch_saved id=%s batch=%s answered=%d unanswered=%d",
            document_id,
            track.batch_id,
            len(requests) - len(unanswered),
            len(unanswered),
        )
        await ctx.db.run(lambda session: _keep(session, document_id, batch_id=None, fallback=fallback))
        if fallback is not None:
            log.warning("document.batch_fallback id=%s reason=%s", document_id, fallback)
            return True
    if late:
        reason = _deadline_reason(settings.batch_deadline_s)
        await ctx.db.run(lambda session: _keep(session, document_id, batch_id=None, fallback=reason))
        return True
    requests = next_level(calls, chunks, await ledger.saved())
    if not requests:
        return True
    tag = secrets.token_hex(4)
    started_at = track.started_at or at
    await ctx.db.run(
        lambda session: _keep(
            session, document_id, batch_id=SENDING + tag, submitted_at=at, started_at=started_at
        )
    )
    batch = await client.submit(
        [BatchItem(custom_id(ref, tag), request) for ref, request in requests.items()]
    )
    await ctx.db.run(
        lambda session: _keep(session, document_id, batch_id=batch.id, submitted_at=at, started_at=started_at)
    )
    log.info("document.batch_submitted id=%s batch=%s calls=%d", document_id, batch.id, len(requests))
    raise Release(settings.batch_poll_s)


async def _recover(
    ctx: DocumentContext, document_id: int, client: BatchClient, track: BatchTrack, requests: int
) -> BatchTrack:
    """The track once a ``sending:`` mark is resolved: the batch found and kept, or no batch
    (send again); releases the job while a candidate batch is still running."""
    tag = (track.batch_id or "").removeprefix(SENDING)
    sent_at = track.submitted_at or utcnow()
    found = await _sent_batch(client, tag, sent_at, requests, min_poll_s=ctx.settings.batch_poll_s)
    if found is None:
        log.info("document.batch_not_sent id=%s tag=%s", document_id, tag)
        return replace(track, batch_id=None)
    log.warning("document.batch_recovered id=%s batch=%s", document_id, found)
    await ctx.db.run(lambda session: _keep(session, document_id, batch_id=found, submitted_at=sent_at))
    return replace(track, batch_id=found)


async def _sent_batch(
    client: BatchClient, tag: str, sent_at: datetime, requests: int, *, min_poll_s: float
) -> str | None:
    """The id of the batch created with ``tag`` at about ``sent_at``, or None when none was."""
    from docmill.llm.batches import poll_delay_s

    for batch in await client.recent(sent_at - CLOCK_SKEW):
        if batch.requests != requests:
            continue
        if not batch.ended:  # it may be ours: whose it is shows once it has ended
            raise Release(poll_delay_s((utcnow() - sent_at).total_seconds(), min_s=min_poll_s))
        first = await client.first_custom_id(batch.id)
        if first is not None and first.startswith(f"{tag}-"):
            return batch.id
    return None


def _deadline_reason(deadline_s: float) -> str:
    return (
        f"the batches took longer than DOCUMENT_BATCH_DEADLINE_S ({deadline_s:g} s), "
        "so the remaining calls are made directly"
    )


def _fallback_reason(
    batch_id: str, unanswered: list[BatchResult], late: bool, deadline_s: float
) -> str | None:
    if late:  # the batch was cancelled for it: its canceled requests say nothing more
        return _deadline_reason(deadline_s)
    if not unanswered:
        return None
    kinds = sorted({result.kind for result in unanswered})
    first_error = next((r.error for r in unanswered if r.error is not None), None)
    detail = f" (first error: {first_error})" if first_error is not None else ""
    return (
        f"{len(unanswered)} request(s) of batch {batch_id} ended {' or '.join(kinds)}{detail}, "
        "so the remaining calls are made directly"
    )


def _track(session: Session, document_id: int) -> BatchTrack | None:
    document = session.get(Document, document_id)
    if document is None:
        return None
    return BatchTrack(
        document.batch_id, document.batch_submitted_at, document.batch_started_at, document.batch_fallback
    )


_UNSET: Any = object()


def _keep(
    session: Session,
    document_id: int,
    *,
    batch_id: str | None,
    submitted_at: datetime | None = None,
    started_at: datetime | None = _UNSET,
    fallback: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "batch_id": batch_id,
        "batch_submitted_at": submitted_at,
        "batch_fallback": fallback,
        "updated_at": utcnow(),
    }
    if started_at is not _UNSET:
        values["batch_started_at"] = started_at
    session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
