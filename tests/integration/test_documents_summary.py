"""The documents domain's read models (``documents/summary.py``) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from docmill.documents.db import Database
from docmill.documents.models import ChunkResult, Document, DocumentEvent
from docmill.documents.status import Status
from docmill.documents.summary import (
    cost_summary_query,
    document_summary_query,
    timeline_query,
    usage_since_query,
)

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Database]:
    (tmp_path / "storage").mkdir(exist_ok=True)
    opened = Database.open(database_url)
    yield opened
    opened.close()


def document(status: Status, cost: float, profile: str, estimate: float | None = None) -> Document:
    return Document(
        name=f"{status.value}.md",
        content_type="text/markdown",
        size_bytes=10,
        sha256="0" * 64,
        options={"profile": profile},
        options_key="k",
        status=status.value,
        cost_usd=cost,
        estimate={"cost_usd": estimate} if estimate is not None else None,
        uploaded_at=NOW,
        updated_at=NOW,
    )


def call(document_id: int, model: str, at: datetime, cost: float, index: int = 0) -> ChunkResult:
    return ChunkResult(
        document_id=document_id,
        phase="map",
        index=index,
        text="",
        input_tokens=1000,
        output_tokens=100,
        cost_usd=cost,
        model=model,
        provider="anthropic",
        created_at=at,
    )


def fill(session: Session) -> list[int]:
    docs = [
        document(Status.COMPLETED, 0.30, "summary", estimate=0.25),
        document(Status.COMPLETED, 0.10, "extract", estimate=0.12),
        document(Status.FAILED, 0.05, "summary"),
        document(Status.AWAITING_APPROVAL, 0.0, "summary", estimate=4.0),
    ]
    session.add_all(docs)
    session.flush()
    first, second = docs[0].id, docs[1].id
    session.add_all(
        [
            call(first, "claude-sonnet-4-6", NOW - timedelta(minutes=5), 0.20),
            call(first, "claude-sonnet-4-6", NOW - timedelta(hours=2), 0.10, index=1),
            call(second, "claude-haiku-4-5", NOW - timedelta(days=3), 0.10),
            call(second, "claude-haiku-4-5", NOW - timedelta(days=30), 0.50, index=1),  # in no window
            DocumentEvent(document_id=first, at=NOW - timedelta(hours=3), to_status="uploaded"),
            DocumentEvent(document_id=first, at=NOW - timedelta(minutes=1), from_status="processing",
                          to_status="completed", message="done"),
        ]
    )  # fmt: skip
    return [doc.id for doc in docs]


async def test_the_summary_counts_every_status_and_sums_the_cost(db: Database) -> None:
    await db.run(fill)
    summary = await db.run(document_summary_query)
    assert [(i.status, i.count) for i in summary.by_status if i.count] == [
        (Status.AWAITING_APPROVAL, 1),
        (Status.COMPLETED, 2),
        (Status.FAILED, 1),
    ]
    assert summary.count(Status.CANCELLED) == 0 and len(summary.by_status) == len(Status)
    assert summary.total == 4 and summary.cost_usd == pytest.approx(0.45)
    assert summary.to_dict()["by_status"]["completed"] == 2


async def test_costs_by_model_profile_hour_and_day_and_estimates(db: Database) -> None:
    ids = await db.run(fill)
    costs = await db.run(lambda session: cost_summary_query(session, now=NOW))
    assert [(s.key, s.calls, s.cost_usd) for s in costs.by_model] == [
        ("claude-haiku-4-5", 2, pytest.approx(0.60)),
        ("claude-sonnet-4-6", 2, pytest.approx(0.30)),
    ]
    assert [(s.key, s.calls, s.cost_usd) for s in costs.by_profile] == [  # documents that cost
        ("extract", 1, pytest.approx(0.10)),
        ("summary", 2, pytest.approx(0.35)),
    ]
    assert len(costs.by_hour) == 24 and costs.by_hour[-1].key == "2026-03-10 12:00"
    assert {s.key: s.calls for s in costs.by_hour if s.calls} == {
        "2026-03-10 10:00": 1,
        "2026-03-10 12:00": 1,
    }
    assert {s.key: s.calls for s in costs.by_day if s.calls} == {"2026-03-07": 1, "2026-03-10": 2}
    assert [(e.document_id, e.estimated_usd, e.actual_usd) for e in costs.estimates] == [
        (ids[1], 0.12, pytest.approx(0.10)),
        (ids[0], 0.25, pytest.approx(0.30)),
    ]


async def test_the_timeline_merges_status_changes_and_calls_in_time_order(db: Database) -> None:
    ids = await db.run(fill)
    timeline = await db.run(lambda session: timeline_query(session, ids[0]))
    assert [(e.kind, e.text) for e in timeline] == [
        ("status", "- → uploaded"),
        ("llm_call", "map chunk 1"),
        ("llm_call", "map chunk 0"),
        ("status", "processing → completed: done"),
    ]
    assert timeline[2].input_tokens == 1000 and timeline[2].model == "claude-sonnet-4-6"


async def test_usage_since_counts_the_calls_and_tokens_of_the_window(db: Database) -> None:
    await db.run(fill)
    usage = await db.run(lambda session: usage_since_query(session, NOW - timedelta(minutes=10)))
    assert [(s.key, s.calls, s.input_tokens, s.output_tokens) for s in usage] == [
        ("claude-sonnet-4-6", 1, 1000, 100)
    ]
