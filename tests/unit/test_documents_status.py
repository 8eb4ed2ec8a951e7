"""Document statuses: the transition table, and change_status writing the event with the move."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from docmill.documents.errors import InvalidTransition
from docmill.documents.models import Base, Document, DocumentEvent, utcnow
from docmill.documents.status import ALLOWED, RETRYABLE, TERMINAL, Status, can_move, change_status


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def make_document(session: Session, status: Status = Status.UPLOADED) -> Document:
    now = utcnow()
    document = Document(
        name="a.txt",
        content_type="text/plain",
        size_bytes=3,
        sha256="0" * 64,
        options={},
        options_key="k",
        status=status.value,
        cost_usd=0.0,
        progress_done=0,
        progress_total=0,
        uploaded_at=now,
        updated_at=now,
    )
    session.add(document)
    session.commit()
    return document


def test_the_happy_path_is_allowed_step_by_step() -> None:
    path = [
        Status.UPLOADED,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.AWAITING_APPROVAL,
        Status.QUEUED,
        Status.PROCESSING,
        Status.COMPLETED,
    ]
    for current, following in itertools.pairwise(path):
        assert can_move(current, following), (current, following)
    assert can_move(Status.ANALYZED, Status.QUEUED)  # auto-approval skips the wait


def test_every_status_before_the_end_can_fail_or_be_cancelled() -> None:
    for status in set(Status) - TERMINAL:
        assert {Status.FAILED, Status.CANCELLED} <= ALLOWED[status], status


def test_completed_is_final_and_failed_or_cancelled_only_go_back_into_the_pipeline() -> None:
    assert ALLOWED[Status.COMPLETED] == frozenset()
    resume_points = {Status.UPLOADED, Status.ANALYZED, Status.AWAITING_APPROVAL, Status.QUEUED}
    for status in RETRYABLE:
        assert ALLOWED[status] == resume_points
    assert frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}) == TERMINAL


def test_no_status_skips_analysis_or_processing() -> None:
    assert not can_move(Status.UPLOADED, Status.QUEUED)
    assert not can_move(Status.UPLOADED, Status.COMPLETED)
    assert not can_move(Status.QUEUED, Status.COMPLETED)
    assert not can_move(Status.AWAITING_APPROVAL, Status.PROCESSING)


def test_change_status_moves_stamps_and_records_one_event(session: Session) -> None:
    document = make_document(session)
    change_status(session, document, Status.ANALYZING, "analysis started")
    change_status(session, document, Status.ANALYZED, "analysed", values={"analysis": {"kind": "text"}})
    session.commit()

    stored = session.get(Document, document.id, populate_existing=True)
    assert stored is not None and stored.status == "analyzed"
    assert stored.analysis == {"kind": "text"}
    assert stored.analyzed_at is not None and stored.analyzed_at.tzinfo is not None
    events = session.scalars(select(DocumentEvent).order_by(DocumentEvent.id)).all()
    assert [(e.from_status, e.to_status, e.message) for e in events] == [
        ("uploaded", "analyzing", "analysis started"),
        ("analyzing", "analyzed", "analysed"),
    ]


def test_an_illegal_move_is_rejected_and_leaves_no_trace(session: Session) -> None:
    document = make_document(session, Status.COMPLETED)
    with pytest.raises(InvalidTransition, match=r"Document \d+ is completed, so it cannot be cancelled"):
        change_status(session, document, Status.CANCELLED)
    session.rollback()
    assert session.scalars(select(DocumentEvent)).all() == []
    assert session.get(Document, document.id).status == "completed"  # type: ignore[union-attr]


def test_a_move_from_a_status_read_before_another_process_changed_it_is_rejected(session: Session) -> None:
    # Given a document read as "queued" while another process already moved it on
    document = make_document(session, Status.QUEUED)
    session.execute(Document.__table__.update().values(status="cancelled"))
    # When this process moves it from the status it read
    # Then the conditional update matches no row and the move is refused
    with pytest.raises(InvalidTransition, match="changing meanwhile"):
        change_status(session, document, Status.PROCESSING)
