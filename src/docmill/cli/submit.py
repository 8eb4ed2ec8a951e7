"""`docmill submit FILE..`: upload documents in-process through the service, optionally wait.

Each file is stored and its analysis queued, as ``POST /api/documents`` does; the
document ids are printed as they come. With ``--wait`` a progress bar per document
(its stage, and model calls done of those planned) runs on stderr until every document
has ended, then a summary table (status, cost, error) is printed.

Exit codes: 0 every file submitted (and, with ``--wait``, completed); 1 a file was
refused, a document failed or was cancelled, or ``--timeout`` passed; 2 the options
cannot work or the database or queue cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from docmill.cli._common import (
    EXIT_NO,
    EXIT_UNAVAILABLE,
    JsonOption,
    fail,
    new_table,
    print_json,
    stderr,
    stdout,
)
from docmill.cli.documents import money, progress_counts, with_service

if TYPE_CHECKING:
    from docmill.documents.models import Document
    from docmill.documents.service import DocumentService


@dataclass
class Submission:
    """One file of the command line and what became of it."""

    path: Path
    document: Document | None = None
    existing: bool = False
    deleted: bool = False  # by someone else while waiting
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.document is not None and not self.deleted and not _ended(self.document)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "existing": self.existing,
            "document": self.document.to_dict() if self.document is not None else None,
            "error": self.error,
        }


def register(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        files: Annotated[
            list[Path],
            typer.Argument(metavar="FILE..", exists=True, dir_okay=False, readable=True, help="Documents."),
        ],
        profile: Annotated[
            str,
            typer.Option("--profile", "-p", help="summary, extract (needs --schema) or custom (--prompt)."),
        ] = "summary",
        model: Annotated[
            str | None,
            typer.Option("--model", "-m", help="Model; default: the configured one.", show_default=False),
        ] = None,
        schema: Annotated[
            str | None,
            typer.Option(
                "--schema",
                metavar="JSON|@FILE",
                help="JSON Schema of the fields to extract.",
                show_default=False,
            ),
        ] = None,
        prompt: Annotated[
            str | None, typer.Option("--prompt", help="What the custom profile does.", show_default=False)
        ] = None,
        callback_url: Annotated[
            str | None,
            typer.Option(
                "--callback-url", metavar="URL", help="Told when a document ends.", show_default=False
            ),
        ] = None,
        auto_approve: Annotated[
            bool,
            typer.Option("--auto-approve", help="Process without waiting for approval, whatever the cost."),
        ] = False,
        batch: Annotated[
            bool | None,
            typer.Option(
                "--batch/--no-batch",
                help="Send the model calls by Claude's Message Batches API: half price, answered "
                "within hours. Default: the profile's (DOCUMENT_BATCH_PROFILES).",
                show_default=False,
            ),
        ] = None,
        force: Annotated[
            bool,
            typer.Option("--force", help="A new document even if these bytes and options were submitted."),
        ] = False,
        wait: Annotated[
            bool, typer.Option("--wait", "-w", help="Show progress until every document ends.")
        ] = False,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                min=0,
                metavar="SECONDS",
                help="Stop waiting after this long.",
                show_default=False,
            ),
        ] = None,
        poll: Annotated[
            float, typer.Option("--poll", min=0.05, metavar="SECONDS", help="Progress refresh.")
        ] = 1.0,
        as_json: JsonOption = False,
    ) -> None:
        """Upload documents and queue their analysis; print their ids (and wait with --wait)."""
        options = _options(profile, model, schema, prompt, callback_url, auto_approve, as_json, batch=batch)

        async def run(service: DocumentService) -> tuple[list[Submission], bool]:
            submissions = []
            for path in files:
                submission = await _upload(service, path, options, force)
                submissions.append(submission)
                if not as_json:
                    _print_submission(submission)
            finished = True
            if wait:
                finished = await _wait(service, submissions, timeout_s=timeout, poll_s=poll, show=not as_json)
            return submissions, finished

        submissions, finished = with_service(run, as_json=as_json)
        if as_json:
            print_json([submission.to_dict() for submission in submissions])
        elif wait:
            stdout().print(_summary(submissions, width=stdout().width))
        if not finished:
            still = ", ".join(str(s.document.id) for s in submissions if s.document is not None and s.running)
            fail(
                f"stopped waiting after {timeout:g}s with document(s) {still} still in the pipeline; "
                "follow them with: docmill documents show ID",
                EXIT_NO,
            )
        refused = any(s.error is not None for s in submissions)
        unfinished = wait and any(
            s.document is not None and (s.deleted or s.document.status != "completed") for s in submissions
        )
        if refused or unfinished:
            raise typer.Exit(EXIT_NO)


def _options(
    profile: str,
    model: str | None,
    schema: str | None,
    prompt: str | None,
    callback_url: str | None,
    auto_approve: bool,
    as_json: bool,
    *,
    batch: bool | None = None,
) -> dict[str, Any]:
    """The upload options, checked once before any file is stored."""
    from docmill.documents.errors import InvalidOptions
    from docmill.documents.options import DocumentOptions

    schema_value: Any = schema
    if schema is not None and schema.startswith("@"):
        try:
            schema_value = Path(schema[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            fail(
                f"cannot read the schema file {schema[1:]}: {exc.strerror}", EXIT_UNAVAILABLE, as_json=as_json
            )
    options: dict[str, Any] = {
        "profile": profile,
        "model": model,
        "schema": schema_value,
        "prompt": prompt,
        "callback_url": callback_url,
        "auto_approve": auto_approve,
        "batch": batch,
    }
    try:
        DocumentOptions.parse(options)
    except InvalidOptions as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json)
    if isinstance(schema_value, str):
        options["schema"] = json.loads(schema_value)
    return options


async def _upload(service: DocumentService, path: Path, options: dict[str, Any], force: bool) -> Submission:
    from docmill.documents.errors import QueueUnavailable, UploadRejected
    from docmill.documents.models import utcnow

    started = utcnow()
    try:
        with path.open("rb") as data:
            document = await service.upload(data, path.name, options, force=force)
    except (UploadRejected, QueueUnavailable) as exc:
        return Submission(path, error=str(exc))
    except OSError as exc:
        return Submission(path, error=f"cannot read {path}: {exc.strerror}")
    return Submission(path, document, existing=document.uploaded_at < started)


def _print_submission(submission: Submission) -> None:
    if submission.document is None:
        stderr().print(Text(f"error: {submission.path}: {submission.error}", style="red"), soft_wrap=True)
        return
    document = submission.document
    note = "already submitted, " if submission.existing else ""
    stdout().print(Text(f"{document.id}  {submission.path.name}  ({note}{document.status})"))


def _ended(document: Document) -> bool:
    return document.status in {"completed", "failed", "cancelled"}


async def _wait(
    service: DocumentService,
    submissions: list[Submission],
    *,
    timeout_s: float | None,
    poll_s: float,
    show: bool,
) -> bool:
    """Follow the documents until each ended (True) or ``timeout_s`` passed (False); each
    submission's ``document`` is updated in place."""
    from docmill.documents.errors import DocumentNotFound

    deadline = time.monotonic() + timeout_s if timeout_s is not None else None
    columns = (
        TextColumn("{task.fields[label]}", style="bold"),
        TextColumn("{task.fields[stage]:<17}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr(), disable=not show) as bar:
        tasks = {}
        for submission in submissions:
            if submission.document is not None:
                label = f"{submission.document.id} {submission.path.name[:28]}"
                tasks[id(submission)] = bar.add_task(
                    "", total=None, label=label, stage=submission.document.status
                )
        while True:
            pending = [s for s in submissions if s.running]
            if not pending:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)
            for submission in pending:
                assert submission.document is not None
                try:
                    document = await service.get(submission.document.id)
                except DocumentNotFound:
                    submission.deleted, submission.error = True, "deleted while waiting"
                    bar.update(tasks[id(submission)], stage="deleted")
                    continue
                submission.document = document
                done, total = progress_counts(document)
                if document.status == "completed":
                    done = total = max(total, 1)
                bar.update(tasks[id(submission)], completed=done, total=total or None, stage=document.status)


def _summary(submissions: list[Submission], *, width: int) -> Any:
    table = new_table()
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("File", no_wrap=True, max_width=30, overflow="ellipsis")
    table.add_column("Status", no_wrap=True)
    table.add_column("Cost", justify="right", no_wrap=True)
    table.add_column("Error", overflow="fold")
    for submission in submissions:
        document = submission.document
        table.add_row(
            str(document.id) if document is not None else "-",
            Text(submission.path.name),
            ("deleted" if submission.deleted else document.status) if document is not None else "refused",
            money(document.cost_usd) if document is not None else "-",
            Text(submission.error or (document.error_reason if document is not None else None) or ""),
        )
    return table
