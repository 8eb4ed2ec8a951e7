"""`docmill documents ...`: list, show and steer documents, in-process through the service.

Each command opens the documents context (database, files, queue) with ``with_service``,
calls one ``DocumentService`` method, and renders the answer: a Rich table for people,
``--json`` (the service's ``to_dict``) for scripts. ``docmill submit`` shares these helpers.

The documents domain is imported inside the commands: it pulls in SQLAlchemy and the
LLM SDKs, which ``docmill queue ...`` must not pay for at startup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from docmill.cli._common import (
    EXIT_NO,
    EXIT_UNAVAILABLE,
    JsonOption,
    _is_connection_failure,
    ago,
    fail,
    load_settings,
    print_json,
    stdout,
    unreachable_message,
)
from docmill.cli.tables import Column, Sheet

if TYPE_CHECKING:
    from docmill.documents.models import Document
    from docmill.documents.service import DocumentService, Page

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="List, inspect and steer uploaded documents.")

DocumentIdArgument = Annotated[int, typer.Argument(metavar="ID", min=1, help="The document id.")]


# ---------------------------------------------------------------------------- the service


def with_service(action: Callable[[DocumentService], Awaitable[T]], *, as_json: bool = False) -> T:
    """Open the documents context from the environment, run ``action`` on its service, close
    it; turn the domain's errors into one sentence and an exit code (see ``_common``)."""
    from sqlalchemy.exc import DBAPIError

    from docmill.documents.context import DocumentContext
    from docmill.documents.errors import (
        DocumentError,
        InvalidOptions,
        InvalidSetting,
        QueueUnavailable,
        UploadRejected,
    )
    from docmill.queue import ConfigurationError, mask_url

    settings = load_settings(as_json=as_json).documents

    async def run() -> T:
        context = await DocumentContext.create(settings)
        try:
            return await action(context.service)
        finally:
            await context.aclose()

    try:
        return asyncio.run(run())
    except typer.Exit:
        raise
    except (InvalidOptions, UploadRejected, QueueUnavailable, InvalidSetting, ConfigurationError) as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json)
    except DocumentError as exc:
        fail(str(exc), EXIT_NO, as_json=as_json)
    except DBAPIError as exc:
        detail = str(exc.orig or exc).strip()
        reason = detail.splitlines()[0] if detail else type(exc).__name__
        fail(
            f"cannot use the documents database at {mask_url(settings.database_url)}: {reason.rstrip('.')}; "
            "check DATABASE_URL and that the database is running",
            EXIT_UNAVAILABLE,
            as_json=as_json,
        )
    except Exception as exc:
        if _is_connection_failure(exc):
            fail(unreachable_message(settings.queue_url, exc), EXIT_UNAVAILABLE, as_json=as_json)
        raise


# ---------------------------------------------------------------------------- rendering


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def progress_counts(document: Document) -> tuple[int, int]:
    """Model calls done and planned, counted as ``DocumentService.progress`` counts them."""
    estimate = document.estimate or {}
    return document.progress_done, document.progress_total or int(
        (estimate.get("calls") or {}).get("total", 0)
    )


def progress_text(document: Document) -> str:
    done, total = progress_counts(document)
    return f"{done}/{total}" if total else "-"


def document_sheet(documents: list[Document], *, title: str | None = None) -> Sheet:
    """Documents, one row each; the name folds, the other columns are never cut."""
    sheet = Sheet(
        [
            Column("ID", "right"),
            Column("Status"),
            Column("Progress", "right"),
            Column("Cost", "right"),
            Column("Updated"),
            Column("Name", fold=True),
        ],
        title,
    )
    for document in documents:
        sheet.add_row(
            str(document.id),
            document.status,
            progress_text(document),
            money(document.cost_usd),
            ago(document.updated_at.timestamp()),
            Text(document.name),
        )
    return sheet


def render_document(console: Console, document: Document) -> None:
    """Everything about one document but its result: options, analysis, estimate, progress."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    options = document.options or {}
    rows: list[tuple[str, str]] = [
        ("ID", str(document.id)),
        ("Name", document.name),
        ("Status", document.status),
        ("Profile", str(options.get("profile", "summary"))),
        ("Model", str(options.get("model") or "(default)")),
        ("Type", document.content_type),
        ("Size", f"{document.size_bytes} bytes"),
        ("SHA-256", document.sha256),
    ]
    analysis = document.analysis
    if analysis:
        counts = analysis.get("counts") or {}
        language = (analysis.get("language") or {}).get("code", "und")
        pages = f"{counts['pages']} pages, " if counts.get("pages") else ""
        rows.append(
            (
                "Analysis",
                f"{analysis.get('kind')}, {pages}{counts.get('words', 0)} words, "
                f"{counts.get('sections', 0)} sections, {counts.get('tables', 0)} tables, "
                f"{len(analysis.get('chunks') or ())} chunks, language {language}",
            )
        )
    estimate = document.estimate
    if estimate:
        calls = (estimate.get("calls") or {}).get("total", "?")
        cost, cached = estimate.get("cost_usd"), estimate.get("cost_usd_cached")
        price = "cost unknown" if cost is None else money(cost)
        if cached is not None:
            price += f" ({money(cached)} with prompt caching)"
        rows.append(
            (
                "Estimate",
                f"{price} for {calls} calls to {estimate.get('model')}, about {estimate.get('eta_s', '?')}s",
            )
        )
        if estimate.get("price_note"):
            rows.append(("Price", str(estimate["price_note"])))
    rows += [("Progress", progress_text(document)), ("Cost", money(document.cost_usd))]
    if document.error_reason:
        rows.append(("Error", document.error_reason))
    for name, label in (
        ("uploaded_at", "Uploaded"),
        ("analyzed_at", "Analysed"),
        ("approved_at", "Approved"),
        ("processing_started_at", "Processing"),
        ("completed_at", "Completed"),
        ("failed_at", "Failed"),
        ("cancelled_at", "Cancelled"),
    ):
        value = getattr(document, name)
        if value is not None:
            rows.append(
                (label, f"{value.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({ago(value.timestamp())})")
            )
    for key, value in rows:
        grid.add_row(key, Text(value))
    console.print(grid)


MAX_TREE_SECTIONS = 200


def render_structure(console: Console, analysis: dict[str, Any], *, limit: int = MAX_TREE_SECTIONS) -> None:
    """The section tree analysis found, one line a section with its pages and words; a long
    tree stops after ``limit`` sections and says how to get the rest."""
    roots = analysis.get("sections") or []
    if not roots:
        return
    tree = Tree(Text(analysis.get("title") or "(untitled)", style="bold"), guide_style="dim")
    shown = 0
    total = 0
    pending: list[tuple[dict[str, Any], Tree]] = [(section, tree) for section in reversed(roots)]
    while pending:
        section, parent = pending.pop()
        total += 1
        if shown >= limit:
            pending.extend((child, parent) for child in reversed(section.get("children") or []))
            continue
        shown += 1
        node = parent.add(section_label(section))
        pending.extend((child, node) for child in reversed(section.get("children") or []))
    console.print(tree)
    if total > shown:
        console.print(f"... and {total - shown} more sections (--json prints the whole tree).")


def section_label(section: dict[str, Any]) -> Text:
    """``2.1 Disks  pp. 4-7, 812 words``; the text before the first heading is named as such."""
    label = Text(section.get("title") or "(before the first heading)")
    start, end = section.get("page_start"), section.get("page_end")
    details = []
    if start is not None:
        details.append(f"p. {start}" if end in (None, start) else f"pp. {start}-{end}")
    words = section.get("word_count", 0)
    details.append(f"{words} word{'s' if words != 1 else ''}")
    label.append(f"  {', '.join(details)}", style="dim")
    return label


def _status_filter(value: str | None, as_json: bool) -> str | None:
    from docmill.documents.status import Status

    if value is None:
        return None
    names = [status.value for status in Status]
    if value not in names:
        fail(
            f"there is no status {value!r}; use one of: {', '.join(names)}", EXIT_UNAVAILABLE, as_json=as_json
        )
    return value


# ---------------------------------------------------------------------------- commands


@app.command("list")
def list_documents(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", "-s", metavar="STATUS", help="Only documents in this status.", show_default=False
        ),
    ] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number, newest documents first.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500, help="Documents per page.")] = 25,
    as_json: JsonOption = False,
) -> None:
    """List documents, newest first (paged)."""
    wanted = _status_filter(status, as_json)

    async def load(service: DocumentService) -> Page:
        return await service.list(wanted, offset=(page - 1) * per_page, limit=per_page)

    found = with_service(load, as_json=as_json)
    pages = max(1, -(-found.total // per_page))
    if as_json:
        print_json(
            {
                "total": found.total,
                "page": page,
                "per_page": per_page,
                "pages": pages,
                "documents": [document.to_dict() for document in found.items],
            }
        )
        return
    console = stdout()
    where = f" with status {wanted}" if wanted else ""
    if found.total == 0:
        console.print(f"No documents{where}.")
        return
    if not found.items:
        console.print(f"No documents on page {page}{where}; the last page is {pages}.")
        return
    document_sheet(found.items).print(console)
    console.print(f"{found.total} document{'s' if found.total != 1 else ''}{where}; page {page} of {pages}.")


@app.command("show")
def show(document_id: DocumentIdArgument, as_json: JsonOption = False) -> None:
    """Show one document: status, analysis and its section tree, estimate, progress, cost, error."""

    async def load(service: DocumentService) -> Document:
        return await service.get(document_id)

    document = with_service(load, as_json=as_json)
    if as_json:
        print_json(document.to_dict())
        return
    console = stdout()
    render_document(console, document)
    if document.analysis:
        render_structure(console, document.analysis)


def _steer(document_id: int, action: str, as_json: bool) -> None:
    async def run(service: DocumentService) -> Document:
        method: Callable[[int], Awaitable[Document]] = getattr(service, action)
        return await method(document_id)

    document = with_service(run, as_json=as_json)
    if as_json:
        print_json(document.to_dict())
        return
    stdout().print(f"Document {document.id} ({document.name}) is now {document.status}.")


@app.command("approve")
def approve(document_id: DocumentIdArgument, as_json: JsonOption = False) -> None:
    """Approve a document's estimate and queue its processing."""
    _steer(document_id, "approve", as_json)


@app.command("retry")
def retry(document_id: DocumentIdArgument, as_json: JsonOption = False) -> None:
    """Put a failed or cancelled document back where it stopped, and queue that stage."""
    _steer(document_id, "retry", as_json)


@app.command("cancel")
def cancel(document_id: DocumentIdArgument, as_json: JsonOption = False) -> None:
    """Cancel a document; a running job stops at its next chunk."""
    _steer(document_id, "cancel", as_json)


@app.command("result")
def result(
    document_id: DocumentIdArgument,
    markdown: Annotated[bool, typer.Option("--markdown", "-m", help="Print the result as Markdown.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print a completed document's result: JSON (default) or Markdown."""

    async def load(service: DocumentService) -> tuple[dict[str, Any], str]:
        return await service.result(document_id)

    data, text = with_service(load, as_json=as_json)
    if markdown and not as_json:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    print_json({"document_id": document_id, "result": data})


@app.command("delete")
def delete(
    document_id: DocumentIdArgument,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a document, its events and saved calls, and its file unless another document shares it."""
    if not force and not typer.confirm(f"Delete document {document_id}?", default=False, err=True):
        fail(
            f"document {document_id} was not deleted; pass --force to delete without asking", as_json=as_json
        )

    async def run(service: DocumentService) -> None:
        await service.delete(document_id)

    with_service(run, as_json=as_json)
    if as_json:
        print_json({"deleted": document_id})
        return
    stdout().print(f"Document {document_id} deleted.")
