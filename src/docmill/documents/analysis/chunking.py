"""Heading-aware chunks sized to a token budget.

How a document is cut, in order of preference:

1. at section boundaries: a new section starts a new chunk when the current chunk is at
   least half full or the section would not fit in what is left;
2. between paragraphs (and tables) within a section;
3. between sentences of a paragraph too long for one chunk;
4. between words of a sentence too long for one chunk, and as a last resort inside a
   word (a base64 blob, say).

A chunk never ends with a heading: the heading moves to the next chunk with its text.
Each chunk carries the heading path its text shares (the common prefix of the paths of
its paragraphs and tables) and its page range. Token counts come from a ``TokenCounter``; with the default
estimate every chunk's ``tokens`` is within ``chunk_tokens``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docmill.documents.analysis.blocks import Block, BlockKind
from docmill.documents.analysis.model import Chunk
from docmill.documents.analysis.structure import heading_paths
from docmill.documents.analysis.tokens import EstimatingTokenCounter, TokenCounter

_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…][\"»”')\]]))\s+(?=[\"«“(\[]?[^\W_a-z\u0430-\u044f\u0451])"
    r"|\n\s*\n"
)
# Start a new chunk at a section boundary once the current one is this full.
SECTION_BREAK_FILL = 0.5
DEFAULT_CHUNK_TOKENS = 2_000
MIN_CHUNK_TOKENS = 64
MAX_CHUNK_TOKENS = 8_000


@dataclass(frozen=True)
class ChunkingOptions:
    """The token budget of one chunk."""

    chunk_tokens: int = DEFAULT_CHUNK_TOKENS

    def __post_init__(self) -> None:
        if self.chunk_tokens < MIN_CHUNK_TOKENS:
            raise ValueError(f"chunk_tokens must be at least {MIN_CHUNK_TOKENS}, got {self.chunk_tokens}")

    @classmethod
    def for_model(cls, model_context_tokens: int) -> ChunkingOptions:
        """A budget for a model's context window: a sixteenth of it, within 512..8000.

        The rest of the window holds the instructions, the running summary of a
        map-reduce and the answer; smaller chunks also make a failed call cheap to retry.
        """
        return cls(max(512, min(MAX_CHUNK_TOKENS, model_context_tokens // 16)))


@dataclass
class _Unit:
    text: str
    tokens: int
    path: list[str]
    page: int | None
    heading: bool = False
    joiner: str = "\n\n"


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _fit(text: str, budget: int, counter: TokenCounter) -> list[str]:
    """Cut ``text`` into pieces of at most ``budget`` tokens, at the largest boundary possible."""
    if counter.count(text) <= budget:
        return [text]
    for splitter, glue in ((split_sentences, " "), (str.split, " ")):
        parts = splitter(text)
        if len(parts) > 1:
            return _pack(
                [piece for part in parts for piece in _fit(part, budget, counter)], glue, budget, counter
            )
    size = budget
    while size > 1 and counter.count(text[:size]) > budget:
        size = size * 4 // 5
    return [text[start : start + size] for start in range(0, len(text), size)]


def _pack(parts: list[str], glue: str, budget: int, counter: TokenCounter) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for part in parts:
        cost = counter.count(part)
        if current and used + 1 + cost > budget:
            pieces.append(glue.join(current))
            current, used = [], 0
        used += cost + (1 if current else 0)
        current.append(part)
    if current:
        pieces.append(glue.join(current))
    return pieces


def _units(blocks: list[Block], budget: int, counter: TokenCounter) -> list[_Unit]:
    units: list[_Unit] = []
    for block, path in zip(blocks, heading_paths(blocks), strict=True):
        if block.kind is BlockKind.HEADING:
            for piece in _fit(block.text, budget, counter):
                units.append(_Unit(piece, counter.count(piece), path, block.page, heading=True))
            continue
        if not block.text.strip():
            continue
        glue = "\n" if block.kind is BlockKind.TABLE else " "
        source = block.text.split("\n") if block.kind is BlockKind.TABLE else [block.text]
        pieces = _pack(
            [piece for line in source for piece in _fit(line, budget, counter)], glue, budget, counter
        )
        for position, piece in enumerate(pieces):
            joiner = "\n\n" if position == 0 else glue
            units.append(_Unit(piece, counter.count(piece), path, block.page, joiner=joiner))
    return units


def _section_cost(units: list[_Unit], start: int) -> int:
    """Tokens from the heading at ``start`` up to the next heading."""
    total = units[start].tokens
    for unit in units[start + 1 :]:
        if unit.heading:
            break
        total += unit.tokens + 1
    return total


def chunk_blocks(
    blocks: list[Block], options: ChunkingOptions | None = None, counter: TokenCounter | None = None
) -> list[Chunk]:
    """Cut blocks into chunks of at most ``options.chunk_tokens`` tokens (see module docstring)."""
    options = options or ChunkingOptions()
    counter = counter or EstimatingTokenCounter()
    budget = options.chunk_tokens
    units = _units(blocks, budget, counter)
    chunks: list[Chunk] = []
    current: list[_Unit] = []
    used = 0

    def flush() -> list[_Unit]:
        """Emit the current chunk, holding back trailing headings for the next one."""
        held: list[_Unit] = []
        while current and current[-1].heading:
            held.insert(0, current.pop())
        if current:
            chunks.append(_make_chunk(len(chunks), current, counter))
        current.clear()
        return held

    for index, unit in enumerate(units):
        section_start = unit.heading and (index == 0 or not units[index - 1].heading)
        too_big = used + 1 + unit.tokens > budget
        at_boundary = section_start and (
            used >= budget * SECTION_BREAK_FILL or used + 1 + _section_cost(units, index) > budget
        )
        if current and (too_big or at_boundary):
            current.extend(held := flush())
            used = sum(item.tokens for item in held) + max(len(held) - 1, 0)
            if held and used + 1 + unit.tokens > budget:
                # Headings and the text after them cannot share a chunk: keep the headings alone.
                chunks.append(_make_chunk(len(chunks), current, counter))
                current.clear()
                used = 0
        used += unit.tokens + (1 if current else 0)
        current.append(unit)
    flush()
    return chunks


def _make_chunk(index: int, units: list[_Unit], counter: TokenCounter) -> Chunk:
    text = units[0].text + "".join(unit.joiner + unit.text for unit in units[1:])
    # Headings only set the path when the chunk holds nothing else.
    located = [unit for unit in units if not unit.heading] or units
    path = list(located[0].path)
    for unit in located[1:]:
        common = 0
        while common < min(len(path), len(unit.path)) and path[common] == unit.path[common]:
            common += 1
        path = path[:common]
    pages = [unit.page for unit in units if unit.page is not None]
    return Chunk(
        index=index,
        text=text,
        heading_path=path,
        page_start=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        tokens=counter.count(text),
        char_count=len(text),
    )
