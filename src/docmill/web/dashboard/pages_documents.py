"""The documents side's pages: documents, a document, the approval inbox, money and limits."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markdown_it import MarkdownIt

from docmill.documents.analysis.model import Section
from docmill.documents.dispatch import tag
from docmill.documents.errors import DocumentNotFound, ResultNotReady
from docmill.documents.status import Status
from docmill.documents.summary import TimelineEntry
from docmill.llm.models import DEFAULT_MODEL
from docmill.llm.refusals import read_refusals
from docmill.queue import Backend, Job
from docmill.web.dashboard.access import Viewer
from docmill.web.dashboard.deps import BackendDep, DigestDep, ServiceDep, SettingsDep
from docmill.web.dashboard.reads import read_circuit_of, read_cluster, read_headroom
from docmill.web.dashboard.rendering import message_page, render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
INBOX_SIZE = 100  # the oldest wait longest, but a decision is made on a screenful
# Results are the model's Markdown: raw HTML in it is shown as text, never run.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@router.get("/documents")
async def documents(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    service: ServiceDep,
    settings: SettingsDep,
    status: Annotated[Status | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    listing = await service.list(status, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    pages = max(1, math.ceil(listing.total / PER_PAGE))
    return render(
        request,
        "documents.html",
        session,
        title="Documents",
        summary=await service.summary(),
        status=status.value if status else "",
        page_items=listing.items,
        page=page,
        pages=pages,
        pager_base=f"/documents?status={status.value}&" if status else "/documents?",
        default_model=_default_model(settings),
        digest=digest,
    )


@router.get("/documents/{document_id}")
async def document_page(
    request: Request,
    document_id: int,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    try:
        document = await service.get(document_id)
        timeline = await service.timeline(document_id)
    except DocumentNotFound:
        return message_page(request, session, "No such document", f"There is no document {document_id}.", 404)
    result_html = ""
    if document.status == Status.COMPLETED:
        try:
            _, markdown = await service.result(document_id)
            result_html = _markdown.render(markdown)
        except (ResultNotReady, DocumentNotFound):
            result_html = ""
    for job in await backend.find_by_tag(tag(document_id), limit=100):
        timeline.append(_job_entry(job))
    timeline.sort(key=lambda entry: entry.at)
    sections = [Section.from_dict(item) for item in (document.analysis or {}).get("sections", [])]
    return render(
        request,
        "document.html",
        session,
        title=f"Document {document.id}: {document.name}",
        document=document,
        progress=await service.progress(document_id),
        sections=sections,
        result_html=result_html,
        timeline=timeline,
        default_model=_default_model(settings),
        digest=digest,
    )


@router.get("/approvals")
async def approvals(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    waiting = await service.list(Status.AWAITING_APPROVAL, limit=INBOX_SIZE)
    return render(
        request,
        "approvals.html",
        session,
        title="Approval inbox",
        items=waiting.items,
        total=waiting.total,
        budget=settings.auto_approve_max_usd,
        digest=digest,
    )


@router.get("/money")
async def money(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    costs = await service.costs()
    models = [spend.key for spend in costs.by_model] or [_default_model(settings)]
    headroom = await read_headroom(backend, service, settings.llm, models)
    busiest = max((h.busiest for h in headroom), default=0.0)
    return render(
        request,
        "money.html",
        session,
        title="Money and limits",
        costs=costs,
        summary=await service.summary(),
        headroom=headroom,
        refusals=await read_refusals(backend),
        circuit=await read_circuit_of(backend, settings.llm),
        bound_by=await _bound_by(backend, settings.processing_queue, busiest),
        digest=digest,
    )


async def _bound_by(backend: Backend, processing_queue: str, busiest: float) -> str:
    """Rate limit when a model's minute is nearly used up; workers when every one is busy
    while documents wait; nothing when nothing waits."""
    stats = await backend.stats(processing_queue)
    if busiest >= 0.9:
        return "the rate limit"
    if stats.pending == 0:
        return "nothing (no document waits)"
    cluster = await read_cluster(backend)
    serving = [w for w in cluster.workers if processing_queue in w.queues]
    if not serving:
        return "workers (none serves the processing queue)"
    if all(w.state == "busy" for w in serving):
        return "workers (all busy)"
    return "neither (documents are being taken)"


def _default_model(settings: Any) -> str:
    return str(settings.llm.default_model) if settings.llm is not None else DEFAULT_MODEL


def _job_entry(job: Job) -> TimelineEntry:
    when = job.finished_at or job.reserved_at or job.created_at
    outcome = job.state.value + (f" after {job.attempts} attempts" if job.attempts > 1 else "")
    return TimelineEntry(
        at=datetime.fromtimestamp(when, UTC),
        kind="job",
        text=f"job {job.name.rsplit('.', 1)[-1]} {outcome}",
        details={"id": job.id},
    )
