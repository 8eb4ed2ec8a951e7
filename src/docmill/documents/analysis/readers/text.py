"""Plain text in any common encoding: paragraphs by blank lines, headings by heuristics.

Decoding happened during detection (``encoding.decode_text``). A paragraph that is a
single title-like line, a line underlined with ``===`` or ``---``, or a numbered or
all-capitals first line of a paragraph is a heading (see ``layout``). An all-capitals
line opening the file is the document's title and stays in the text as a paragraph.
"""

from __future__ import annotations

import re

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.readers import layout

_UNDERLINE = re.compile(r"^\s*(=+|-+)\s*$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def read_text(text: str, encoding: str | None = None) -> ParsedDocument:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    blocks: list[Block] = []
    title: str | None = None
    for raw in _PARAGRAPH_BREAK.split(text):
        lines = [line.rstrip() for line in raw.strip("\n").split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) >= 2 and _UNDERLINE.match(lines[1]) and len(lines[1].strip()) >= 3:
            blocks.append(Block.heading(lines[0].strip(), 1 if "=" in lines[1] else 2))
            lines = lines[2:]
            if not lines:
                continue
        first = lines[0].strip()
        level = layout.text_heading_level(first, standalone=len(lines) == 1)
        next_is_item = len(lines) > 1 and layout.numbered_level(lines[1]) is not None
        if not blocks and len(lines) == 1 and layout.is_caps_heading(first):
            # An all-capitals first line is the document's title, not its first section.
            title = first
        elif level is not None and not (next_is_item and layout.numbered_level(first) is not None):
            blocks.append(Block.heading(first, level))
            lines = lines[1:]
        if lines:
            blocks.append(Block.paragraph("\n".join(line.strip() for line in lines)))
    title = title or next((block.text for block in blocks if block.kind == "heading"), None)
    return ParsedDocument(DocumentKind.TEXT, blocks, title=title, encoding=encoding)
