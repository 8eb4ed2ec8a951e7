"""Read models of the documents domain for the dashboard, the CLI and the API: how many
documents are in each status and what they cost, what was spent per model, profile, hour
and day, and one document's timeline (its status changes and every saved LLM call).

Each ``*_query`` function runs inside a ``Session`` (``Database.run``); ``DocumentService``
calls them. Aggregates are computed in SQL where every dialect agrees (counts and sums by
a column); grouping by hour or by profile (a key inside the JSON options) reads only the
columns it needs, within a bounded window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docmill.documents.models import ChunkResult, Document, DocumentEvent, utcnow
from docmill.documents.status import Status


@dataclass(frozen=True)
class StatusCount:
    status: Status
    count: int


@dataclass(frozen=True)
class DocumentSummary:
    """Documents per status (every status, zeros included) and the money spent on all."""

    by_status: tuple[StatusCount, ...]
    cost_usd: float

    @property
    def total(self) -> int:
        return sum(item.count for item in self.by_status)

    def count(self, status: Status) -> int:
        return next((item.count for item in self.by_status if item.status is status), 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_status": {item.status.value: item.count for item in self.by_status},
            "total": self.total,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True)
class Spend:
    """Money and tokens of a group of LLM calls (one model, one profile, one hour...)."""

    key: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class EstimateCheck:
    """A finished document's estimate against what it cost."""

    document_id: int
    name: str
    estimated_usd: float | None
    actual_usd: float


@dataclass(frozen=True)
class CostSummary:
    by_model: tuple[Spend, ...]
    by_profile: tuple[Spend, ...]  # documents' cost by the profile they ran
    by_hour: tuple[Spend, ...]  # the last 24 hours, oldest first; key "YYYY-MM-DD HH:00"
    by_day: tuple[Spend, ...]  # the last 7 days, oldest first; key "YYYY-MM-DD"
    estimates: tuple[EstimateCheck, ...]  # the latest completed documents


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a document's timeline: a status change or an LLM call."""

    at: datetime
    kind: str  # "status" or "llm_call"
    text: str
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def document_summary_query(session: Session) -> DocumentSummary:
    # Two statements: the counts come from the status index alone; the sum reads the table
    # in order. One GROUP BY with the sum would visit every row through the index (8x slower
    # on SQLite at 10,000 documents).
    counts = dict(session.execute(select(Document.status, func.count()).group_by(Document.status)).all())
    cost = session.scalar(select(func.coalesce(func.sum(Document.cost_usd), 0.0)))
    return DocumentSummary(
        tuple(StatusCount(status, int(counts.get(status.value, 0))) for status in Status), float(cost or 0.0)
    )


def cost_summary_query(session: Session, *, now: datetime | None = None, recent: int = 20) -> CostSummary:
    now = now or utcnow()
    dialect = session.get_bind().dialect.name
    by_model = session.execute(
        select(ChunkResult.model, *_spent())
        .group_by(ChunkResult.model)
        .order_by(func.sum(ChunkResult.cost_usd).desc())
    ).all()
    profile = func.coalesce(Document.options["profile"].as_string(), "summary")
    by_profile = session.execute(
        select(profile, func.count(), func.coalesce(func.sum(Document.cost_usd), 0.0))
        .where(Document.cost_usd > 0)
        .group_by(profile)
        .order_by(profile)
    ).all()

    week_start = (now - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    hour_keys = [(day_start + timedelta(hours=h)).strftime(HOUR_KEY) for h in range(24)]
    day_keys = [(week_start + timedelta(days=d)).strftime(DAY_KEY) for d in range(7)]
    hours, days = {k: Spend(k) for k in hour_keys}, {k: Spend(k) for k in day_keys}
    for buckets, start, fmt in ((hours, day_start, HOUR_KEY), (days, week_start, DAY_KEY)):
        bucket = _time_bucket(dialect, fmt)
        rows = session.execute(
            select(bucket, *_spent()).where(ChunkResult.created_at >= start).group_by(bucket)
        ).all()
        for key, calls, input_tokens, output_tokens, cost in rows:
            if key in buckets:
                buckets[key] = Spend(key, int(calls), int(input_tokens), int(output_tokens), float(cost))

    latest = session.execute(
        select(Document.id, Document.name, Document.estimate, Document.cost_usd)
        .where(Document.status == Status.COMPLETED.value)
        .order_by(Document.id.desc())
        .limit(recent)
    ).all()
    return CostSummary(
        by_model=tuple(Spend(str(m), int(c), int(i), int(o), float(usd)) for m, c, i, o, usd in by_model),
        by_profile=tuple(Spend(str(name), calls=int(n), cost_usd=float(usd)) for name, n, usd in by_profile),
        by_hour=tuple(
            Spend(key, s.calls, s.input_tokens, s.output_tokens, s.cost_usd) for key, s in hours.items()
        ),
        by_day=tuple(
            Spend(key, s.calls, s.input_tokens, s.output_tokens, s.cost_usd) for key, s in days.items()
        ),
        estimates=tuple(
            EstimateCheck(int(i), str(n), (e or {}).get("cost_usd"), float(c or 0.0)) for i, n, e, c in latest
        ),
    )


HOUR_KEY, DAY_KEY = "%Y-%m-%d %H:00", "%Y-%m-%d"
_POSTGRES_FORMATS = {HOUR_KEY: "YYYY-MM-DD HH24:00", DAY_KEY: "YYYY-MM-DD"}


def _time_bucket(dialect: str, fmt: str) -> Any:
    """The hour or day of a call's ``created_at`` (UTC) as text, in the database's own terms."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", ChunkResult.created_at), _POSTGRES_FORMATS[fmt])
    return func.strftime(fmt, ChunkResult.created_at)  # SQLite keeps UTC text


def _spent() -> tuple[Any, ...]:
    return (
        func.count(ChunkResult.id),
        func.coalesce(func.sum(ChunkResult.input_tokens), 0),
        func.coalesce(func.sum(ChunkResult.output_tokens), 0),
        func.coalesce(func.sum(ChunkResult.cost_usd), 0.0),
    )


def timeline_query(session: Session, document_id: int, *, limit: int = 2000) -> list[TimelineEntry]:
    """Status changes and LLM calls of one document, oldest first. Each chunk's call is
    saved once, so after a crash the resumed job's calls follow the ones made before it,
    with no call repeated."""
    entries = [
        TimelineEntry(
            at=event.at,
            kind="status",
            text=f"{event.from_status or '-'} → {event.to_status}"
            + (f": {event.message}" if event.message else ""),
        )
        for event in session.scalars(
            select(DocumentEvent)
            .where(DocumentEvent.document_id == document_id)
            .order_by(DocumentEvent.id)
            .limit(limit)
        )
    ]
    calls = select(  # not the chunk's text: a page of calls should not read every answer
        ChunkResult.created_at,
        ChunkResult.phase,
        ChunkResult.index,
        ChunkResult.model,
        ChunkResult.input_tokens,
        ChunkResult.output_tokens,
        ChunkResult.cost_usd,
        ChunkResult.request_id,
        ChunkResult.provider,
    ).where(ChunkResult.document_id == document_id)
    for at, phase, index, model, input_tokens, output_tokens, cost, request_id, provider in session.execute(
        calls.order_by(ChunkResult.id).limit(limit)
    ):
        entries.append(
            TimelineEntry(
                at=at,
                kind="llm_call",
                text=f"{phase} chunk {index}",
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
                details={"request_id": request_id, "provider": provider},
            )
        )
    entries.sort(key=lambda entry: entry.at)
    return entries


def usage_since_query(session: Session, since: datetime) -> tuple[Spend, ...]:
    """LLM calls and tokens per model saved since ``since`` (the rate-limit window's use)."""
    rows = session.execute(
        select(ChunkResult.model, *_spent())
        .where(ChunkResult.created_at >= since)
        .group_by(ChunkResult.model)
    ).all()
    return tuple(Spend(str(m), int(c), int(i), int(o), float(usd)) for m, c, i, o, usd in rows)
