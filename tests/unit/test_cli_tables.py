"""``Sheet`` picks a layout that shows every value whole: table, folded table, or list."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from docmill.cli.tables import Column, Sheet


def sheet() -> Sheet:
    s = Sheet([Column("ID"), Column("Error", fold=True), Column("Runtime", "right")], "Jobs")
    s.add_row("0193a1b2c3d4e5f6a7b8c9", "ValueError: the scan of page 3 is blank", "443ms")
    return s


def render(s: Sheet, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(s.render(width), crop=False)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


def test_a_table_that_fits_keeps_its_natural_widths() -> None:
    assert sheet().fit(200) == [22, 39, 7]
    assert sheet().fit(None) == [22, 39, 7]


def test_a_table_too_wide_folds_its_free_text_and_keeps_the_rest_whole() -> None:
    # 22 + 7 + two rules of 3 leave 21 columns for the error at a width of 56
    assert sheet().fit(56) == [22, 21, 7]
    assert render(sheet(), 56) == (
        "Jobs\n"
        "ID                     ┃ Error                 ┃ Runtime\n"
        "━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━\n"
        "0193a1b2c3d4e5f6a7b8c9 │ ValueError: the scan  │   443ms\n"
        "                       │ of page 3 is blank    │\n"
    )


def test_when_folding_would_leave_too_little_room_the_rows_become_a_list() -> None:
    assert sheet().fit(40) is None
    assert render(sheet(), 40) == (
        "Jobs\n"
        "\n"
        "ID       0193a1b2c3d4e5f6a7b8c9\n"
        "Error    ValueError: the scan of page 3\n"
        "         is blank\n"
        "Runtime  443ms\n"
    )


def test_a_table_without_free_text_becomes_a_list_as_soon_as_it_does_not_fit() -> None:
    s = Sheet([Column("ID"), Column("Queue")])
    s.add_row("0193a1b2c3d4e5f6a7b8c9", "document-analysis")

    assert s.fit(42) == [22, 17]
    assert s.fit(41) is None


def test_a_row_must_have_a_cell_per_column() -> None:
    with pytest.raises(ValueError, match="a row needs 3 cells, got 2"):
        sheet().add_row("a", "b")
