"""The documents service and its migrations on SQLite and on PostgreSQL.

Every test runs twice: on an SQLite file under ``tmp_path``, and on a PostgreSQL
database created for the test and dropped afterwards (skipped on a laptop without
PostgreSQL, a failure in CI). The queue is the in-memory backend, so the jobs the
service dispatches can be inspected.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmill.documents import service as service_module
from docmill.documents.context import DocumentContext
from docmill.documents.db import VERSION_TABLE, upgrade
from docmill.documents.errors import (
    DocumentNotFound,
    InvalidOptions,
    InvalidTransition,
    ResultNotReady,
    UploadTooLarge,
)
from docmill.documents.models import ChunkResult, Document, utcnow
from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import Status, change_status
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, JobState, backend_from_url


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    opened = backend_from_url("memory://")
    await opened.connect()
    yield opened
    await opened.close()


@pytest.fixture
async def context(database_url: str, tmp_path: Path, backend: Backend) -> AsyncIterator[DocumentContext]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=database_url,
        max_upload_mb=0.01,
        llm=LLMSettings.from_env({}),
    )
    opened = await DocumentContext.create(settings, backend=backend)
    yield opened
    await opened.aclose()


@pytest.fixture
def service(context: DocumentContext) -> DocumentService:
    return context.service


async def jobs_of(backend: Backend, document_id: int) -> list[tuple[str, str]]:
    return sorted((job.name, job.queue) for job in await backend.find_by_tag(f"document:{document_id}"))


async def set_status(context: DocumentContext, document_id: int, *path: Status, **values: object) -> None:
    def move(session: Session) -> None:
        document = session.get(Document, document_id)
        assert document is not None
        for status in path:
            change_status(session, document, status, "test", values=values if status is path[-1] else None)

    await context.db.run(move)


# ---------------------------------------------------------------------- migrations
def test_migrations_create_the_schema_and_running_them_again_changes_nothing(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"documents", "document_events", "document_chunk_results", VERSION_TABLE} <= tables
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0004"
    finally:
        engine.dispose()


def test_processes_starting_at_once_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            upgrade(database_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# ---------------------------------------------------------------------- upload
async def test_upload_stores_the_file_records_the_event_and_queues_the_analysis(
    service: DocumentService, backend: Backend, tmp_path: Path
) -> None:
    document = await service.upload(b"# Notes\n\nHello.", "../../etc/passwd", {"profile": "summary"})
    assert (document.name, document.status, document.size_bytes) == ("passwd", "uploaded", 15)
    assert document.uploaded_at.tzinfo is not None
    assert await jobs_of(backend, document.id) == [("documents.analyze", "document-analysis")]
    (event,) = await service.events(document.id)
    assert (event.from_status, event.to_status) == (None, "uploaded")
    files = [p for p in (tmp_path / "storage").rglob("*") if p.is_file() and "docmill.db" not in p.name]
    assert [p.name for p in files] == [document.sha256]
    assert files[0].is_relative_to(tmp_path / "storage" / "documents")


async def test_the_same_bytes_and_options_return_the_existing_document_unless_forced(
    service: DocumentService, backend: Backend
) -> None:
    first = await service.upload(b"same bytes", "a.txt", {"profile": "summary"})
    again = await service.upload(
        b"same bytes", "b.txt", {"profile": "summary", "callback_url": "https://h/x"}
    )
    other = await service.upload(b"same bytes", "a.txt", {"profile": "custom", "prompt": "Dates?"})
    forced = await service.upload(b"same bytes", "a.txt", {"profile": "summary"}, force=True)
    assert again.id == first.id
    assert len({first.id, other.id, forced.id}) == 3
    assert (await service.list()).total == 3


async def test_an_upload_racing_an_identical_one_returns_the_document_the_other_created(
    service: DocumentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an identical upload that created its document after this one looked (simulated:
    # this upload's lookup misses once, as it would between the other's lookup and commit)
    first = await service.upload(b"racing bytes", "a.txt", {"profile": "summary"})
    real_existing = service_module._existing
    misses = iter([True])

    def late_lookup(session: Session, sha256: str, options_key: str) -> Document | None:
        return None if next(misses, False) else real_existing(session, sha256, options_key)

    monkeypatch.setattr(service_module, "_existing", late_lookup)
    # When it inserts, the unique key refuses the duplicate, and it returns the first document
    again = await service.upload(b"racing bytes", "b.txt", {"profile": "summary"})
    assert again.id == first.id
    assert (await service.list()).total == 1
    # and a forced upload still makes a new one
    forced = await service.upload(b"racing bytes", "c.txt", {"profile": "summary"}, force=True)
    assert forced.id != first.id


async def test_identical_uploads_at_once_make_one_document(service: DocumentService) -> None:
    uploads = [service.upload(b"at once", f"{n}.txt", {"profile": "summary"}) for n in range(8)]
    documents = await asyncio.gather(*uploads)
    assert len({document.id for document in documents}) == 1
    assert (await service.list()).total == 1


async def test_a_rejected_upload_leaves_no_document(service: DocumentService) -> None:
    with pytest.raises(UploadTooLarge):
        await service.upload(b"x" * 20_000, "big.txt")
    with pytest.raises(InvalidOptions):
        await service.upload(b"x", "a.txt", {"profile": "extract"})
    assert (await service.list()).total == 0


async def test_text_and_timestamps_round_trip(service: DocumentService) -> None:
    document = await service.upload("Отчёт".encode(), "отчёт.txt", {"profile": "custom", "prompt": "Кратко?"})
    loaded = await service.get(document.id)
    assert loaded.name == "отчёт.txt" and loaded.options["prompt"] == "Кратко?"
    assert loaded.uploaded_at == document.uploaded_at and loaded.uploaded_at.tzinfo is not None


# ---------------------------------------------------------------------- reading
async def test_list_pages_newest_first_and_filters_by_status(service: DocumentService) -> None:
    ids = [(await service.upload(f"doc {i}".encode(), f"{i}.txt")).id for i in range(5)]
    await service.cancel(ids[1])
    page = await service.list(offset=1, limit=2)
    assert [d.id for d in page.items] == [ids[3], ids[2]] and page.total == 5
    cancelled = await service.list(status="cancelled")
    assert [d.id for d in cancelled.items] == [ids[1]] and cancelled.total == 1
    summary = await service.summary()
    assert summary.count(Status.UPLOADED) == 4 and summary.total == 5


async def test_an_unknown_id_is_not_found(service: DocumentService) -> None:
    for call in (service.get, service.cancel, service.retry, service.approve, service.delete, service.result):
        with pytest.raises(DocumentNotFound, match="Document 999 does not exist"):
            await call(999)


async def test_events_after_a_cursor_and_following_until_the_end(
    service: DocumentService, context: DocumentContext
) -> None:
    document = await service.upload(b"events", "e.txt")
    first = (await service.events(document.id))[0]
    await set_status(context, document.id, Status.ANALYZING)
    later = await service.events(document.id, after=first.id)
    assert [e.to_status for e in later] == ["analyzing"]

    async def finish_soon() -> None:
        await asyncio.sleep(0.2)
        await service.cancel(document.id, "stopped by the test")

    finisher = asyncio.create_task(finish_soon())
    followed = [e async for e in service.follow(document.id, after=first.id, poll_s=0.05)]
    await finisher
    assert [(e.to_status, e.message) for e in followed] == [
        ("analyzing", "test"),
        ("cancelled", "stopped by the test"),
    ]


async def test_following_gives_the_last_change_when_it_lands_between_its_two_reads(
    service: DocumentService, context: DocumentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = await service.upload(b"race", "race.txt")
    seen = (await service.events(document.id))[-1]
    find = service._find

    async def cancelled_meanwhile(document_id: int) -> Document | None:
        # The document ends (and its event is written) just after ``follow`` found no new
        # event and just before it reads the document's status.
        await service.cancel(document_id, "cancelled between the reads")
        return await find(document_id)

    monkeypatch.setattr(service, "_find", cancelled_meanwhile)
    followed = [e async for e in service.follow(document.id, after=seen.id, poll_s=0.01)]

    assert [(e.to_status, e.message) for e in followed] == [("cancelled", "cancelled between the reads")]


async def test_the_result_is_ready_only_once_completed(
    service: DocumentService, context: DocumentContext
) -> None:
    document = await service.upload(b"result", "r.txt")
    with pytest.raises(ResultNotReady, match="is uploaded and has no result yet"):
        await service.result(document.id)
    await set_status(
        context,
        document.id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.QUEUED,
        Status.PROCESSING,
        Status.COMPLETED,
        result={"summary": "done"},
        result_markdown="# done\n",
    )
    assert await service.result(document.id) == ({"summary": "done"}, "# done\n")


# ---------------------------------------------------------------------- steering
async def test_cancel_then_retry_puts_the_document_back_at_its_stage(
    service: DocumentService, context: DocumentContext, backend: Backend
) -> None:
    document = await service.upload(b"retry me", "r.txt")
    await set_status(context, document.id, Status.ANALYZING, Status.FAILED, error_reason="parser crashed")
    assert (await service.get(document.id)).error_reason == "parser crashed"

    retried = await service.retry(document.id)

    assert retried.status == "uploaded" and retried.error_reason is None
    assert await jobs_of(backend, document.id) == [("documents.analyze", "document-analysis")]  # one, unique
    with pytest.raises(InvalidTransition, match="cannot be queued for processing"):
        await service.approve(document.id)


async def test_approve_queues_the_processing(
    service: DocumentService, context: DocumentContext, backend: Backend
) -> None:
    document = await service.upload(b"approve me", "a.txt")
    await set_status(
        context,
        document.id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.AWAITING_APPROVAL,
        analysis={"kind": "text"},
        estimate={"cost_usd": 2},
    )
    approved = await service.approve(document.id)
    assert approved.status == "queued" and approved.approved_at is not None
    assert ("documents.process", "document-processing") in await jobs_of(backend, document.id)

    # A failure after approval resumes at the queue, approval kept
    await set_status(context, document.id, Status.PROCESSING, Status.FAILED)
    assert (await service.retry(document.id)).status == "queued"


async def test_a_completed_document_cannot_be_retried_or_cancelled(
    service: DocumentService, context: DocumentContext
) -> None:
    document = await service.upload(b"done", "d.txt")
    await set_status(
        context,
        document.id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.QUEUED,
        Status.PROCESSING,
        Status.COMPLETED,
    )
    with pytest.raises(InvalidTransition, match="upload the file again with force"):
        await service.retry(document.id)
    with pytest.raises(InvalidTransition, match="is completed, so it cannot be cancelled"):
        await service.cancel(document.id)


async def test_delete_keeps_a_file_another_document_shares(
    service: DocumentService, context: DocumentContext
) -> None:
    first = await service.upload(b"shared bytes", "a.txt")
    second = await service.upload(b"shared bytes", "a.txt", force=True)
    path = context.store.path_for(first.sha256)

    def add_call(session: Session) -> None:
        session.add(
            ChunkResult(
                document_id=first.id,
                phase="map",
                index=0,
                text="t",
                model="m",
                provider="p",
                created_at=utcnow(),
            )
        )

    await context.db.run(add_call)
    await service.delete(first.id)
    assert path.is_file()
    await service.delete(second.id)
    assert not path.exists()
    assert (await service.list()).total == 0
    assert await context.db.run(lambda s: s.scalars(select(ChunkResult)).all()) == []


async def test_a_call_can_be_saved_only_once_per_document_phase_and_index(
    service: DocumentService, context: DocumentContext
) -> None:
    document = await service.upload(b"calls", "c.txt")

    def save(session: Session) -> None:
        session.add(
            ChunkResult(
                document_id=document.id,
                phase="map",
                index=3,
                text="t",
                model="m",
                provider="p",
                created_at=utcnow(),
            )
        )

    await context.db.run(save)
    with pytest.raises(IntegrityError):
        await context.db.run(save)


async def test_progress_reports_calls_and_money(service: DocumentService, context: DocumentContext) -> None:
    document = await service.upload(b"progress", "p.txt")
    await set_status(
        context,
        document.id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.QUEUED,
        Status.PROCESSING,
        progress_done=2,
        progress_total=5,
        cost_usd=0.25,
        estimate={"cost_usd": 0.5, "eta_s": 30, "calls": {"total": 5}},
    )
    progress = await service.progress(document.id)
    assert (progress.done, progress.total, progress.fraction, progress.cost_usd) == (2, 5, 0.4, 0.25)
    assert progress.estimated_cost_usd == 0.5 and progress.eta_s == 30


async def test_dispatching_a_pending_job_again_is_a_no_op(service: DocumentService, backend: Backend) -> None:
    document = await service.upload(b"unique", "u.txt")
    await service.retry(document.id)  # still uploaded: queues the analysis again
    jobs = await backend.find_by_tag(f"document:{document.id}")
    assert len(jobs) == 1 and jobs[0].state is JobState.PENDING
