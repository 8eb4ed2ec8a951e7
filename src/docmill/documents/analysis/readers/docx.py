"""DOCX: headings from paragraph styles (or outline levels), tables as rows (python-docx).

The archive is vetted by ``zipguard`` before python-docx sees it. A paragraph is a heading
when its style is a built-in heading style (``Heading 2`` -> level 2, whatever the UI
language) or when it or its style sets an outline level; the ``Title`` style gives the
document title.
"""

from __future__ import annotations

import io
import re
from typing import Any

import docx
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.zipguard import open_zip

CORRUPT_REASON = "The DOCX file is damaged and cannot be read; upload an intact copy."
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_W_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BODY_OUTLINE_LEVEL = 9


def read_docx(data: bytes) -> ParsedDocument:
    """Read a DOCX from bytes; raise ``AnalysisFailed`` when the package is hostile or broken."""
    open_zip(data).close()
    try:
        document = docx.Document(io.BytesIO(data))
        title = (document.core_properties.title or "").strip() or None
        blocks: list[Block] = []
        for item in document.iter_inner_content():
            if isinstance(item, DocxTable):
                rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in item.rows]
                if any(any(cell for cell in row) for row in rows):
                    blocks.append(Block.table(rows))
                continue
            text = " ".join(item.text.split())
            if not text:
                continue
            level = _heading_level(item)
            if level == 0:
                title = title or text
                blocks.append(Block.paragraph(text))
            elif level is not None:
                blocks.append(Block.heading(text, level))
            else:
                blocks.append(Block.paragraph(text))
    except AnalysisFailed:
        raise
    except Exception as exc:  # python-docx and lxml raise many unrelated types on broken input
        raise AnalysisFailed(FailureCode.CORRUPT, CORRUPT_REASON) from exc
    return ParsedDocument(DocumentKind.DOCX, blocks, title=title)


def _heading_level(paragraph: Paragraph) -> int | None:
    """1-9 for headings, 0 for the document title, ``None`` for body text."""
    style = paragraph.style
    name = style.name if style is not None and style.name else ""
    if name == "Title":
        return 0
    match = _HEADING_STYLE.match(name)
    if match:
        return max(1, int(match.group(1)))
    level = _outline_level(paragraph._p)
    if level is None and style is not None:
        level = _outline_level(style.element)
    if level is None or level >= _BODY_OUTLINE_LEVEL:
        return None
    return level + 1


def _outline_level(element: Any) -> int | None:
    node = element.find(f"{_W_NS}pPr/{_W_NS}outlineLvl")
    if node is None:
        return None
    try:
        return int(node.get(f"{_W_NS}val"))
    except (TypeError, ValueError):
        return None
