"""`docmill queue ...`: the worker and the operator's commands on the engine.

Each command opens the backend through ``_common.with_backend``, calls one
engine operation, and renders the answer (``--json`` for scripts).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from docmill.cli import queue_supervise, queue_work
from docmill.cli._common import (
    EXIT_NO,
    ConnectionOption,
    JsonOption,
    QueueFilterOption,
    checked_queue,
    checked_queue_list,
    fail,
    load_settings,
    print_json,
    render_job,
    stderr,
    stdout,
    with_backend,
)
from docmill.cli.views import job_sheet, monitor_sheet
from docmill.queue import Backend, Client, Job, JobState
from docmill.queue.summary import QueueSummary, summarize_queues

app = typer.Typer(no_args_is_help=True, help="Run workers and operate the job queues.")
queue_work.register(app)
queue_supervise.register(app)


# ------------------------------------------------------------------------------ failed jobs


@app.command("failed")
def failed(
    target: Annotated[
        list[str] | None,
        typer.Argument(metavar="[ID | show ID]", help="Show one failed job instead of the list."),
    ] = None,
    queue: QueueFilterOption = None,
    page: Annotated[int, typer.Option(min=1, help="Page number, newest failures first.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=1000, help="Jobs per page.")] = 25,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """List failed jobs (paged), or show one with its payload and traceback."""
    args = list(target or [])
    if args and args[0] == "show":
        args = args[1:]
    if len(args) > 1:
        fail("give one job id: docmill queue failed ID", as_json=as_json)
    if args:
        _show(args[0], connection, as_json, failed_only=True)
        return

    async def load(backend: Backend) -> tuple[int, list[Job]]:
        total = await backend.failed_count(queue)
        jobs = await backend.failed_page(queue, offset=(page - 1) * per_page, limit=per_page)
        return total, jobs

    total, jobs = with_backend(connection, load, as_json=as_json)
    pages = max(1, -(-total // per_page))
    if as_json:
        print_json(
            {
                "total": total,
                "page": page,
                "per_page": per_page,
                "pages": pages,
                "jobs": [job.to_dict() for job in jobs],
            }
        )
        return
    console = stdout()
    where = f" on queue {queue}" if queue else ""
    if total == 0:
        console.print(f"No failed jobs{where}.")
        return
    if not jobs:
        console.print(f"No failed jobs on page {page}{where}; the last page is {pages}.")
        return
    job_sheet(jobs, failed=True).print(console)
    console.print(f"{total} failed job{'s' if total != 1 else ''}{where}; page {page} of {pages}.")
    if page < pages:
        console.print(f"Next page: docmill queue failed --page {page + 1}")


@app.command("job")
def job(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job id.")],
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show any job the backend still holds (pending, delayed, reserved, failed, recently completed)."""
    _show(job_id, connection, as_json, failed_only=False)


def _show(job_id: str, connection: str | None, as_json: bool, *, failed_only: bool) -> None:
    async def load(backend: Backend) -> Job | None:
        return await backend.get(job_id)

    found = with_backend(connection, load, as_json=as_json)
    if found is None or (failed_only and found.state != JobState.FAILED):
        what = "failed job" if failed_only else "job"
        hint = f" (it is {found.state})" if found is not None else ""
        fail(f"no {what} with id {job_id}{hint}; list them with: docmill queue failed", as_json=as_json)
    if as_json:
        print_json(found.to_dict())
        return
    render_job(stdout(), found)


@app.command("tagged")
def tagged(
    tag: Annotated[str, typer.Argument(help="A tag such as document:42.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs, newest first.")] = 100,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the jobs still held that carry TAG, newest first."""

    async def load(backend: Backend) -> list[Job]:
        return await backend.find_by_tag(tag, limit=limit)

    jobs = with_backend(connection, load, as_json=as_json)
    if as_json:
        print_json({"tag": tag, "jobs": [j.to_dict() for j in jobs]})
        return
    console = stdout()
    if not jobs:
        console.print(f"No jobs tagged {tag}.")
        return
    job_sheet(jobs).print(console)
    console.print(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} tagged {tag}.")


@app.command("retry")
def retry(
    ids: Annotated[list[str], typer.Argument(metavar="ID... | all", help="Failed job ids, or 'all'.")],
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", "-q", metavar="QUEUE", help="With 'all': only this queue.", callback=checked_queue
        ),
    ] = None,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put failed jobs back on their queues with fresh attempts."""
    if ids == ["all"]:
        _retry_all(queue, connection, as_json)
        return
    if "all" in ids:
        fail("give either job ids or 'all', not both", as_json=as_json)

    async def run(backend: Backend) -> tuple[int, list[str]]:
        missing: list[str] = []
        present: list[str] = []
        for job_id in dict.fromkeys(ids):
            found = await backend.get(job_id)
            (present if found is not None and found.state == JobState.FAILED else missing).append(job_id)
        moved = await backend.retry_failed(present) if present else 0
        return moved, missing

    moved, missing = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"retried": moved, "missing": missing})
    else:
        stdout().print(f"Retried {moved} failed job{'s' if moved != 1 else ''}.")
    if missing:
        if not as_json:
            for job_id in missing:
                stderr().print(Text(f"error: no failed job with id {job_id}", style="red"))
        raise typer.Exit(EXIT_NO)


def _retry_all(queue: str | None, connection: str | None, as_json: bool) -> None:
    show_progress = not as_json and stderr().is_terminal

    async def run(backend: Backend) -> int:
        total = await backend.failed_count(queue)
        if not show_progress:
            return await Client(backend).retry_all_failed(queue)
        columns = (TextColumn("Retrying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=stderr(), transient=True) as progress:
            task = progress.add_task("retry", total=total)
            return await Client(backend).retry_all_failed(
                queue, progress=lambda done: progress.update(task, completed=done)
            )

    moved = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"retried": moved, "queue": queue})
        return
    where = f" from queue {queue}" if queue else ""
    stdout().print(f"Retried {moved} failed job{'s' if moved != 1 else ''}{where}.")


@app.command("forget")
def forget(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The failed job's id.")],
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete one failed job for good."""

    async def run(backend: Backend) -> bool:
        return await backend.forget_failed(job_id)

    if not with_backend(connection, run, as_json=as_json):
        fail(f"no failed job with id {job_id}; list them with: docmill queue failed", as_json=as_json)
    if as_json:
        print_json({"forgotten": job_id})
        return
    stdout().print(f"Forgot failed job {job_id}.")


@app.command("flush")
def flush(
    hours: Annotated[
        float | None,
        typer.Option(min=0, help="Only jobs that failed more than this many hours ago.", show_default=False),
    ] = None,
    queue: QueueFilterOption = None,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete failed jobs: all of them, or those older than --hours."""
    older_than_s = hours * 3600 if hours is not None else None

    async def run(backend: Backend) -> int:
        return await backend.flush_failed(queue, older_than_s=older_than_s)

    deleted = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"deleted": deleted, "queue": queue, "hours": hours})
        return
    age = f" that failed more than {hours:g}h ago" if hours is not None else ""
    where = f" on queue {queue}" if queue else ""
    stdout().print(f"Deleted {deleted} failed job{'s' if deleted != 1 else ''}{where}{age}.")


@app.command("prune-failed")
def prune_failed(
    hours: Annotated[
        float, typer.Option(min=0, help="Delete failed jobs older than this many hours.")
    ] = 24.0,
    queue: QueueFilterOption = None,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete failed jobs older than --hours (24 by default), as Laravel's queue:prune-failed."""
    flush(hours=hours, queue=queue, connection=connection, as_json=as_json)


# ------------------------------------------------------------------------------ queue control


@app.command("clear")
def clear(
    queue: Annotated[
        str, typer.Argument(metavar="QUEUE", help="The queue to empty.", callback=checked_queue)
    ],
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")] = False,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a queue's pending and delayed jobs (running and failed jobs stay)."""
    if not force:
        question = f"Delete every pending and delayed job on queue {queue}?"
        if not typer.confirm(question, default=False, err=True):
            fail(f"nothing was cleared; pass --force to clear {queue} without asking", as_json=as_json)

    async def run(backend: Backend) -> int:
        return await backend.clear(queue)

    deleted = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"queue": queue, "deleted": deleted})
        return
    stdout().print(f"Cleared {deleted} job{'s' if deleted != 1 else ''} from queue {queue}.")


@app.command("pause")
def pause(
    queue: Annotated[str, typer.Argument(metavar="QUEUE", callback=checked_queue)],
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop every worker, on every host, from taking new jobs from QUEUE."""

    async def run(backend: Backend) -> None:
        await backend.pause(queue)

    with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"queue": queue, "paused": True})
        return
    stdout().print(f"Paused queue {queue}; resume it with: docmill queue continue {queue}")


@app.command("continue")
def resume(
    queue: Annotated[str, typer.Argument(metavar="QUEUE", callback=checked_queue)],
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let workers take jobs from a paused QUEUE again."""

    async def run(backend: Backend) -> None:
        await backend.resume(queue)

    with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"queue": queue, "paused": False})
        return
    stdout().print(f"Resumed queue {queue}.")


@app.command("continue-llm")
def continue_llm(connection: ConnectionOption = None, as_json: JsonOption = False) -> None:
    """Let every worker call the LLM API again after a spend-limit, billing or key error stopped them."""
    from docmill.llm.circuit import close_circuit
    from docmill.llm.limits import key_fingerprint

    api_key = load_settings(connection=connection, as_json=as_json).llm.anthropic_api_key
    if not api_key:
        fail("No Claude API key is set (CLAUDE_API_KEY); no LLM calls are stopped.", EXIT_NO, as_json=as_json)

    async def run(backend: Backend) -> Any:
        return await close_circuit(backend, key_fingerprint(api_key))

    was = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"llm_calls_stopped": False, "was": None if was is None else was.to_flag()})
        return
    if was is None:
        stdout().print("LLM calls were not stopped; nothing to resume.")
        return
    stdout().print(
        f"Resumed LLM calls on every host (stopped since {was.since_text}: {was.reason}). "
        "Retry the documents that failed meanwhile with: docmill documents retry ID"
    )


@app.command("restart")
def restart(connection: ConnectionOption = None, as_json: JsonOption = False) -> None:
    """Ask every worker to exit after its current jobs (its supervisor starts a fresh one)."""

    async def run(backend: Backend) -> float:
        return await backend.request_restart()

    requested_at = with_backend(connection, run, as_json=as_json)
    if as_json:
        print_json({"restart_requested_at": requested_at})
        return
    at = time.strftime("%H:%M:%S", time.localtime(requested_at))
    stdout().print(f"Restart requested at {at}; every worker exits after its current jobs.")


# ------------------------------------------------------------------------------ monitor


@app.command("monitor")
def monitor(
    queues: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[QUEUES]...",
            help="Queues to show (names or a comma list); default all.",
            callback=checked_queue_list,
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option("--max", min=0, help="Exit with code 1 when a queue holds more jobs than this."),
    ] = None,
    connection: ConnectionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per-queue counts, oldest wait, throughput and timings (exit 1 over --max)."""
    wanted = [name for arg in queues or [] for name in arg.split(",") if name]

    async def load(backend: Backend) -> list[QueueSummary]:
        return await summarize_queues(backend, wanted or None)

    summaries = with_backend(connection, load, as_json=as_json)
    over = [q.queue for q in summaries if max_size is not None and q.size > max_size]
    if as_json:
        print_json({"queues": [q.to_dict() for q in summaries], "max": max_size, "over": over})
    else:
        _render_monitor(summaries, max_size, over)
    if over:
        raise typer.Exit(EXIT_NO)


def _render_monitor(summaries: list[QueueSummary], max_size: int | None, over: list[str]) -> None:
    console = stdout()
    if not summaries:
        console.print("No queues yet; they appear when the first job is dispatched.")
        return
    monitor_sheet(summaries, over).print(console)
    for q in summaries:
        if q.queue in over:
            console.print(
                Text(f"Queue {q.queue} holds {q.size:,} jobs, over the limit of {max_size:,}.", style="red")
            )
