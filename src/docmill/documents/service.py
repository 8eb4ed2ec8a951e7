"""``DocumentService``: the one entry point of the documents domain for the API and the CLI.

Every method is a coroutine; database work runs in a thread (``Database.run``), the
queue client is async. Documents come back as detached ``Document`` rows whose plain
columns are loaded (``Document.to_dict()`` for JSON); chunk texts and results are read
with ``result``. Errors are the ``DocumentError`` tree of ``errors.py``.

What each action does to a document (see ``status.py`` for the moves):

    upload    store the file, create the document (uploaded), queue its analysis;
              the same bytes with the same options return the existing document
              unless ``force``, also when both uploads arrive at once (a unique key);
              the model is compared as one id (no model is the configured default,
              an alias its dated id: ``DocumentOptions.key``)
    approve   awaiting_approval -> queued, and queue the processing
    retry     failed | cancelled -> back where it stopped (uploaded, analyzed,
              awaiting_approval or queued) and queue that stage; on a document still
              in a stage (a job lost for good) it queues the stage's job again, which
              is a no-op while the job is still alive
    cancel    any status before the end -> cancelled; a running job stops at its
              next chunk
    delete    the document, its events and saved calls; the file unless another
              document shares it
"""

from __future__ import annotations

import asyncio
import builtins
import mimetypes
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from docmill.documents import dispatch
from docmill.documents.db import Database
from docmill.documents.errors import DocumentNotFound, InvalidTransition, QueueUnavailable, ResultNotReady
from docmill.documents.models import ChunkResult, Document, DocumentEvent, utcnow
from docmill.documents.options import DocumentOptions
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import RETRYABLE, TERMINAL, Status, change_status
from docmill.documents.storage import FileStore, Upload, display_name
from docmill.documents.summary import (
    CostSummary,
    DocumentSummary,
    Spend,
    TimelineEntry,
    cost_summary_query,
    document_summary_query,
    timeline_query,
    usage_since_query,
)
from docmill.documents.views import Page, Progress
from docmill.llm.models import DEFAULT_MODEL
from docmill.queue import Client

__all__ = ["MAX_PAGE", "DocumentService", "Page", "Progress", "resume_stage"]

MAX_PAGE = 500
_ANALYSIS_STAGES = frozenset({Status.UPLOADED, Status.ANALYZING, Status.ANALYZED})
_PROCESSING_STAGES = frozenset({Status.QUEUED, Status.PROCESSING})


class DocumentService:
    """Upload, inspect and steer documents; see the module docstring."""

    def __init__(self, db: Database, store: FileStore, client: Client, settings: DocumentSettings) -> None:
        self.db = db
        self.store = store
        self.client = client
        self.settings = settings

    # ------------------------------------------------------------------ upload
    async def upload(
        self,
        data: Upload,
        filename: str,
        options: Mapping[str, Any] | DocumentOptions | None = None,
        *,
        content_type: str | None = None,
        force: bool = False,
    ) -> Document:
        """Store the file and queue its analysis; see the module docstring.

        Raises ``InvalidOptions``, ``UploadTooLarge``, ``EmptyUpload``, or
        ``QueueUnavailable`` (the document is then saved, ``uploaded``: retry it).
        """
        parsed = DocumentOptions.parse(options)
        name = display_name(filename)
        stored = await self.store.save(data, max_bytes=self.settings.max_upload_bytes)
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"

        options_key = parsed.key(default_model=self._default_model())

        def create(session: Session) -> tuple[Document, bool]:
            if not force:
                existing = _existing(session, stored.sha256, options_key)
                if existing is not None:
                    return existing, False
            now = utcnow()
            document = Document(
                name=name,
                content_type=kind[:127],
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                options=parsed.to_dict(),
                options_key=options_key,
                dedupe_key=None if force else f"{stored.sha256}:{options_key}",
                status=Status.UPLOADED.value,
                cost_usd=0.0,
                progress_done=0,
                progress_total=0,
                uploaded_at=now,
                updated_at=now,
            )
            session.add(document)
            session.flush()
            session.add(
                DocumentEvent(
                    document_id=document.id,
                    at=now,
                    from_status=None,
                    to_status=Status.UPLOADED.value,
                    message=f"uploaded {name} ({stored.size_bytes} bytes)",
                )
            )
            return document, True

        try:
            document, created = await self.db.run(create)
        except IntegrityError:
            # The same upload, at the same moment, created its document between our lookup
            # and our insert: the unique dedupe key refused ours, so return that one.
            found = await self.db.run(lambda session: _existing(session, stored.sha256, options_key))
            if force or found is None:
                raise
            return found
        if created:
            await self._dispatch_stage(document)
        return document

    # ------------------------------------------------------------------ reading
    async def get(self, document_id: int) -> Document:
        return await self.db.run(lambda session: _load(session, document_id))

    async def list(self, status: Status | str | None = None, *, offset: int = 0, limit: int = 50) -> Page:
        """Documents newest first, optionally of one status; ``limit`` is capped at 500."""
        offset, limit = max(0, offset), max(1, min(limit, MAX_PAGE))
        wanted = Status(status).value if status is not None else None

        def query(session: Session) -> Page:
            items = select(Document).order_by(Document.id.desc()).offset(offset).limit(limit)
            count = select(func.count(Document.id))
            if wanted is not None:
                items, count = items.where(Document.status == wanted), count.where(Document.status == wanted)
            return Page(list(session.scalars(items)), int(session.scalar(count) or 0), offset, limit)

        return await self.db.run(query)

    async def result(self, document_id: int) -> tuple[dict[str, Any], str]:
        """The result as JSON and as Markdown; ``ResultNotReady`` before completion."""

        def read(session: Session) -> tuple[dict[str, Any], str]:
            document = _load(
                session, document_id, undefer(Document.result), undefer(Document.result_markdown)
            )
            if document.status != Status.COMPLETED or document.result is None:
                raise ResultNotReady(document_id, document.status, document.error_reason)
            return document.result, document.result_markdown or ""

        return await self.db.run(read)

    async def events(
        self, document_id: int, *, after: int | None = None, limit: int = 100
    ) -> builtins.list[DocumentEvent]:
        """Status changes of the document, oldest first, those with ``id > after`` only."""

        def query(session: Session) -> builtins.list[DocumentEvent]:
            _load(session, document_id)
            statement = select(DocumentEvent).where(DocumentEvent.document_id == document_id)
            if after is not None:
                statement = statement.where(DocumentEvent.id > after)
            return list(session.scalars(statement.order_by(DocumentEvent.id).limit(max(1, min(limit, 1000)))))

        return await self.db.run(query)

    async def follow(
        self, document_id: int, *, after: int | None = None, poll_s: float = 0.5
    ) -> AsyncIterator[DocumentEvent]:
        """Events as they happen (for server-sent events), until the document reaches a
        terminal status or is deleted; the last event's ``id`` resumes a dropped stream."""
        cursor = after
        while True:
            try:
                batch = await self.events(document_id, after=cursor)
            except DocumentNotFound:
                return
            for item in batch:
                cursor = item.id
                yield item
            if batch and Status(batch[-1].to_status) in TERMINAL:
                return
            if not batch:
                document = await self._find(document_id)
                if document is None:
                    return
                if Status(document.status) in TERMINAL:
                    # Its last change may have landed between the two reads: read once more.
                    try:
                        last = await self.events(document_id, after=cursor)
                    except DocumentNotFound:
                        return
                    for item in last:
                        yield item
                    return
                await asyncio.sleep(poll_s)

    async def progress(self, document_id: int) -> Progress:
        document = await self.get(document_id)
        estimate = document.estimate or {}
        return Progress(
            document_id=document.id,
            status=document.status,
            done=document.progress_done,
            total=document.progress_total or int(estimate.get("calls", {}).get("total", 0)),
            cost_usd=document.cost_usd,
            estimated_cost_usd=estimate.get("cost_usd"),
            eta_s=estimate.get("eta_s"),
        )

    async def file(self, document_id: int) -> tuple[Path, str, str]:
        """The stored file of a document: its path, display name and content type."""
        document = await self.get(document_id)
        return self.store.path_for(document.sha256), document.name, document.content_type

    async def summary(self) -> DocumentSummary:
        """Documents per status and the money spent (``summary.py``)."""
        return await self.db.run(document_summary_query)

    async def costs(self) -> CostSummary:
        """Money spent by model, profile, hour and day; estimates against actual costs."""
        return await self.db.run(cost_summary_query)

    async def usage_last_minute(self) -> tuple[Spend, ...]:
        """LLM calls and tokens per model in the last 60 s, against the per-minute limits."""
        since = utcnow() - timedelta(seconds=60)
        return await self.db.run(lambda session: usage_since_query(session, since))

    async def timeline(self, document_id: int) -> builtins.list[TimelineEntry]:
        """The document's status changes and LLM calls, oldest first."""

        def query(session: Session) -> builtins.list[TimelineEntry]:
            _load(session, document_id)
            return timeline_query(session, document_id)

        return await self.db.run(query)

    # ------------------------------------------------------------------ steering
    async def approve(self, document_id: int) -> Document:
        """Approve the estimate and queue the processing (again, if already queued)."""

        def move(session: Session) -> Document:
            document = _load(session, document_id)
            if document.status != Status.QUEUED:
                change_status(session, document, Status.QUEUED, "approved", values={"approved_at": utcnow()})
            return document

        document = await self.db.run(move)
        await self._dispatch_stage(document)
        return document

    async def retry(self, document_id: int) -> Document:
        """Put the document back into the pipeline; see the module docstring."""

        def move(session: Session) -> Document:
            document = _load(session, document_id)
            status = Status(document.status)
            if status in RETRYABLE:
                target = resume_stage(document)
                change_status(
                    session,
                    document,
                    target,
                    f"retried after it was {status.value}",
                    values={"error_reason": None},
                )
            elif status is Status.COMPLETED:
                raise InvalidTransition(
                    document_id, status.value, "retried", "upload the file again with force"
                )
            elif status is Status.AWAITING_APPROVAL:
                raise InvalidTransition(document_id, status.value, "retried", "approve or cancel it")
            return document

        document = await self.db.run(move)
        await self._dispatch_stage(document)
        return document

    async def cancel(self, document_id: int, reason: str = "cancelled by request") -> Document:
        def move(session: Session) -> Document:
            document = _load(session, document_id)
            change_status(session, document, Status.CANCELLED, reason)
            return document

        return await self.db.run(move)

    async def delete(self, document_id: int) -> None:
        """Delete the document and its records; its file too unless another document shares it."""

        def remove(session: Session) -> tuple[str, bool]:
            document = _load(session, document_id)
            session.execute(sql_delete(ChunkResult).where(ChunkResult.document_id == document_id))
            session.execute(sql_delete(DocumentEvent).where(DocumentEvent.document_id == document_id))
            session.execute(sql_delete(Document).where(Document.id == document_id))
            shared = session.scalar(select(func.count(Document.id)).where(Document.sha256 == document.sha256))
            return document.sha256, bool(shared)

        sha256, shared = await self.db.run(remove)
        if not shared:
            await asyncio.to_thread(self.store.delete, sha256)

    # ------------------------------------------------------------------ helpers
    def _default_model(self) -> str:
        """The model of a document uploaded without one (what processing will use)."""
        return self.settings.llm.default_model if self.settings.llm is not None else DEFAULT_MODEL

    async def _find(self, document_id: int) -> Document | None:
        return await self.db.run(lambda session: session.get(Document, document_id))

    async def _dispatch_stage(self, document: Document) -> None:
        """Queue the job of the stage the document is in (a no-op while that job is alive)."""
        status = Status(document.status)
        try:
            if status in _ANALYSIS_STAGES:
                await dispatch.dispatch_analysis(self.client, self.settings, document.id)
            elif status in _PROCESSING_STAGES:
                await dispatch.dispatch_processing(self.client, self.settings, document.id)
        except Exception as exc:  # the backend is down: the document is saved, retry re-queues it
            stage = "analysis" if status in _ANALYSIS_STAGES else "processing"
            raise QueueUnavailable(document.id, stage, exc) from exc


def resume_stage(document: Document) -> Status:
    """Where a failed or cancelled document goes back to: the first stage it had not finished."""
    if document.analysis is None:
        return Status.UPLOADED
    if document.estimate is None:
        return Status.ANALYZED
    if document.approved_at is not None:
        return Status.QUEUED
    return Status.AWAITING_APPROVAL


def _existing(session: Session, sha256: str, options_key: str) -> Document | None:
    """The newest document of these bytes and options, if any."""
    return session.scalars(
        select(Document)
        .where(Document.sha256 == sha256, Document.options_key == options_key)
        .order_by(Document.id.desc())
        .limit(1)
    ).first()


def _load(session: Session, document_id: int, *options: Any) -> Document:
    document = session.get(Document, document_id, options=list(options) or None)
    if document is None:
        raise DocumentNotFound(document_id)
    return document
