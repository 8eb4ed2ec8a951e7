"""How the document demo looks: the live progress, the results, the failures, what to try next.

A terminal gets a table redrawn in place (``progress_table``); output to a file or a pipe
gets one line per stage change instead (``StageLog``), so logs of the demo read well.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from docmill.demo.layout import DemoLayout
from docmill.demo.run import DemoProgress, DemoReport, DocumentOutcome
from docmill.documents.processing import OFFLINE_PROCESSOR

API_ADDRESS = "http://127.0.0.1:8000"
SNIPPET_CHARS = 56
WIDE = 120  # columns from which the results table has room for the titles and summaries
FOLD_MIN = 12  # a wrapping column narrower than this reads badly: the results become a list
_STATUS_STYLE = {"completed": "green", "failed": "red", "refused": "red", "processing": "cyan"}


def _table(title: str | None = None) -> Table:
    # The house style of the CLI's tables: a header rule, column rules, no outer frame.
    return Table(title=title, title_justify="left", show_edge=False, pad_edge=False)


def _chunks(done: int, total: int) -> str:
    return f"{done}/{total}" if total else "-"


def _money(value: float) -> str:
    return f"${value:.4f}"


def _workers(progress: DemoProgress) -> str:
    return f"workers up: {progress.workers_up} of {progress.workers_total}"


def progress_table(progress: DemoProgress, elapsed_s: float) -> Table:
    """One row per document: its stage, model calls done of planned, cost so far."""
    table = _table(f"Documents ({elapsed_s:.1f}s, {_workers(progress)})")
    table.add_column("Document", no_wrap=True)
    table.add_column("Stage", no_wrap=True)
    table.add_column("Chunks", justify="right", no_wrap=True)
    table.add_column("Cost USD", justify="right", no_wrap=True)
    for row in progress.rows:
        table.add_row(
            row.name,
            Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
            _chunks(row.done, row.total),
            _money(row.cost_usd),
        )
    return table


class StageLog:
    """Lines for output that is not a terminal: one each time a document changes stage."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int, int]] = {}
        self._workers_up = 0

    def lines(self, progress: DemoProgress, elapsed_s: float) -> Iterator[str]:
        if progress.workers_up != self._workers_up:
            self._workers_up = progress.workers_up
            yield f"{elapsed_s:5.1f}s  {_workers(progress)}"
        for row in progress.rows:
            state = (row.status, row.done, row.total)
            if self._seen.get(row.name, ("",))[0] != row.status:
                chunks = f" (chunks {_chunks(row.done, row.total)})" if row.total else ""
                yield f"{elapsed_s:5.1f}s  {row.name}: {row.status}{chunks}"
            self._seen[row.name] = state


def _size(outcome: DocumentOutcome) -> str:
    if outcome.words is None:
        return "-"
    words = f"{outcome.words:,} words"
    return f"{outcome.pages} pp, {words}" if outcome.pages else words


def _snippet(outcome: DocumentOutcome) -> str:
    """The title, then as much of the summary as fits (without repeating the title)."""
    if outcome.status != "completed":
        return "-"
    title = " ".join((outcome.title or "").split())
    summary = " ".join((outcome.summary or "").split()).lstrip("-*• ")
    if title and summary.lower().startswith(title.lower()):
        summary = summary[len(title) :].lstrip(" .:-")
    text = ": ".join(part for part in (title, summary) if part)
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def _processor(outcome: DocumentOutcome) -> str:
    """Who produced the result, short: the offline processor, or the models that answered."""
    if outcome.processor is None:
        return "-"
    if outcome.processor == OFFLINE_PROCESSOR:
        return "extractive (offline)"
    return ", ".join(outcome.models) or outcome.processor


def results_table(outcomes: list[DocumentOutcome], *, with_snippets: bool = True) -> Table:
    """Every document's outcome; ``with_snippets=False`` leaves the title, summary and processor out."""
    table = _table("Results")
    table.add_column("Document", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Pages / words", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    if with_snippets:
        table.add_column("Title / summary", min_width=FOLD_MIN)
    table.add_column("Cost USD", justify="right", no_wrap=True)
    if with_snippets:
        table.add_column("Processor", min_width=FOLD_MIN, overflow="fold")
    for item in outcomes:
        cells: list[str | Text] = [
            item.name,
            item.kind or "-",
            _size(item),
            Text(item.status, style=_STATUS_STYLE.get(item.status, "")),
        ]
        cells.append(_money(item.cost_usd))
        if with_snippets:
            cells[4:4] = [_snippet(item)]
            cells.append(_processor(item))
        table.add_row(*cells)
    return table


def print_report(console: Console, report: DemoReport) -> None:
    """The results, each failure with its reason, and where to look next.

    Below ``WIDE`` columns the titles, summaries and processors follow the table, one
    line each, instead of squeezing into it; where even the rest does not fit, the
    results are a list.
    """
    wide = console.width >= WIDE
    if _fits(console, report.outcomes, with_snippets=wide):
        console.print(results_table(report.outcomes, with_snippets=wide))
    else:
        _print_results_list(console, report.outcomes)
    if not wide:
        for item in report.outcomes:
            if item.status == "completed":
                console.print(
                    Text.assemble((f"{item.name}: ", "bold"), _snippet(item), f" ({_processor(item)})")
                )
    completed = [o for o in report.outcomes if o.status == "completed"]
    failed = [o for o in report.outcomes if o.status != "completed"]
    cost = sum(o.cost_usd for o in report.outcomes)
    calls = sum(o.calls for o in completed)
    console.print(
        f"{len(completed)} of {len(report.outcomes)} documents completed ({calls} model calls, "
        f"{_money(cost)}), {len(failed)} failed, in {report.wall_s:.1f}s."
    )
    for item in failed:
        console.print(
            Text.assemble(
                (f"{item.name} {item.status}: ", "bold red"), item.error_reason or "no reason recorded"
            )
        )
    stopped = f"exit {report.supervisor_exit}" if report.supervisor_exit is not None else "it was not running"
    console.print(f"Stopped the supervisor gracefully ({stopped}, {report.supervisor_stop_s:.1f}s).")
    console.print()
    for line in next_steps(report.layout):
        console.print(line, soft_wrap=True)


def _fits(console: Console, outcomes: list[DocumentOutcome], *, with_snippets: bool) -> bool:
    """Whether the results table shows every value whole: its one-line columns at full width,
    and the wrapping ones (title and summary, processor: wide only) at least ``FOLD_MIN`` wide."""
    headers = ["Document", "Type", "Pages / words", "Status", "Cost USD"]
    rows = [[o.name, o.kind or "-", _size(o), o.status, _money(o.cost_usd)] for o in outcomes]
    one_line = sum(max(cell_len(text) for text in column) for column in zip(headers, *rows, strict=True))
    wrapping = 2 if with_snippets else 0
    rules = 3 * (len(headers) + wrapping - 1)
    return one_line + wrapping * FOLD_MIN + rules <= console.width


def _print_results_list(console: Console, outcomes: list[DocumentOutcome]) -> None:
    """The results for a narrow console: one block of ``Header  value`` lines per document."""
    console.print(Text("Results", style="italic"))
    for item in outcomes:
        block = Table.grid(padding=(0, 2))
        block.add_column(style="bold", no_wrap=True)
        block.add_column(overflow="fold")
        block.add_row("Document", item.name)
        block.add_row("Type", item.kind or "-")
        block.add_row("Pages / words", _size(item))
        block.add_row("Status", Text(item.status, style=_STATUS_STYLE.get(item.status, "")))
        block.add_row("Cost USD", _money(item.cost_usd))
        block.add_row("Processor", _processor(item))
        console.print()
        console.print(block)
    console.print()


def next_steps(layout: DemoLayout) -> list[str]:
    """Commands to look at what the demo left behind, pointed at its storage."""
    storage = layout.root.as_posix()
    return [
        f"Everything is in {storage}/ (logs in {layout.log_dir.as_posix()}/). To look around, point "
        "docmill at it:",
        f"  export DOCMILL_STORAGE={storage} DOCMILL_QUEUE_URL={layout.queue_url}",
        f"  uv run docmill serve --dev      # API at {API_ADDRESS}/api/documents, docs at {API_ADDRESS}/docs",
        "  uv run docmill queue status",
        "  uv run docmill documents list",
    ]
