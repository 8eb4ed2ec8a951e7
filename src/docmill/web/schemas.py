"""The JSON the HTTP API speaks, as pydantic models: the response schemas of ``/docs``.

Documents come from the service as ``Document`` rows; ``DocumentDetail.build`` and
``DocumentItem.build`` turn them into these models, so the shape of the API is written
down here once and not scattered over the routes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docmill.documents.models import Document, DocumentEvent
from docmill.documents.options import shown_options
from docmill.documents.service import Page
from docmill.documents.status import Status


class ErrorDetail(BaseModel):
    type: str = Field(description="A stable, machine-readable name: not_found, invalid_transition, ...")
    message: str = Field(description="One sentence: what happened and what to do.")
    document_id: int | None = Field(default=None, description="The document the error is about, if any.")


class ErrorBody(BaseModel):
    """Every error the API answers with."""

    error: ErrorDetail


class ProgressOut(BaseModel):
    done: int = Field(description="Model calls finished.")
    total: int = Field(description="Model calls planned (0 before the estimate).")
    fraction: float = Field(ge=0, le=1)


class Counts(BaseModel):
    pages: int | None = None
    words: int = 0
    characters: int = 0
    sections: int = 0
    tables: int = 0


class AnalysisSummary(BaseModel):
    """What analysis found, without the section tree and chunk list."""

    kind: str = Field(description="The detected format: pdf, docx, html, markdown, text, ...")
    title: str | None = None
    language: str | None = Field(default=None, description="ISO 639-1 code, or 'und'.")
    language_confidence: float | None = None
    counts: Counts
    chunks: int = Field(description="Chunks the document was cut into for the model.")
    chunk_tokens: int | None = Field(default=None, description="Target tokens per chunk.")
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def build(cls, analysis: dict[str, Any]) -> AnalysisSummary:
        language = analysis.get("language") or {}
        return cls(
            kind=str(analysis.get("kind", "unknown")),
            title=analysis.get("title"),
            language=language.get("code"),
            language_confidence=language.get("confidence"),
            counts=Counts(**(analysis.get("counts") or {})),
            chunks=len(analysis.get("chunks") or ()),
            chunk_tokens=analysis.get("chunk_tokens"),
            warnings=list(analysis.get("warnings") or ()),
        )


class CallCounts(BaseModel):
    map: int = 0
    reduce: int = 0
    total: int = 0


class Estimate(BaseModel):
    """What processing will take, as estimated after analysis (further keys may appear)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    provider: str | None = None
    offline: bool | None = None
    model: str | None = None
    profile: str | None = None
    chunks: int | None = None
    calls: CallCounts | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(
        default=None, description="Estimated cost; null when the model has no known price (see price_note)."
    )
    cost_usd_cached: float | None = Field(
        default=None, description="The cost with prompt caching; null where no prefix would be cached."
    )
    price_known: bool | None = None
    price_note: str | None = Field(
        default=None, description="Why the price is unknown or provisional, and how to set it."
    )
    eta_s: float | None = Field(default=None, description="Seconds until done, queue wait included.")


class DocumentItem(BaseModel):
    """A document in a listing."""

    id: int
    name: str = Field(description="The uploaded file's name, cleaned: never a path.")
    content_type: str
    size_bytes: int
    status: Status
    profile: str
    cost_usd: float = Field(description="Money spent on model calls so far.")
    estimated_cost_usd: float | None = None
    progress: ProgressOut
    error: str | None = Field(default=None, description="Why the document failed.")
    uploaded_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, document: Document) -> DocumentItem:
        return cls(**_item_fields(document))


class DocumentDetail(DocumentItem):
    """Everything about one document except its result."""

    sha256: str
    options: dict[str, Any] = Field(
        description="The upload options (profile, model, callback_url with its secrets masked, ...)."
    )
    analysis: AnalysisSummary | None = None
    estimate: Estimate | None = None
    eta_s: float | None = None
    analyzed_at: datetime | None = None
    estimated_at: datetime | None = None
    approved_at: datetime | None = None
    processing_started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancelled_at: datetime | None = None
    batch: dict[str, Any] | None = Field(
        None,
        description="For a document sent by Message Batches: the batch in flight (batch_id, "
        "submitted_at), when the first was sent (started_at), and why the rest went direct (fallback).",
    )

    @classmethod
    def build(cls, document: Document) -> DocumentDetail:
        return cls(
            **_item_fields(document),
            sha256=document.sha256,
            options=shown_options(document.options),
            analysis=AnalysisSummary.build(document.analysis) if document.analysis else None,
            estimate=Estimate.model_validate(document.estimate) if document.estimate else None,
            eta_s=(document.estimate or {}).get("eta_s"),
            analyzed_at=document.analyzed_at,
            estimated_at=document.estimated_at,
            approved_at=document.approved_at,
            processing_started_at=document.processing_started_at,
            completed_at=document.completed_at,
            failed_at=document.failed_at,
            cancelled_at=document.cancelled_at,
            batch=document.batch_state(),
        )


class DocumentPage(BaseModel):
    """One page of documents, newest first."""

    items: list[DocumentItem]
    total: int = Field(description="Documents matching the filter, on every page.")
    offset: int
    limit: int

    @classmethod
    def build(cls, page: Page) -> DocumentPage:
        return cls(
            items=[DocumentItem.build(d) for d in page.items],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )


class DocumentEventOut(BaseModel):
    """One status change; ``id`` is the cursor a reconnecting stream sends as Last-Event-ID."""

    id: int
    document_id: int
    at: datetime
    from_status: Status | None
    to_status: Status
    message: str

    @classmethod
    def build(cls, event: DocumentEvent) -> DocumentEventOut:
        return cls(
            id=event.id,
            document_id=event.document_id,
            at=event.at,
            from_status=Status(event.from_status) if event.from_status else None,
            to_status=Status(event.to_status),
            message=event.message,
        )


class ResultOut(BaseModel):
    document_id: int
    result: dict[str, Any] = Field(description="The profile's result: a summary, extracted fields, ...")


class SectionOut(BaseModel):
    """One section of the tree, flattened in document order; ``parent`` rebuilds the tree."""

    index: int = Field(description="Position among all sections in document order, from 0.")
    parent: int | None = Field(description="Index of the enclosing section; null at the top.")
    level: int = Field(description="Heading depth, 1 for the top; 0 is the text before any heading.")
    title: str
    heading_path: list[str] = Field(description="Titles from the top section down to this one.")
    page_start: int | None = Field(description="First page (1-based); null for formats without pages.")
    page_end: int | None = None
    char_count: int = Field(description="Characters of the section's own text.")
    total_char_count: int = Field(description="Characters with its subsections.")
    word_count: int
    subsections: int = Field(description="Direct subsections.")


class TableOut(BaseModel):
    index: int
    heading_path: list[str] = Field(description="The section the table sits in.")
    page: int | None = None
    rows: int
    cols: int
    preview: list[list[str]] = Field(description="The first rows, cells clipped.")


class ChunkOut(BaseModel):
    """One piece of the document sized for a model call (its text is not served)."""

    index: int
    heading_path: list[str]
    page_start: int | None = None
    page_end: int | None = None
    tokens: int
    char_count: int


class LanguageOut(BaseModel):
    code: str = Field(description="ISO 639-1 code, or 'und'.")
    confidence: float


class OcrOut(BaseModel):
    """Pages whose text was read from their image by OCR."""

    pages: list[int] = Field(description="The pages read by OCR (1-based).")
    engine: str = Field(description="The OCR engine and its version.")
    mean_confidence: float = Field(description="Mean word confidence, 0..100.")


class StructureOut(BaseModel):
    """A document's structure. Sections, tables and chunks are each paged by the same
    ``offset`` and ``limit``; ask again with ``next_offset`` until it is null."""

    document_id: int
    kind: str = Field(description="The detected format: pdf, docx, html, markdown, text, ...")
    title: str | None = None
    language: LanguageOut
    counts: Counts
    chunk_tokens: int | None = Field(default=None, description="Target tokens per chunk.")
    warnings: list[str] = Field(default_factory=list)
    ocr: OcrOut | None = Field(default=None, description="Present when page text was read by OCR.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")
    sections_total: int
    tables_total: int
    chunks_total: int
    sections: list[SectionOut]
    tables: list[TableOut]
    chunks: list[ChunkOut]

    @classmethod
    def build(cls, document_id: int, analysis: dict[str, Any], *, offset: int, limit: int) -> StructureOut:
        sections = flatten_sections(analysis.get("sections") or [])
        tables = analysis.get("tables") or []
        chunks = analysis.get("chunks") or []
        end = offset + limit
        longest = max(len(sections), len(tables), len(chunks))
        language = analysis.get("language") or {"code": "und", "confidence": 0.0}
        ocr = analysis.get("ocr")
        return cls(
            document_id=document_id,
            kind=str(analysis.get("kind", "unknown")),
            title=analysis.get("title"),
            language=LanguageOut(**language),
            counts=Counts(**(analysis.get("counts") or {})),
            chunk_tokens=analysis.get("chunk_tokens"),
            warnings=list(analysis.get("warnings") or ()),
            ocr=OcrOut(**ocr) if ocr else None,
            offset=offset,
            limit=limit,
            next_offset=end if end < longest else None,
            sections_total=len(sections),
            tables_total=len(tables),
            chunks_total=len(chunks),
            sections=sections[offset:end],
            tables=[
                TableOut(
                    index=offset + position,
                    heading_path=table["heading_path"],
                    page=table.get("page"),
                    rows=table["rows"],
                    cols=table["cols"],
                    preview=table["preview"],
                )
                for position, table in enumerate(tables[offset:end])
            ],
            chunks=[
                ChunkOut(**{key: chunk.get(key) for key in ChunkOut.model_fields})
                for chunk in chunks[offset:end]
            ],
        )


def flatten_sections(tree: list[dict[str, Any]]) -> list[SectionOut]:
    """The stored section tree as a list in document order, each section naming its parent."""
    flat: list[SectionOut] = []
    pending: list[tuple[dict[str, Any], int | None]] = [(section, None) for section in reversed(tree)]
    while pending:
        section, parent = pending.pop()
        index = len(flat)
        children = section.get("children") or []
        flat.append(
            SectionOut(
                index=index,
                parent=parent,
                level=section["level"],
                title=section["title"],
                heading_path=section["heading_path"],
                page_start=section.get("page_start"),
                page_end=section.get("page_end"),
                char_count=section.get("char_count", 0),
                total_char_count=section.get("total_char_count", 0),
                word_count=section.get("word_count", 0),
                subsections=len(children),
            )
        )
        pending.extend((child, index) for child in reversed(children))
    return flat


class ComponentHealth(BaseModel):
    ok: bool
    error: str | None = Field(default=None, description="The kind of failure, when not ok.")


class LLMCallsStopped(BaseModel):
    """Calls to the LLM API stopped on every worker by a spend-limit, billing or key error."""

    kind: Literal["spend_limit", "credentials"]
    since: str = Field(description="When the calls stopped (UTC).")
    resume: str = Field(description="The command that lets the workers call the API again.")


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: ComponentHealth
    queue: ComponentHealth
    llm_calls_stopped: LLMCallsStopped | None = Field(
        default=None, description="Present only while LLM calls are stopped; the API itself is up."
    )


class LiveOut(BaseModel):
    """The process answers: nothing else is checked."""

    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    """Whether the documents database and the job queue both answer."""

    status: Literal["ok", "unavailable"]
    failed: list[Literal["database", "queue"]] = Field(description="What does not answer; empty when ready.")


def _item_fields(document: Document) -> dict[str, Any]:
    """The listing fields; progress is counted as ``DocumentService.progress`` counts it."""
    estimate = document.estimate or {}
    total = document.progress_total or int((estimate.get("calls") or {}).get("total", 0))
    done = document.progress_done
    fraction = 1.0 if document.status == Status.COMPLETED else (min(1.0, done / total) if total else 0.0)
    return {
        "id": document.id,
        "name": document.name,
        "content_type": document.content_type,
        "size_bytes": document.size_bytes,
        "status": Status(document.status),
        "profile": str((document.options or {}).get("profile", "summary")),
        "cost_usd": document.cost_usd,
        "estimated_cost_usd": estimate.get("cost_usd"),
        "progress": ProgressOut(done=done, total=total, fraction=fraction),
        "error": document.error_reason,
        "uploaded_at": document.uploaded_at,
        "updated_at": document.updated_at,
    }
