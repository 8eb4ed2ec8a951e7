"""The demo's results at 40, 80 and 200 columns: no column squeezed to nothing, no value cut."""

from __future__ import annotations

import io

from rich.console import Console

from docmill.demo.layout import DemoLayout
from docmill.demo.render import print_report
from docmill.demo.run import DemoReport, DocumentOutcome

OUTCOMES = [
    DocumentOutcome(
        name="quarterly-report.pdf",
        status="completed",
        kind="pdf",
        pages=12,
        words=3456,
        title="Quarterly report",
        summary="Revenue grew by a tenth.",
        cost_usd=0.0123,
        processor="anthropic",
        models=("claude-haiku-4-5",),
        calls=3,
    ),
    DocumentOutcome(name="notes.md", status="failed", kind="markdown", words=120, error_reason="boom"),
]


def results(width: int) -> str:
    """The report up to the totals line."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    print_report(console, DemoReport(DemoLayout(), "anthropic", OUTCOMES, wall_s=9.5, supervisor_exit=0))
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out[: out.index("1 of 2 documents completed")]


def test_at_80_columns_the_table_keeps_every_column_and_the_summaries_follow_it() -> None:
    assert [line.rstrip() for line in results(80).splitlines()] == [
        "Results",
        "Document             ┃ Type     ┃ Pages / words      ┃ Status    ┃ Cost USD",
        "━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━",
        "quarterly-report.pdf │ pdf      │ 12 pp, 3,456 words │ completed │  $0.0123",
        "notes.md             │ markdown │ 120 words          │ failed    │  $0.0000",
        "quarterly-report.pdf: Quarterly report: Revenue grew by a tenth.",
        "(claude-haiku-4-5)",
    ]


def test_at_40_columns_the_results_are_a_list() -> None:
    assert [line.rstrip() for line in results(40).splitlines()] == [
        "Results",
        "",
        "Document       quarterly-report.pdf",
        "Type           pdf",
        "Pages / words  12 pp, 3,456 words",
        "Status         completed",
        "Cost USD       $0.0123",
        "Processor      claude-haiku-4-5",
        "",
        "Document       notes.md",
        "Type           markdown",
        "Pages / words  120 words",
        "Status         failed",
        "Cost USD       $0.0000",
        "Processor      -",
        "",
        "quarterly-report.pdf: Quarterly report:",
        "Revenue grew by a tenth.",
        "(claude-haiku-4-5)",
    ]


def test_at_200_columns_titles_and_processors_are_in_the_table() -> None:
    lines = results(200).splitlines()
    cells = [line.replace("┃", "│").split("│") for line in lines]
    rows = [[cell.strip() for cell in row] for row in cells if len(row) > 1]

    assert lines[0].rstrip() == "Results" and len(lines) == 5
    assert rows == [
        ["Document", "Type", "Pages / words", "Status", "Title / summary", "Cost USD", "Processor"],
        [
            "quarterly-report.pdf",
            "pdf",
            "12 pp, 3,456 words",
            "completed",
            "Quarterly report: Revenue grew by a tenth.",
            "$0.0123",
            "claude-haiku-4-5",
        ],
        ["notes.md", "markdown", "120 words", "failed", "-", "$0.0000", "-"],
    ]
