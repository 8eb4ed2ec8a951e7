"""Tables that read at any width: they fold, or turn into a list, but never cut a value.

``Sheet`` is a table of rows under a title. Given a width, it picks the first
layout that shows every character of every value:

1. a table at its natural width, when that fits (always, when the width is
   unbounded: output to a pipe or a file without ``COLUMNS``);
2. a table whose ``fold`` columns (free text: errors, names, lists) wrap over
   several lines, when the other columns fit at full width beside them;
3. a list: one block per row, ``Header  value`` per line, blocks apart by a
   blank line, where a value longer than the width wraps.

Ids, counts and durations are never ``fold`` columns, so the first two layouts
show them whole on one line, and the list shows them whole as long as the width
holds the header and the value. Lines carry no trailing spaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

# Between two table columns: a space, the rule, a space.
SEPARATOR = 3
# A folding column narrower than this reads badly; below it the sheet becomes a list.
FOLD_MIN = 12
# Between a header and its value in the list layout.
LIST_GAP = 2

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header, alignment, and whether its text may wrap over lines (``fold``)."""

    header: str
    justify: Literal["left", "right"] = "left"
    fold: bool = False


@dataclass(slots=True)
class Sheet:
    """Rows under a title, rendered as a table or a list to fit a width (see the module docstring)."""

    columns: Sequence[Column]
    title: str | None = None
    rows: list[Sequence[Cell]] = field(default_factory=list)

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row needs {len(self.columns)} cells, got {len(cells)}")
        self.rows.append(cells)

    def natural_widths(self) -> list[int]:
        """Each column's width when nothing wraps: its header or its longest value."""
        return [
            max([cell_len(column.header), *(_width(row[i]) for row in self.rows)])
            for i, column in enumerate(self.columns)
        ]

    def fit(self, width: int | None) -> list[int] | None:
        """Column widths for a table within ``width`` (None: unbounded), or None for the list."""
        natural = self.natural_widths()
        rules = SEPARATOR * (len(natural) - 1)
        if width is None or sum(natural) + rules <= width:
            return natural
        folding = [i for i, column in enumerate(self.columns) if column.fold]
        fixed = sum(w for i, w in enumerate(natural) if i not in folding) + rules
        room = width - fixed
        floors = [min(natural[i], FOLD_MIN) for i in folding]
        if not folding or room < sum(floors):
            return None
        # First every folding column's longest word (so words stay whole where they can),
        # then its full width, the narrowest columns served first.
        words = [min(natural[i], self._longest_word(i)) for i in folding]
        shares = _share(room, words, floors)
        shares = _share(room, [natural[i] for i in folding], shares)
        widths = list(natural)
        for i, share in zip(folding, shares, strict=True):
            widths[i] = share
        return widths

    def _longest_word(self, index: int) -> int:
        cells = [self.columns[index].header, *(row[index] for row in self.rows)]
        text = " ".join(c.plain if isinstance(c, Text) else c for c in cells)
        return max((cell_len(word) for word in text.split()), default=0)

    def render(self, width: int | None) -> Trimmed:
        """The renderable for ``width`` columns (None: as wide as the table needs)."""
        widths = self.fit(width)
        title = [Text(self.title, style="bold")] if self.title else []
        if widths is not None:
            return Trimmed(*title, self._table(widths))
        return Trimmed(*title, *self._list())

    def print(self, console: Console) -> None:
        """Print at ``output_width(console)``; lines wider than the console are not cropped."""
        console.print(self.render(output_width(console)), crop=False)

    def _table(self, widths: list[int]) -> Table:
        table = Table(show_edge=False, pad_edge=False)
        for column, w in zip(self.columns, widths, strict=True):
            table.add_column(
                column.header,
                justify=column.justify,
                width=w,
                no_wrap=not column.fold,
                overflow="fold",
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def _list(self) -> list[Text | Table]:
        parts: list[Text | Table] = []
        key_w = max(cell_len(c.header) for c in self.columns)
        for index, row in enumerate(self.rows):
            if index or self.title:
                parts.append(Text(""))
            block = Table.grid(padding=(0, LIST_GAP, 0, 0))
            block.add_column(style="bold", width=key_w, no_wrap=True)
            block.add_column(overflow="fold")
            for column, cell in zip(self.columns, row, strict=True):
                block.add_row(column.header, cell)
            parts.append(block)
        return parts


class Trimmed:
    """Renders its parts one after another, each line without trailing spaces."""

    def __init__(self, *parts: Text | Table) -> None:
        self.parts = parts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for part in self.parts:
            wide = options.update(width=max(options.max_width, _table_width(part)))
            for line in console.render_lines(part, wide, pad=False):
                yield from _rstrip(line)
                yield Segment.line()


def output_width(console: Console) -> int | None:
    """The width tables fit: the terminal's or ``COLUMNS``; None (unbounded) for a pipe or a file."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console.width
    return None


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _table_width(part: Text | Table) -> int:
    """A table laid out by ``Sheet.fit`` needs exactly its columns' widths and rules."""
    if not isinstance(part, Table) or any(c.width is None for c in part.columns):
        return 0
    return sum(c.width or 0 for c in part.columns) + SEPARATOR * (len(part.columns) - 1)


def _share(room: int, wants: list[int], floors: list[int]) -> list[int]:
    """Split ``room`` among columns that have ``floors`` and want ``wants``: the narrowest
    get all they want first, the widest what is left (never below its floor)."""
    shares = list(floors)
    left = room - sum(floors)
    for i in sorted(range(len(wants)), key=lambda i: wants[i]):
        extra = max(0, min(wants[i] - shares[i], left))
        shares[i] += extra
        left -= extra
    return shares


def _rstrip(line: Iterable[Segment]) -> list[Segment]:
    segments = list(line)
    while segments and not segments[-1].control and not segments[-1].text.rstrip():
        segments.pop()
    if segments and not segments[-1].control:
        last = segments[-1]
        segments[-1] = Segment(last.text.rstrip(), last.style)
    return segments
