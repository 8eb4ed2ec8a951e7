"""`docmill demo`: the whole system on its embedded default, no server needed.

``docmill demo`` runs the document pipeline (``docmill.demo``): a real supervisor with
the seed's pools, the sample documents uploaded, analysed, estimated and processed,
their progress live, then the results.

``docmill demo --engine`` shows the queue engine alone: it dispatches a few hundred
stand-in jobs (``docmill.demo_jobs``) to a fresh SQLite queue in
``./storage/demo-queue.db``, starts real worker processes (``docmill queue work
--stop-when-empty``, laid out like the seed's pools), shows their progress, and prints
what happened per queue.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from docmill.cli._common import duration, fail, new_table, stdout
from docmill.demo_jobs import ANALYSIS_QUEUE, DEFAULT_QUEUE, PROCESSING_QUEUE, demo_dispatches, registry
from docmill.queue import Backend, Client, Job, backend_from_url
from docmill.queue.stop import WorkerStopReason

STORAGE = Path("storage")
DB_PATH = STORAGE / "demo-queue.db"
DEMO_URL = f"sqlite:///{DB_PATH.as_posix()}"
APP = "docmill.demo_jobs:registry"
# The seed's pools: queue -> worker processes.
POOLS = {DEFAULT_QUEUE: 2, ANALYSIS_QUEUE: 1, PROCESSING_QUEUE: 2}
QUEUES = tuple(POOLS)
DEADLINE_S = 50.0
POLL_S = 0.1
MAX_RESTARTS = 20  # a worker that stops while its queue still holds delayed retries is started again
RESTART_EVERY_S = 1.0
BOOT_FAILURE = WorkerStopReason.BOOT_FAILURE.exit_code


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        engine: Annotated[
            bool, typer.Option("--engine", help="Show the queue engine alone with stand-in jobs.")
        ] = False,
        examples: Annotated[
            Path | None,
            typer.Option(
                "--examples",
                metavar="DIR",
                help="Documents to process (default: the bundled samples).",
                show_default=False,
            ),
        ] = None,
        jobs: Annotated[
            int, typer.Option(min=3, max=5000, help="--engine: how many jobs to dispatch.")
        ] = 300,
        concurrency: Annotated[
            int, typer.Option(min=1, max=100, help="--engine: jobs at once per worker.")
        ] = 8,
    ) -> None:
        """Run the document pipeline on the sample documents with a real supervisor, and report."""
        console = stdout()
        if not engine:
            _document_demo(console, examples)
            return
        _reset_storage()
        try:
            report = asyncio.run(_run(console, jobs, concurrency))
        except _DemoError as exc:
            fail(str(exc), 2)
        _print_report(console, report)


def _document_demo(console: Console, examples: Path | None) -> None:
    # Imported here: the documents domain pulls in SQLAlchemy, which --engine does not need.
    from docmill.demo import DemoError, DemoLayout, find_examples, run_demo
    from docmill.demo.render import StageLog, print_report, progress_table
    from docmill.demo.run import DemoProgress

    folder = find_examples(examples)
    if folder is None:
        where = str(examples) if examples else "the installed package or the source checkout"
        fail(f"no sample documents found in {where}; give a folder of documents with --examples DIR", 2)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    layout = DemoLayout()
    env = layout.environment(os.environ)
    started = time.monotonic()
    provider = env["DOCMILL_LLM_PROVIDER"]
    if provider == "anthropic":
        processor = "Claude (CLAUDE_API_KEY is set)"
    elif provider == "extractive":
        processor = "the offline extractive processor (set CLAUDE_API_KEY to use Claude)"
    else:
        processor = f"{provider} (DOCMILL_LLM_PROVIDER)"
    console.print(
        f"Processing {len(files)} documents from {folder} with docmill supervise "
        f"(pools default x2, document-analysis x1, document-processing x2) on SQLite in "
        f"{layout.root.as_posix()}/; model: {processor}.",
        soft_wrap=True,
    )
    stage_log = StageLog()
    with Live(console=console, transient=True, auto_refresh=False) as live:

        def show(progress: DemoProgress) -> None:
            elapsed = time.monotonic() - started
            if console.is_terminal:
                live.update(progress_table(progress, elapsed), refresh=True)
            else:
                for line in stage_log.lines(progress, elapsed):
                    console.print(line)

        try:
            report = asyncio.run(run_demo(layout, files, env, on_progress=show))
        except DemoError as exc:
            fail(str(exc), 2)
    print_report(console, report)


class _DemoError(Exception):
    """The demo could not finish; the message says what to look at."""


@dataclass
class _Worker:
    queue: str
    index: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    starts: int = 0
    started_mono: float = 0.0

    def start(self, concurrency: int) -> None:
        if self.log is None:
            self.log = self.log_path.open("ab")
        command = [
            *_docmill_command(),
            "queue",
            "work",
            "--queue",
            self.queue,
            "--connection",
            DEMO_URL,
            "--app",
            APP,
            "--concurrency",
            str(concurrency),
            "--stop-when-empty",
        ]
        env = {**os.environ, "DOCMILL_QUEUE_URL": DEMO_URL, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        self.started_mono = time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


@dataclass
class _Report:
    total: int
    wall_s: float
    started_at: float
    completed: dict[str, list[Job]] = field(default_factory=dict)
    failed: dict[str, list[Job]] = field(default_factory=dict)
    log_paths: list[Path] = field(default_factory=list)


def _docmill_command() -> list[str]:
    """The installed console script beside this interpreter, else the module through Python."""
    script = Path(sys.executable).parent / ("docmill.exe" if os.name == "nt" else "docmill")
    if script.exists():
        return [str(script)]
    found = shutil.which("docmill")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'docmill'; from docmill.cli.entry import run; run()",
    ]


def _reset_storage() -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(STORAGE / "demo-state", ignore_errors=True)
    (STORAGE / "logs").mkdir(parents=True, exist_ok=True)
    for old in (STORAGE / "logs").glob("demo-*.log"):
        old.unlink()


async def _run(console: Console, total: int, concurrency: int) -> _Report:
    backend = backend_from_url(DEMO_URL)
    await backend.connect()
    try:
        started_at = time.time()
        items = demo_dispatches(total, str(STORAGE / "demo-state"))
        await Client(backend, registry).dispatch_many(items)
        console.print(
            f"Dispatched {len(items)} jobs to {len(QUEUES)} queues in {DB_PATH}; starting "
            f"{sum(POOLS.values())} worker processes (docmill queue work --stop-when-empty)."
        )
        workers = [
            _Worker(queue, n, STORAGE / "logs" / f"demo-{queue}-{n}.log")
            for queue, count in POOLS.items()
            for n in range(1, count + 1)
        ]
        try:
            for worker in workers:
                worker.start(concurrency)
            await _watch(console, backend, workers, len(items), concurrency)
        finally:
            for worker in workers:
                worker.stop()
        report = _Report(total=len(items), wall_s=time.time() - started_at, started_at=started_at)
        report.log_paths = [w.log_path for w in workers]
        for queue in QUEUES:
            report.completed[queue] = await backend.recent_completed(queue, limit=len(items))
            report.failed[queue] = await backend.failed_page(queue, limit=len(items))
        return report
    finally:
        await backend.close()


async def _watch(
    console: Console, backend: Backend, workers: list[_Worker], total: int, concurrency: int
) -> None:
    """Show progress until every job is finished and every worker has stopped."""
    deadline = time.monotonic() + DEADLINE_S
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("Jobs finished", total=total, failed=0)
        while True:
            unfinished: dict[str, int] = {}
            failed = 0
            for queue in QUEUES:
                stats = await backend.stats(queue)
                unfinished[queue] = stats.size
                failed += stats.failed
            remaining = sum(unfinished.values())
            progress.update(task, completed=total - remaining, failed=failed)
            running = False
            for worker in workers:
                code = worker.process.poll() if worker.process is not None else 0
                if code is None:
                    running = True
                elif code == BOOT_FAILURE:
                    raise _DemoError(
                        f"a worker for {worker.queue} could not start (exit {code}); see {worker.log_path}"
                    )
                elif unfinished[worker.queue] > 0:
                    # --stop-when-empty stops a worker while retries wait out their backoff, and a
                    # worker may stop for memory or a lost backend: start it again, as a supervisor
                    # would (at most once a second), until its queue is done.
                    running = True
                    if time.monotonic() - worker.started_mono < RESTART_EVERY_S:
                        continue
                    if worker.starts > MAX_RESTARTS:
                        raise _DemoError(f"workers for {worker.queue} keep stopping; see {worker.log_path}")
                    worker.start(concurrency)
            if remaining == 0 and not running:
                return
            if time.monotonic() > deadline:
                raise _DemoError(
                    f"the demo did not finish within {DEADLINE_S:.0f} s ({remaining} jobs left); "
                    f"see the worker logs in {STORAGE / 'logs'}"
                )
            await asyncio.sleep(POLL_S)


def _print_report(console: Console, report: _Report) -> None:
    table = new_table("Demo summary")
    table.add_column("Queue", no_wrap=True)
    for header in ("Completed", "Failed", "Retried", "Avg runtime", "Throughput", "Wall time"):
        table.add_column(header, justify="right", no_wrap=True)
    totals: dict[str, Any] = {"completed": 0, "failed": 0, "retried": 0, "runtime": 0.0, "end": 0.0}
    for queue in QUEUES:
        done = report.completed[queue]
        failed = report.failed[queue]
        retried = sum(1 for job in [*done, *failed] if job.attempts > 1)
        runtime = sum(job.runtime_s or 0.0 for job in done)
        end = max((job.finished_at or 0.0 for job in [*done, *failed]), default=report.started_at)
        wall = max(end - report.started_at, 1e-3)
        table.add_row(
            queue,
            str(len(done)),
            str(len(failed)),
            str(retried),
            duration(runtime / len(done) if done else None),
            f"{len(done) / wall:.1f} jobs/s",
            duration(wall),
        )
        totals["completed"] += len(done)
        totals["failed"] += len(failed)
        totals["retried"] += retried
        totals["runtime"] += runtime
        totals["end"] = max(totals["end"], end)
    wall = max(totals["end"] - report.started_at, 1e-3)
    table.add_section()
    table.add_row(
        Text("all", style="bold"),
        str(totals["completed"]),
        str(totals["failed"]),
        str(totals["retried"]),
        duration(totals["runtime"] / totals["completed"] if totals["completed"] else None),
        f"{totals['completed'] / wall:.1f} jobs/s",
        duration(wall),
    )
    console.print(table)
    console.print(
        f"{totals['completed']} of {report.total} jobs completed, {totals['failed']} failed, "
        f"in {duration(report.wall_s)}."
    )
    for job in (job for queue in QUEUES for job in report.failed[queue]):
        console.print()
        console.print(Text("Failed job", style="bold red"))
        details = Table.grid(padding=(0, 2))
        details.add_column(style="bold", no_wrap=True)
        details.add_column()
        details.add_row("ID", job.id)
        details.add_row("Job", job.name)
        details.add_row("Queue", job.queue)
        details.add_row("Attempts", f"{job.attempts} of {job.tries}" if job.tries else str(job.attempts))
        details.add_row("Error", Text(job.error.summary() if job.error else "-"))
        console.print(details)
    console.print()
    console.print("Worker logs: storage/logs/demo-*.log. Next, look at the failure and retry it:")
    connection = f"--connection {DEMO_URL}"
    console.print(f"  uv run docmill queue failed {connection}")
    console.print(f"  uv run docmill queue retry all {connection}")
    console.print(f"  uv run docmill queue monitor {connection}")
