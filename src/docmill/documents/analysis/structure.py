"""From a reader's blocks to the section tree, the table list and the counts.

Headings open sections; a heading closes every open section of the same or a deeper
level, so skipped levels (an h1 followed by an h3) still nest. Text before the first
heading becomes a level-0 section with an empty title.
"""

from __future__ import annotations

import re

from docmill.documents.analysis.blocks import Block, BlockKind
from docmill.documents.analysis.model import Counts, Section, Table

WORD = re.compile(r"\w+(?:[-'\u2019]\w+)*")
PREVIEW_ROWS = 3
PREVIEW_COLS = 8
PREVIEW_CELL_CHARS = 40


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def block_text(block: Block) -> str:
    """The text a block contributes to counts (table cells without separators)."""
    if block.kind is BlockKind.TABLE:
        return " ".join(cell for row in block.rows for cell in row if cell)
    return block.text


def heading_paths(blocks: list[Block]) -> list[list[str]]:
    """For each block, the titles of the headings it sits under (a heading includes itself)."""
    stack: list[tuple[int, str]] = []
    paths: list[list[str]] = []
    for block in blocks:
        if block.kind is BlockKind.HEADING:
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
        paths.append([title for _, title in stack])
    return paths


def build_sections(blocks: list[Block]) -> list[Section]:
    roots: list[Section] = []
    stack: list[Section] = []
    for block in blocks:
        if block.kind is BlockKind.HEADING:
            while stack and stack[-1].level >= block.level:
                stack.pop()
            path = [*(section.title for section in stack), block.text]
            section = Section(block.text, block.level, path, page_start=block.page, page_end=block.page)
            (stack[-1].children if stack else roots).append(section)
            stack.append(section)
            continue
        if not stack:
            if not roots or roots[0].level != 0:
                roots.insert(0, Section("", 0, []))
            target = roots[0]
        else:
            target = stack[-1]
        text = block_text(block)
        target.char_count += len(text)
        target.word_count += count_words(text)
        if block.page is not None:
            target.page_start = (
                block.page if target.page_start is None else min(target.page_start, block.page)
            )
            target.page_end = block.page if target.page_end is None else max(target.page_end, block.page)
    for root in roots:
        _roll_up(root)
    return roots


def _roll_up(section: Section) -> None:
    """Fill totals and widen page ranges to cover the subsections."""
    section.total_char_count = section.char_count
    for child in section.children:
        _roll_up(child)
        section.total_char_count += child.total_char_count
        for page in (child.page_start, child.page_end):
            if page is None:
                continue
            section.page_start = page if section.page_start is None else min(section.page_start, page)
            section.page_end = page if section.page_end is None else max(section.page_end, page)


def build_tables(blocks: list[Block], paths: list[list[str]]) -> list[Table]:
    tables: list[Table] = []
    for block, path in zip(blocks, paths, strict=True):
        if block.kind is not BlockKind.TABLE:
            continue
        preview = [[_clip(cell) for cell in row[:PREVIEW_COLS]] for row in block.rows[:PREVIEW_ROWS]]
        cols = max((len(row) for row in block.rows), default=0)
        tables.append(Table(list(path), rows=len(block.rows), cols=cols, preview=preview, page=block.page))
    return tables


def _clip(cell: str) -> str:
    return cell if len(cell) <= PREVIEW_CELL_CHARS else cell[: PREVIEW_CELL_CHARS - 1] + "…"


def build_counts(blocks: list[Block], pages: int | None, sections: list[Section], tables: int) -> Counts:
    words = characters = 0
    for block in blocks:
        text = block_text(block)
        words += count_words(text)
        characters += len(text)
    headed = sum(1 for root in sections for section in root.walk() if section.level > 0)
    return Counts(pages=pages, words=words, characters=characters, sections=headed, tables=tables)
