"""Markdown: ATX (``## Title``) and setext (underlined) headings, pipe tables, fenced code.

Paragraphs keep their Markdown (a model reads it well); heading titles and table cells
lose inline markup. A YAML front matter block is skipped, its ``title:`` kept.
"""

from __future__ import annotations

import re

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.model import DocumentKind

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_LIST_ITEM = re.compile(r"^[ \t]*([-*+]|\d{1,3}[.)])[ \t]+")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(.+?)\1")
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.I)


def strip_inline(text: str) -> str:
    """Plain text of inline Markdown: links become their label, emphasis and code marks go."""
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


def _cells(line: str) -> list[str]:
    stripped = line.strip()
    stripped = stripped.removeprefix("|").removesuffix("|")
    return [strip_inline(cell.replace("\\|", "|")) for cell in re.split(r"(?<!\\)\|", stripped)]


def read_markdown(text: str, encoding: str | None = None) -> ParsedDocument:
    lines = text.lstrip("\ufeff").splitlines()
    blocks: list[Block] = []
    title: str | None = None
    index = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, min(len(lines), 60)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            for line in lines[1:end]:
                match = _FRONT_TITLE.match(line)
                if match:
                    title = match.group(1) or None
            index = end + 1
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block.paragraph("\n".join(paragraph).strip()))
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith(marker[:3]):
                end += 1
            code = "\n".join(lines[index + 1 : end]).strip("\n")
            if code.strip():
                blocks.append(Block.paragraph(code))
            index = end + 1
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            heading = strip_inline(atx.group(2) or "")
            if heading:
                blocks.append(Block.heading(heading, len(atx.group(1))))
            index += 1
            continue
        setext = _SETEXT.match(line)
        if setext and paragraph and not _LIST_ITEM.match(paragraph[0]):
            heading = strip_inline(" ".join(paragraph))
            paragraph.clear()
            blocks.append(Block.heading(heading, 1 if setext.group(1)[0] == "=" else 2))
            index += 1
            continue
        if "|" in line and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1]):
            flush()
            rows = [_cells(line)]
            index += 2
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                rows.append(_cells(lines[index]))
                index += 1
            blocks.append(Block.table(rows))
            continue
        if not line.strip() or (setext and not paragraph):
            flush()
        else:
            if _LIST_ITEM.match(line):
                flush()
            paragraph.append(line.rstrip())
        index += 1
    flush()
    if title is None:
        title = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), None)
    return ParsedDocument(DocumentKind.MARKDOWN, blocks, title=title, encoding=encoding)
