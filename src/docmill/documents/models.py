"""The documents database: documents, their events, and the saved result of every model call.

Tables::

    documents               one row per upload; ``status`` moves only through
                            ``status.change_status`` (which also writes the event);
                            ``llm_unreachable_since`` is the processing's clock of an
                            LLM provider that cannot be reached (NULL while it answers);
                            ``batch_*`` follow a document sent by Message Batches
                            (``batching``): the batch in flight, since when, the first
                            batch's time, and why the rest goes direct
    document_events         every status change, in order: the audit trail and the
                            feed of server-sent events (``id`` is the cursor)
    document_chunk_results  one row per paid model call (phase map|reduce, index);
                            unique per document, phase and index, so a retried job
                            resumes at the first missing call and never pays twice

The large columns (chunk texts, the result) are deferred: listing documents does not
read them. The schema is created by the Alembic migrations in ``migrations/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from docmill.documents.options import shown_options

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


STAGE_TIMESTAMPS = (
    "uploaded_at",
    "analyzed_at",
    "estimated_at",
    "approved_at",
    "processing_started_at",
    "completed_at",
    "failed_at",
    "cancelled_at",
)


class Document(Base):
    """One uploaded document and everything the pipeline learnt about it."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_sha256_options", "sha256", "options_key"),
        # One document per file and options among uploads that were not forced: two identical
        # uploads at once cannot both create one (the second finds the first; service.py).
        Index("uq_documents_dedupe_key", "dedupe_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JsonType)
    options_key: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(129), nullable=True)  # sha256:options_key
    status: Mapped[str] = mapped_column(String(20), index=True)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    chunks: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType, nullable=True, deferred=True)
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True, deferred=True)
    result_markdown: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    analyzed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    estimated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    processing_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    llm_unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the processing first found the LLM provider unreachable with no answer since;
    cleared by any answer and when the processing (re)starts. See ``processing``."""
    batch_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The Message Batch in flight with this document's calls; NULL once its results are saved."""
    batch_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    batch_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the document's first batch was sent: its deadline counts from here."""
    batch_fallback: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the document's remaining calls go direct (deadline, expiry, errors); NULL while batched."""

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON-ready data, without the deferred columns (chunks, result)."""
        return {
            "id": self.id,
            "name": self.name,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "options": shown_options(self.options),
            "status": self.status,
            "analysis": self.analysis,
            "estimate": self.estimate,
            "cost_usd": self.cost_usd,
            "error_reason": self.error_reason,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "batch": self.batch_state(),
            **{name: _iso(getattr(self, name)) for name in STAGE_TIMESTAMPS},
            "updated_at": _iso(self.updated_at),
        }

    def batch_state(self) -> dict[str, Any] | None:
        """Where a document sent by Message Batches stands; None for one never batched."""
        if self.batch_started_at is None:
            return None
        return {
            "batch_id": self.batch_id,
            "submitted_at": _iso(self.batch_submitted_at),
            "started_at": _iso(self.batch_started_at),
            "fallback": self.batch_fallback,
        }

    def __repr__(self) -> str:
        return f"Document(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class DocumentEvent(Base):
    """One status change of one document."""

    __tablename__ = "document_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "document_id": self.document_id,
            "at": _iso(self.at),
            "from_status": self.from_status,
            "to_status": self.to_status,
            "message": self.message,
        }


class ChunkResult(Base):
    """The saved answer of one paid model call (a map over a chunk, or a reduce)."""

    __tablename__ = "document_chunk_results"
    __table_args__ = (UniqueConstraint("document_id", "phase", "chunk_index", name="uq_chunk_result"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(8))
    index: Mapped[int] = mapped_column("chunk_index", Integer)
    text: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    request_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    model: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
