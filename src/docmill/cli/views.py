"""The `queue` commands' read models as sheets (``docmill.cli.tables``): jobs, queues, cluster, config.

Each function builds a ``Sheet`` from one model and knows nothing of the
console; the command prints it with ``Sheet.print``. Ids, names (queues, jobs,
hosts, pools), counts and durations are plain columns, shown whole on one line;
only free text (errors, lists, values) folds.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

from rich.text import Text

from docmill.cli._common import ago, duration, span
from docmill.cli.tables import Column, Sheet
from docmill.queue import Job
from docmill.queue.summary import QueueSummary
from docmill.supervisor.status import MasterStatus, WorkerStatus

STATE_STYLE = {
    "running": "green",
    "starting": "cyan",
    "stopping": "yellow",
    "backoff": "yellow",
    "paused": "yellow",
    "stopped": "yellow",
    "exited": "dim",
    "fatal": "bold red",
    "inactive": "red",
    "unsupervised": "cyan",
}


def styled(state: str | None) -> Text:
    """A state in its colour: green running, yellow paused or stopping, red fatal..."""
    return Text(state or "-", style=STATE_STYLE.get(state or "", ""))


def job_sheet(
    jobs: Sequence[Job], *, title: str | None = None, failed: bool = False, now: float | None = None
) -> Sheet:
    """Jobs, one row each; ``failed`` shows when and why each failed instead of state and age."""
    at = time.time() if now is None else now
    tail = [Column("Failed"), Column("Error", fold=True)] if failed else [Column("State"), Column("Created")]
    sheet = Sheet(
        [Column("ID"), Column("Queue"), Column("Job"), Column("Tries", "right"), *tail],
        title,
    )
    for job in jobs:
        tries = f"{job.attempts}/{job.tries}" if job.tries else str(job.attempts)
        if failed:
            error = job.error.summary() if job.error else "-"
            sheet.add_row(job.id, job.queue, job.name, tries, ago(job.finished_at, at), error)
        else:
            sheet.add_row(job.id, job.queue, job.name, tries, str(job.state), ago(job.created_at, at))
    return sheet


def monitor_sheet(summaries: Sequence[QueueSummary], over: Collection[str] = ()) -> Sheet:
    """``docmill queue monitor``: counts now, rates and timings over the last hour; ``over`` in red."""
    sheet = Sheet(
        [
            Column("Queue"),
            *(Column(h, "right") for h in ("Pending", "Delayed", "Reserved", "Failed")),
            Column("Status"),
            *(Column(h, "right") for h in ("Oldest", "Last min", "Avg/min", "Runtime", "Wait")),
        ],
        "Queues (rates and timings over the last hour)",
    )
    for q in summaries:
        sheet.add_row(
            Text(q.queue, style="bold red" if q.queue in over else ""),
            f"{q.pending:,}",
            f"{q.delayed:,}",
            f"{q.reserved:,}",
            f"{q.failed:,}",
            Text("paused", style="yellow") if q.paused else Text("running", style="green"),
            "-" if q.oldest_pending_age_s is None else span(q.oldest_pending_age_s),
            f"{q.throughput_last_minute:,}",
            f"{q.throughput_per_minute_avg:,.1f}",
            duration(q.avg_runtime_s),
            duration(q.avg_wait_s),
        )
    return sheet


def masters_sheet(masters: Sequence[MasterStatus]) -> Sheet:
    """Each ``docmill supervise`` with its pools as ``name running/target``."""
    sheet = Sheet(
        [
            Column("Host"),
            Column("PID", "right"),
            Column("State"),
            Column("Uptime", "right"),
            Column("Pools", fold=True),
        ],
        "Masters",
    )
    for m in masters:
        pools = ", ".join(
            f"{p.name} {p.processes}/{p.target}" + (" FATAL" if p.state == "fatal" else "") for p in m.pools
        )
        uptime = "-" if m.uptime_s is None else span(m.uptime_s)
        sheet.add_row(m.host, str(m.pid), styled(m.state), uptime, pools or "-")
    return sheet


def workers_sheet(workers: Sequence[WorkerStatus]) -> Sheet:
    """Every worker: its slot, process state, pid, uptime, restarts, jobs done, memory, current jobs."""
    sheet = Sheet(
        [
            Column("Host"),
            Column("Pool"),
            Column("Process"),
            Column("State"),
            Column("PID", "right"),
            Column("Uptime", "right"),
            Column("Restarts", "right"),
            Column("Jobs", "right"),
            Column("Memory", "right"),
            Column("Current job", fold=True),
        ],
        "Workers",
    )
    for w in workers:
        current = ", ".join(f"{j.name} {j.id}" for j in w.current_jobs) or "-"
        sheet.add_row(
            w.host,
            w.pool or "-",
            w.process or "-",
            styled(w.state),
            "-" if w.pid is None else str(w.pid),
            "-" if w.uptime_s is None else span(w.uptime_s),
            "-" if w.restarts is None else str(w.restarts),
            "-" if w.jobs_done is None else f"{w.jobs_done:,}",
            "-" if w.memory_mb is None else f"{w.memory_mb:.0f} MB",
            current,
        )
    return sheet


def queues_sheet(summaries: Sequence[QueueSummary]) -> Sheet:
    """``docmill queue status``'s queues: counts, paused or active, and the oldest wait."""
    sheet = Sheet(
        [
            Column("Queue"),
            *(Column(h, "right") for h in ("Pending", "Delayed", "Reserved", "Failed")),
            Column("Status"),
            Column("Oldest", "right"),
        ],
        "Queues",
    )
    for q in summaries:
        sheet.add_row(
            q.queue,
            f"{q.pending:,}",
            f"{q.delayed:,}",
            f"{q.reserved:,}",
            f"{q.failed:,}",
            Text("paused", style="yellow") if q.paused else Text("active", style="green"),
            "-" if q.oldest_pending_age_s is None else duration(q.oldest_pending_age_s),
        )
    return sheet


def config_sheet(rows: Sequence[tuple[str, str, str]], where: str) -> Sheet:
    """``docmill queue config``: every effective key with its value and where the value comes from."""
    sheet = Sheet(
        [Column("Key"), Column("Value", fold=True), Column("Source", fold=True)], f"Configuration ({where})"
    )
    for key, value, source in rows:
        sheet.add_row(key, value, Text(source, style="dim" if source == "default" else "cyan"))
    return sheet
