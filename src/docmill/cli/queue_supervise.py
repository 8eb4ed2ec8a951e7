"""`docmill queue status|stop|start|logs|config`: the supervised pools, seen and steered.

``status`` exit codes: 0 running (at least one master runs workers), 1 paused or
stopped, 2 inactive (no master heartbeat) or the backend cannot be reached.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from docmill.cli._common import (
    EXIT_NO,
    ConnectionOption,
    JsonOption,
    fail,
    load_settings,
    print_json,
    span,
    stdout,
    with_backend,
)
from docmill.cli.log_lines import readable
from docmill.cli.supervise import ConfigOption
from docmill.cli.views import config_sheet, masters_sheet, queues_sheet, styled, workers_sheet
from docmill.llm.circuit import OpenCircuit, circuit_of_key
from docmill.queue import Backend
from docmill.supervisor import SupervisorConfig
from docmill.supervisor.control import BackendControlStore, start_workers, stop_workers
from docmill.supervisor.logs import SUPERVISOR_LOG
from docmill.supervisor.status import ClusterStatus, read_cluster_status


def _config(config: str | None, connection: str | None = None) -> SupervisorConfig:
    return load_settings(config, connection).supervisor


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
        host = socket.gethostname() if local else None
        api_key = load_settings(connection=connection, as_json=as_json).llm.anthropic_api_key

        async def load(backend: Backend) -> tuple[ClusterStatus, OpenCircuit | None]:
            status = await read_cluster_status(backend, host=host)
            return status, await circuit_of_key(backend, api_key)

        status, circuit = with_backend(connection, load, as_json=as_json)
        if as_json:
            llm_stopped = (
                None
                if circuit is None
                else {**circuit.to_flag(), "since_text": circuit.since_text, "summary": circuit.summary()}
            )
            print_json({**status.to_dict(), "llm_calls_stopped": llm_stopped})
        else:
            _render_status(status, circuit)
        raise typer.Exit(status.exit_code)

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
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the log lines as stored: one JSON object each.")
        ] = False,
    ) -> None:
        """Show the end of the workers' logs in the storage's logs/ (written by `docmill supervise`)."""
        log_dir = _config(config).log_dir
        files = _log_files(log_dir, pool)
        headers = len(files) > 1 and not as_json
        show = (lambda line: line) if as_json else readable
        console_out = stdout()
        for index, path in enumerate(files):
            if headers:
                console_out.print(Text(f"{'' if index == 0 else chr(10)}==> {path} <==", style="bold"))
            for line in _tail(path, lines):
                console_out.out(show(line), highlight=False)
        if follow:
            _follow(files, headers, show)

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
        where = effective.config_file or "no file: the seed's pools"
        config_sheet(rows, str(where)).print(stdout())


# ---------------------------------------------------------------------------- status


def _render_status(status: ClusterStatus, circuit: OpenCircuit | None) -> None:
    console = stdout()
    console.print(Text.assemble("Supervisors: ", styled(status.state)))
    flag = status.workers_stopped
    if flag is not None:
        console.print(
            Text(
                f"Workers stopped on every host by {flag.by} ({span(time.time() - flag.at)} ago); "
                "start them with: docmill queue start",
                style="yellow",
            )
        )
    if circuit is not None:
        console.print(Text(circuit.summary(), style="bold red"))
    if not status.masters:
        console.print("No `docmill supervise` is running on any host (no heartbeat lately).")
    if status.masters:
        masters_sheet(status.masters).print(console)
    for m in status.masters:
        for p in m.pools:
            if p.fatal_reason:
                console.print(Text(f"Pool {p.name} on {m.host} is FATAL: {p.fatal_reason}", style="red"))
    if status.workers:
        workers_sheet(status.workers).print(console)
    if status.queues:
        queues_sheet(status.queues).print(console)


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


def _follow(files: list[Path], headers: bool, show: Callable[[str], str]) -> None:
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
                    console.out(show(line.rstrip("\n")), highlight=False)
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
