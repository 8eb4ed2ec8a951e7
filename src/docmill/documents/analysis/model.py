"""The result of analysis: a document's structure, as plain dataclasses.

Everything here is JSON-serialisable through ``to_dict`` and rebuilt by
``DocumentStructure.from_dict``; that round trip is how the sandbox child hands its
result to the parent, and how the documents database stores it.

Conventions:

- ``level`` is the heading depth, 1 for the top; level 0 is the text before the first
  heading (a section with an empty title and an empty heading path).
- Pages are 1-based and inclusive; they are ``None`` for formats without pages
  (DOCX, HTML, Markdown, text).
- ``char_count`` counts a section's own text; ``total_char_count`` adds its subsections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class DocumentKind(StrEnum):
    """A format analysis can read, as detected from the bytes."""

    PDF = "pdf"
    DOCX = "docx"
    PPTX = "pptx"
    XLSX = "xlsx"
    EPUB = "epub"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


@dataclass
class Section:
    """A heading and the text under it, with its subsections as children."""

    title: str
    level: int
    heading_path: list[str]
    page_start: int | None = None
    page_end: int | None = None
    char_count: int = 0
    total_char_count: int = 0
    word_count: int = 0
    children: list[Section] = field(default_factory=list)

    def walk(self) -> list[Section]:
        """This section and all its descendants, in document order."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            title=data["title"],
            level=data["level"],
            heading_path=list(data["heading_path"]),
            page_start=data["page_start"],
            page_end=data["page_end"],
            char_count=data["char_count"],
            total_char_count=data["total_char_count"],
            word_count=data["word_count"],
            children=[cls.from_dict(child) for child in data["children"]],
        )


@dataclass
class Table:
    """A table found in the document: where it sits, its size, and its first rows."""

    heading_path: list[str]
    rows: int
    cols: int
    preview: list[list[str]]
    page: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Table:
        return cls(
            heading_path=list(data["heading_path"]),
            rows=data["rows"],
            cols=data["cols"],
            preview=[list(row) for row in data["preview"]],
            page=data["page"],
        )


@dataclass
class Chunk:
    """A piece of the document sized for one model call, with where it came from."""

    index: int
    text: str
    heading_path: list[str]
    page_start: int | None
    page_end: int | None
    tokens: int
    char_count: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            index=data["index"],
            text=data["text"],
            heading_path=list(data["heading_path"]),
            page_start=data["page_start"],
            page_end=data["page_end"],
            tokens=data["tokens"],
            char_count=data["char_count"],
        )


@dataclass
class Counts:
    """Sizes of the document; ``pages`` is ``None`` where the format has no pages."""

    pages: int | None
    words: int
    characters: int
    sections: int
    tables: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        return cls(**{name: data[name] for name in ("pages", "words", "characters", "sections", "tables")})


@dataclass
class Language:
    """The detected main language: an ISO 639-1 code or ``"und"``, and a 0..1 confidence."""

    code: str
    confidence: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Language:
        return cls(code=data["code"], confidence=data["confidence"])


@dataclass
class OcrInfo:
    """Pages whose text was read from their image by OCR, and how sure the engine was."""

    pages: list[int]
    engine: str
    mean_confidence: float  # mean word confidence, 0..100

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OcrInfo:
        return cls(pages=list(data["pages"]), engine=data["engine"], mean_confidence=data["mean_confidence"])


@dataclass
class DocumentStructure:
    """Everything analysis found in one document."""

    kind: DocumentKind
    title: str | None
    sections: list[Section]
    tables: list[Table]
    counts: Counts
    language: Language
    chunks: list[Chunk]
    chunk_tokens: int
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    ocr: OcrInfo | None = None

    def all_sections(self) -> list[Section]:
        """Every section of the tree, flattened in document order."""
        found: list[Section] = []
        for section in self.sections:
            found.extend(section.walk())
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums become their string values)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentStructure:
        return cls(
            kind=DocumentKind(data["kind"]),
            title=data["title"],
            sections=[Section.from_dict(item) for item in data["sections"]],
            tables=[Table.from_dict(item) for item in data["tables"]],
            counts=Counts.from_dict(data["counts"]),
            language=Language.from_dict(data["language"]),
            chunks=[Chunk.from_dict(item) for item in data["chunks"]],
            chunk_tokens=data["chunk_tokens"],
            encoding=data["encoding"],
            warnings=list(data["warnings"]),
            ocr=OcrInfo.from_dict(data["ocr"]) if data.get("ocr") else None,
        )
