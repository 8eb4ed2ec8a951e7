"""Layout heuristics for PDFs without an outline (plain text has its own: ``text``).

A line is taken for a heading when it looks like one on its own:

- a numbered heading, ``2.``, ``2.1``, ``2.1.3 Title`` -> level = depth of the number;
- an all-capitals line of a few words -> level 1.

PDF lines also carry their font size; there a line set clearly larger than the body text
is a heading, with levels given by the rank of its size (see ``levels_by_size``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

NUMBERED_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?[ \t]+(\S.*)$")
_TERMINAL = (".", ",", ";", ":", "!", "?", "…")
MAX_HEADING_CHARS = 90
MAX_HEADING_WORDS = 12
# A line this much larger than the body size is set as a heading.
HEADING_SIZE_RATIO = 1.12


def _words(line: str) -> int:
    return len(line.split())


def numbered_level(line: str) -> int | None:
    """Depth of a numbered heading (``3.2 Scope`` -> 2), or ``None``."""
    match = NUMBERED_HEADING.match(line.strip())
    if not match:
        return None
    title = match.group(2)
    if not title[0].isupper() or title.rstrip().endswith(_TERMINAL[:3]):
        return None
    if len(line) > MAX_HEADING_CHARS or _words(title) > MAX_HEADING_WORDS:
        return None
    return match.group(1).count(".") + 1


def is_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return (
        len(letters) >= 3
        and all(ch.isupper() for ch in letters)
        and _words(line) <= MAX_HEADING_WORDS
        and len(line) <= MAX_HEADING_CHARS
        and not line.rstrip().endswith(_TERMINAL[1:3])
    )


def body_size(sized_lines: Iterable[tuple[str, float]]) -> float:
    """The font size carrying most of the text (weighted by characters)."""
    weights: Counter[float] = Counter()
    for text, size in sized_lines:
        weights[round(size * 2) / 2] += len(text)
    return weights.most_common(1)[0][0] if weights else 0.0


def levels_by_size(sized_lines: Iterable[tuple[str, float]], body: float) -> dict[float, int]:
    """Map each heading font size (rounded to 0.5 pt) to a level: the largest size is 1."""
    sizes = {
        round(size * 2) / 2
        for text, size in sized_lines
        if size >= body * HEADING_SIZE_RATIO and len(text) <= MAX_HEADING_CHARS * 2
    }
    return {size: rank for rank, size in enumerate(sorted(sizes, reverse=True)[:6], start=1)}


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def matches_title(line: str, title: str) -> bool:
    """Whether a line of page text is the printed form of an outline title."""
    line_n, title_n = normalise(line), normalise(title)
    if not title_n or len(line_n) > len(title_n) + 12:
        return False
    return line_n == title_n or line_n.endswith(title_n) or (title_n.startswith(line_n) and len(line_n) > 3)
