"""`docmill queue status|stop|start|logs|config`: the supervised pools, seen and steered.

``status`` exit codes: 0 running (at least one master runs workers), 1 paused or
stopped, 2 inactive (no master heartbeat) or the backend cannot be reached.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from docmill.cli._common import (
    EXIT_NO,
    ConnectionOption,
    JsonOption,
    duration,
    fail,
    load_settings,
    print_json,
    span,
    stdout,
    with_backend,
)
from docmill.cli.supervise import ConfigOption
from docmill.llm.circuit import circuit_of_key
from docmill.queue import Backend
from docmill.supervisor import SupervisorConfig
from docmill.supervisor.control import BackendControlStore, start_workers, stop_workers, workers_stopped
from docmill.supervisor.logs import SUPERVISOR_LOG
from docmill.supervisor.master import MASTER_KIND
from docmill.supervisor.status import EXIT_CODES, cluster_status

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


def _config(config: str | None, connection: str | None = None) -> SupervisorConfig:
    return load_settings(config, connection).supervisor


def _styled(state: str | None) -> Text:
    return Text(state or "-", style=STATE_STYLE.get(state or "", ""))


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        connection: ConnectionOption = None,
        as_json: JsonOption = False,
        local: Annotated[
            bool,
            typer.Option(
                "--local",
                help="Only this host's master and workers; the exit code then says how this host is "
                "(a container's health check).",
            ),
        ] = False,
    ) -> None:
        """Masters and workers on every host, and queue sizes (exit 0 running, 1 paused/stopped, 2 none)."""
        host = socket.gethostname()
        api_key = load_settings(connection=connection, as_json=as_json).llm.anthropic_api_key

        async def load(backend: Backend) -> dict[str, Any]:
            masters = await backend.heartbeats(MASTER_KIND)
            workers = await backend.heartbeats("worker")
            if local:
                masters = [m for m in masters if m.get("host") == host]
                workers = [w for w in workers if w.get("host") == host]
            flag = await workers_stopped(BackendControlStore(backend))
            report = cluster_status(masters, workers, flag, time.time())
            queues = []
            for name in await backend.queues():
                stats = await backend.stats(name)
                queues.append(
                    {
                        "queue": name,
                        "pending": stats.pending,
                        "delayed": stats.delayed,
                        "reserved": stats.reserved,
                        "failed": stats.failed,
                        "paused": stats.paused,
                        "oldest_pending_age_s": stats.oldest_pending_age_s,
                    }
                )
            report["queues"] = queues
            circuit = await circuit_of_key(backend, api_key)
            report["llm_calls_stopped"] = (
                None
                if circuit is None
                else {**circuit.to_flag(), "since_text": circuit.since_text, "summary": circuit.summary()}
            )
            return report

        report = with_backend(connection, load, as_json=as_json)
        if as_json:
            print_json(report)
        else:
            _render_status(report)
        raise typer.Exit(EXIT_CODES[report["state"]])

    @app.command("stop")
    def stop(connection: ConnectionOption = None, as_json: JsonOption = False) -> None:
        """Stop the workers on every host: each master finishes running jobs and then holds zero."""

        async def run(backend: Backend) -> dict[str, Any]:
            return await stop_workers(BackendControlStore(backend))

        data = with_backend(connection, run, as_json=as_json)
        if as_json:
            print_json({"workers_stopped": True, **data})
            return
        stdout().print(
            "Stopping the workers on every host after their running jobs; "
            "start them again with: docmill queue start"
        )

    @app.command("start")
    def start(connection: ConnectionOption = None, as_json: JsonOption = False) -> None:
        """Start the workers again on every host after `docmill queue stop`; FATAL pools start afresh."""

        async def run(backend: Backend) -> bool:
            return await start_workers(BackendControlStore(backend))

        was_stopped = with_backend(connection, run, as_json=as_json)
        if as_json:
            print_json({"workers_stopped": False, "was_stopped": was_stopped})
            return
        if was_stopped:
            stdout().print("Starting the workers on every host.")
        else:
            stdout().print(
                "The workers were not stopped; to retry a FATAL pool, reload its master: kill -HUP <pid>"
            )

    @app.command("logs")
    def logs(
        pool: Annotated[
            str | None,
            typer.Argument(metavar="[POOL]", help="A pool's log (or 'supervisor'); default: all logs."),
        ] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
        lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines to show from the end.")] = 50,
        config: ConfigOption = None,
    ) -> None:
        """Show the end of the workers' logs in the storage's logs/ (written by `docmill supervise`)."""
        log_dir = _config(config).log_dir
        files = _log_files(log_dir, pool)
        headers = len(files) > 1
        console_out = stdout()
        for index, path in enumerate(files):
            if headers:
                console_out.print(Text(f"{'' if index == 0 else chr(10)}==> {path} <==", style="bold"))
            for line in _tail(path, lines):
                console_out.out(line, highlight=False)
        if follow:
            _follow(files, headers)

    @app.command("config")
    def config_(
        config: ConfigOption = None,
        connection: ConnectionOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """The effective configuration of the pools, with where each value comes from (secrets masked)."""
        effective = load_settings(config, connection, as_json=as_json)
        rows = effective.describe()
        if as_json:
            print_json(
                {
                    "config_file": str(effective.config_file) if effective.config_file else None,
                    "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows],
                }
            )
            return
        console = stdout()
        where = effective.config_file or "no file: the seed's pools"
        table = Table(title=f"Configuration ({where})", title_justify="left")
        table.add_column("Key", no_wrap=True)
        table.add_column("Value", no_wrap=True, max_width=48, overflow="ellipsis")
        table.add_column("Source", no_wrap=True)
        for key, value, source in rows:
            table.add_row(key, value, Text(source, style="dim" if source == "default" else "cyan"))
        console.print(table)


# ---------------------------------------------------------------------------- status


def _render_status(report: dict[str, Any]) -> None:
    console = stdout()
    state = report["state"]
    console.print(Text.assemble("Supervisors: ", _styled(state)))
    flag = report.get("workers_stopped")
    if flag:
        console.print(
            Text(
                f"Workers stopped on every host by {flag.get('by')} ({span(time.time() - flag['at'])} ago); "
                "start them with: docmill queue start",
                style="yellow",
            )
        )
    stopped = report.get("llm_calls_stopped")
    if stopped:
        console.print(Text(stopped["summary"], style="bold red"))
    if not report["masters"]:
        console.print("No `docmill supervise` is running on any host (no heartbeat lately).")
    else:
        masters = Table(title="Masters", title_justify="left")
        for header in ("Host", "PID", "State", "Uptime", "Pools"):
            masters.add_column(header, no_wrap=True)
        for m in report["masters"]:
            pools = ", ".join(
                f"{p['name']} {p['processes']}/{p['target']}" + (" FATAL" if p["state"] == "fatal" else "")
                for p in m["pools"]
            )
            uptime = "-" if m["uptime_s"] is None else span(m["uptime_s"])
            masters.add_row(str(m["host"]), str(m["pid"]), _styled(m["state"]), uptime, pools)
        console.print(masters)
        for m in report["masters"]:
            for p in m["pools"]:
                if p.get("fatal_reason"):
                    console.print(
                        Text(f"Pool {p['name']} on {m['host']} is FATAL: {p['fatal_reason']}", style="red")
                    )
    if report["workers"]:
        workers = Table(title="Workers", title_justify="left")
        for header in ("Host", "Pool", "Process", "State", "PID", "Uptime", "Restarts", "Jobs", "Memory"):
            workers.add_column(
                header, no_wrap=True, justify="right" if header in ("Jobs", "Memory") else "left"
            )
        workers.add_column("Current job", no_wrap=True, max_width=36, overflow="ellipsis")
        for w in report["workers"]:
            current = ", ".join(f"{j.get('name')} {j.get('id')}" for j in w["current_jobs"]) or "-"
            workers.add_row(
                str(w["host"]),
                w["pool"] or "-",
                w["process"] or "-",
                _styled(w["state"]),
                str(w["pid"] or "-"),
                "-" if w["uptime_s"] is None else span(w["uptime_s"]),
                "-" if w["restarts"] is None else str(w["restarts"]),
                "-" if w["jobs_done"] is None else f"{w['jobs_done']:,}",
                "-" if w["memory_mb"] is None else f"{w['memory_mb']:.0f} MB",
                current,
            )
        console.print(workers)
    if report["queues"]:
        queues = Table(title="Queues", title_justify="left")
        for header in ("Queue", "Pending", "Delayed", "Reserved", "Failed", "Status", "Oldest"):
            queues.add_column(
                header, no_wrap=True, justify="left" if header in ("Queue", "Status") else "right"
            )
        for q in report["queues"]:
            oldest = q["oldest_pending_age_s"]
            queues.add_row(
                q["queue"],
                f"{q['pending']:,}",
                f"{q['delayed']:,}",
                f"{q['reserved']:,}",
                f"{q['failed']:,}",
                Text("paused", style="yellow") if q["paused"] else Text("active", style="green"),
                "-" if oldest is None else duration(oldest),
            )
        console.print(queues)


# ---------------------------------------------------------------------------- logs


def _log_files(log_dir: Path, pool: str | None) -> list[Path]:
    if pool is not None:
        path = log_dir / f"{pool}.log"
        if not path.exists():
            known = sorted(p.stem for p in log_dir.glob("*.log")) if log_dir.is_dir() else []
            hint = f"logs here: {', '.join(known)}" if known else "is `docmill supervise` running here?"
            fail(f"no log for {pool!r} in {log_dir}; {hint}", EXIT_NO)
        return [path]
    files = sorted(log_dir.glob("*.log")) if log_dir.is_dir() else []
    if not files:
        fail(f"no logs in {log_dir} yet; `docmill supervise` writes them", EXIT_NO)
    # The master's own log first, then the pools'.
    return sorted(files, key=lambda p: (p.stem != SUPERVISOR_LOG, p.name))


def _tail(path: Path, count: int) -> list[str]:
    if count == 0:
        return []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=count)]


def _follow(files: list[Path], headers: bool) -> None:
    """Print lines as they are appended; reopen a file that was rotated."""
    console = stdout()
    handles: dict[Path, Any] = {}
    inodes: dict[Path, int] = {}
    for path in files:
        fh = path.open("r", encoding="utf-8", errors="replace")
        fh.seek(0, 2)
        handles[path], inodes[path] = fh, path.stat().st_ino
    last: Path | None = None
    try:
        while True:
            idle = True
            for path, fh in handles.items():
                for line in fh.readlines():
                    idle = False
                    if headers and last != path:
                        console.print(Text(f"==> {path} <==", style="bold"))
                        last = path
                    console.out(line.rstrip("\n"), highlight=False)
                try:
                    rotated = path.stat().st_ino != inodes[path]
                except FileNotFoundError:
                    rotated = False
                if rotated:
                    fh.close()
                    handles[path] = path.open("r", encoding="utf-8", errors="replace")
                    inodes[path] = path.stat().st_ino
            if idle:
                time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        for fh in handles.values():
            fh.close()
