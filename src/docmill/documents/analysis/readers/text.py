"""Plain text in any common encoding: paragraphs by blank lines, headings by evidence.

Decoding happened during detection (``encoding.decode_text``). Headings are decided over
the whole document, not line by line (see ``text_evidence`` for what one line shows):

1. A line underlined with ``===`` (level 1) or ``---`` (level 2) is a heading.
2. A table of contents is found and kept as text: a ``Contents``/``Содержание`` line and
   the entries after it, up to where its first entry appears again as a real heading; or,
   without such a line, a run of three or more heading-shaped lines with no text between
   them that all appear again later.
3. Numbered lines (first in their paragraph, not part of a numbered list) are headings, and
   their schemes decide the levels: parts above chapters, ``Chapter 3``/``Глава 12`` the
   same level as ``3.``, then ``3.1``, ``3.1.2``... by depth. Where sections restart their
   numbering inside chapters (``Chapter 2`` then ``1. Scope``), chapters are a level above.
4. Unnumbered lines: in a numbered document, an all-capitals line is a subsection of the
   numbered section it sits in, and other title-like lines are text; in a document without
   numbering, capitals are level 1 and a title-like line standing alone level 2.
5. Machine output, key/value pairs and navigation lines are never headings.

An all-capitals line opening the file is the document's title and stays in the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.readers import text_evidence as evidence

_UNDERLINE = re.compile(r"^\s*(=+|-+)\s*$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
MIN_TOC_RUN = 3


@dataclass
class _Line:
    raw: str
    text: str
    paragraph: int
    first: bool  # opens its paragraph (or follows an underlined heading)
    alone: bool  # the only line of its paragraph
    underline: int | None = None  # level set by an underline on the next line
    numbering: evidence.Numbering | None = None
    heading: bool = False
    level: int = 0
    toc: bool = False  # part of a table of contents


def read_text(text: str, encoding: str | None = None) -> ParsedDocument:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    lines = _lines(text)
    title: str | None = None
    if lines and lines[0].alone and evidence.is_capitals(lines[0].text) and not lines[0].underline:
        title = lines[0].text  # the document's title, not its first section
    in_toc = _table_of_contents(lines)
    _mark_candidates(lines, in_toc, skip_first=title is not None)
    in_toc |= _unmarked_table_of_contents(lines)
    for index in in_toc:
        lines[index].heading, lines[index].toc = False, True
    _assign_levels(lines)
    blocks = _blocks(lines)
    title = title or next((block.text for block in blocks if block.kind == "heading"), None)
    return ParsedDocument(DocumentKind.TEXT, blocks, title=title, encoding=encoding)


def _lines(text: str) -> list[_Line]:
    found: list[_Line] = []
    for paragraph, raw_block in enumerate(_PARAGRAPH_BREAK.split(text)):
        raws = [line.rstrip() for line in raw_block.strip("\n").split("\n") if line.strip()]
        first = True
        position = 0
        while position < len(raws):
            raw = raws[position]
            underline = None
            following = raws[position + 1] if position + 1 < len(raws) else ""
            rule = _UNDERLINE.match(following)
            if rule and len(following.strip()) >= 3 and not _UNDERLINE.match(raw):
                underline = 1 if "=" in rule.group(1) else 2
            alone = len(raws) == 1 or (underline is not None and len(raws) == 2)
            found.append(_Line(raw, raw.strip(), paragraph, first, alone, underline))
            first = underline is not None
            position += 2 if underline is not None else 1
    return found


def _table_of_contents(lines: list[_Line]) -> set[int]:
    """Lines of a table of contents introduced by a Contents/Содержание line."""
    toc: set[int] = set()
    index = 0
    while index < len(lines):
        if not (lines[index].first and evidence.is_toc_header(lines[index].text)):
            index += 1
            continue
        entries = index + 1
        if entries >= len(lines) or not _toc_entry(lines[entries].text):
            index += 1  # a "Contents" line with no entries after it is just a line
            continue
        first_entry = evidence.normalise(lines[entries].text)
        end = next(
            (j for j in range(entries + 1, len(lines)) if evidence.normalise(lines[j].text) == first_entry),
            None,
        )
        if end is None:  # the entries never appear again: take the entry-shaped lines
            end = entries
            while end < len(lines) and _toc_entry(lines[end].text):
                end += 1
        toc.update(range(index, end))
        index = end
    return toc


def _toc_entry(line: str) -> bool:
    return (
        evidence.has_page_reference(line)
        or evidence.numbering(evidence.without_page_reference(line)) is not None
        or evidence.is_title_like(line)
        or evidence.is_capitals(line)
    )


def _mark_candidates(lines: list[_Line], in_toc: set[int], *, skip_first: bool) -> None:
    """Mark the lines that show evidence of being headings (levels come later)."""
    for index, line in enumerate(lines):
        if index in in_toc or (skip_first and index == 0) or not line.first:
            continue
        following = lines[index + 1] if index + 1 < len(lines) else None
        numbered = evidence.numbering(line.text)
        if numbered is not None and line.underline is None:
            in_list = (
                following is not None
                and following.paragraph == line.paragraph
                and (evidence.numbering(following.text) is not None)
            )
            if not in_list and not evidence.never_heading(line.raw, numbered=True):
                line.numbering, line.heading = numbered, True
            continue
        if evidence.never_heading(line.raw, numbered=False):
            continue
        line.heading = (
            line.underline is not None
            or evidence.is_capitals(line.text)
            or (line.alone and evidence.is_title_like(line.text))
        )


def _unmarked_table_of_contents(lines: list[_Line]) -> set[int]:
    """Runs of heading-shaped lines with no text between them that all recur later."""
    toc: set[int] = set()
    index = 0
    while index < len(lines):
        end = index
        opening = evidence.normalise(lines[index].text)
        while end < len(lines) and lines[end].heading:
            end += 1
            if end < len(lines) and evidence.normalise(lines[end].text) == opening:
                break  # the list's first entry again: the sections themselves start here
        if end - index >= MIN_TOC_RUN:
            later = {evidence.normalise(line.text) for line in lines[end:] if line.heading}
            if all(evidence.normalise(line.text) in later for line in lines[index:end]):
                toc.update(range(index, end))
        index = max(end, index + 1)
    return toc


def _assign_levels(lines: list[_Line]) -> None:
    level_of = _numbering_levels([line.numbering for line in lines if line.heading and line.numbering])
    open_level = 0  # the level of the numbered (or underlined) section the text is in
    for line in lines:
        if not line.heading:
            continue
        if line.numbering is not None and level_of is not None:
            line.level = level_of(line.numbering)
            open_level = line.level
        elif line.underline is not None:
            line.level = line.underline
            open_level = line.level
        elif level_of is None:
            line.level = 1 if evidence.is_capitals(line.text) else 2
        elif evidence.is_capitals(line.text):
            line.level = min(open_level + 1, 6)
        else:
            line.heading = False


def _numbering_levels(schemes: list[evidence.Numbering]) -> Callable[[evidence.Numbering], int] | None:
    """Level of each numbering scheme present, in tree order: parts, chapters, 1., 1.1, ..."""
    if not schemes:
        return None
    chapters_above = any(scheme.chapter for scheme in schemes) and _sections_restart(schemes)

    def rank(scheme: evidence.Numbering) -> tuple[int, int]:
        return (0, 1) if chapters_above and scheme.chapter and scheme.rank == (1, 1) else scheme.rank

    ordered = sorted({rank(scheme) for scheme in schemes})
    levels = {value: min(position, 6) for position, value in enumerate(ordered, start=1)}
    return lambda scheme: levels[rank(scheme)]


def _sections_restart(schemes: list[evidence.Numbering]) -> bool:
    """Whether single-number sections count afresh inside chapters (Chapter 2, then 1. Scope)."""
    chapter: str | None = None
    for scheme in schemes:
        if scheme.chapter and scheme.rank == (1, 1):
            chapter = scheme.number
        elif chapter is not None and scheme.rank == (1, 1) and scheme.number != chapter:
            return True
    return False


def _blocks(lines: list[_Line]) -> list[Block]:
    blocks: list[Block] = []
    paragraph: list[str] = []
    current = -1

    def flush() -> None:
        if paragraph:
            blocks.append(Block.paragraph("\n".join(paragraph)))
            paragraph.clear()

    previous_toc = False
    for line in lines:
        if line.paragraph != current and not (line.toc and previous_toc):
            flush()
        current, previous_toc = line.paragraph, line.toc
        if line.heading:
            flush()
            blocks.append(Block.heading(line.text, line.level))
        else:
            paragraph.append(line.text)
    flush()
    return blocks
