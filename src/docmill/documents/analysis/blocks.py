"""What every reader produces: the document as a flat list of blocks in reading order.

Readers only recognise headings, paragraphs and tables; building the section tree,
counting and chunking happen once, on blocks, whatever the format was
(see ``structure`` and ``chunking``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from docmill.documents.analysis.model import DocumentKind, OcrInfo


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    TABLE = "table"


@dataclass
class Block:
    """One heading, paragraph or table; ``page`` is 1-based or ``None`` without pages."""

    kind: BlockKind
    text: str = ""
    level: int = 0
    page: int | None = None
    rows: list[list[str]] = field(default_factory=list)

    @classmethod
    def heading(cls, text: str, level: int, page: int | None = None) -> Block:
        return cls(BlockKind.HEADING, text=text, level=max(1, level), page=page)

    @classmethod
    def paragraph(cls, text: str, page: int | None = None) -> Block:
        return cls(BlockKind.PARAGRAPH, text=text, page=page)

    @classmethod
    def table(cls, rows: list[list[str]], page: int | None = None) -> Block:
        width = max((len(row) for row in rows), default=0)
        padded = [row + [""] * (width - len(row)) for row in rows]
        text = "\n".join(" | ".join(cell for cell in row) for row in padded)
        return cls(BlockKind.TABLE, text=text, page=page, rows=padded)


@dataclass
class ParsedDocument:
    """A reader's output: blocks plus what the format itself says about the document."""

    kind: DocumentKind
    blocks: list[Block]
    title: str | None = None
    pages: int | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    ocr: OcrInfo | None = None  # set when page text was read from images
