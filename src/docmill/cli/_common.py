"""Helpers every `docmill` command shares: options, opening the backend, errors, rendering.

Commands stay thin: they parse input, call one engine operation through
``with_backend``, and render the result for people (tables that fit any width:
``tables.Sheet``, built from the read models in ``views``) or as JSON
(``--json``) for scripts.

Exit codes: 0 success; 1 the command ran but the answer is "no" (job not
found, a queue over ``--max``, confirmation declined); 2 the command could not
run (backend unreachable, bad URL or option).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from docmill.queue import (
    Backend,
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    Job,
    backend_from_url,
    mask_url,
)
from docmill.queue.names import check_queue_name

if TYPE_CHECKING:
    from docmill.config import Settings

T = TypeVar("T")

EXIT_NO = 1
EXIT_UNAVAILABLE = 2

ConnectionOption = Annotated[
    str | None,
    typer.Option(
        "--connection",
        "-c",
        metavar="URL",
        help="Queue URL (redis://..., sqlite:///...). Default: $DOCMILL_QUEUE_URL, else "
        "QUEUE_CONNECTION=redis with REDIS_HOST/REDIS_PORT/REDIS_PASSWORD, else the connection in "
        "docmill.toml, else queue.db in $DOCMILL_STORAGE (./storage).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def checked_queue(value: str | None) -> str | None:
    """A ``--queue``/QUEUE value, or exit 2 with the rule when it is no valid queue name."""
    if value is not None:
        try:
            check_queue_name(value)
        except ConfigurationError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
    return value


def checked_queue_list(values: list[str] | None) -> list[str] | None:
    """Queue names given as arguments, each a name or a comma list, checked as ``checked_queue``."""
    for value in values or []:
        for name in value.split(","):
            if name:
                checked_queue(name)
    return values


QueueFilterOption = Annotated[
    str | None,
    typer.Option(
        "--queue", "-q", metavar="QUEUE", help="Only this queue.", show_default=False, callback=checked_queue
    ),
]


def stdout() -> Console:
    """The console for results. Rich reads the width from ``COLUMNS`` when it is set."""
    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


# ---------------------------------------------------------------------------- connection


def load_settings(
    config: str | None = None,
    connection: str | None = None,
    apps: tuple[str, ...] = (),
    *,
    as_json: bool = False,
) -> Settings:
    """The configuration (``docmill.config.load``); a bad value ends the command with exit 2."""
    from docmill.config import InvalidConfiguration, load

    try:
        return load(config_file=config, connection=connection, apps=apps)
    except InvalidConfiguration as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json)


def queue_url(connection: str | None, *, as_json: bool = False) -> str:
    """The queue URL a command uses: ``--connection``, else the configuration's."""
    return load_settings(connection=connection, as_json=as_json).queue_url


def with_backend(
    connection: str | None, action: Callable[[Backend], Awaitable[T]], *, as_json: bool = False
) -> T:
    """Connect to the backend, run ``action`` on it, close it; turn failures into one sentence.

    ``typer.Exit`` raised inside ``action`` passes through untouched.
    """
    url = queue_url(connection, as_json=as_json)
    try:
        backend = backend_from_url(url)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json)

    async def run() -> T:
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(run())
    except typer.Exit:
        raise
    except ConfigurationError as exc:
        fail(str(exc), EXIT_UNAVAILABLE, as_json=as_json)
    except Exception as exc:
        if _is_connection_failure(exc):
            fail(unreachable_message(url, exc), EXIT_UNAVAILABLE, as_json=as_json)
        if isinstance(exc, BackendError):
            fail(f"the queue backend at {mask_url(url)} failed: {exc}", EXIT_UNAVAILABLE, as_json=as_json)
        raise


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_failure(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, BackendUnavailable | ConnectionError | TimeoutError | socket.gaierror):
            return True
        if isinstance(err, sqlite3.OperationalError) and "unable to open" in str(err):
            return True
        if type(err).__module__.startswith("redis") and type(err).__name__ in {
            "ConnectionError",
            "TimeoutError",
            "AuthenticationError",
            "AuthenticationWrongNumberOfArgsError",
        }:
            return True
    return False


def unreachable_message(url: str, exc: BaseException) -> str:
    """``cannot reach the queue backend at URL: REASON; HINT`` with the password masked."""
    text = " ".join(str(err) for err in _chain(exc)).lower()
    names = {type(err).__name__ for err in _chain(exc)}
    scheme = urlsplit(url).scheme.lower()
    redis = scheme.startswith("redis")
    if "ConnectionRefusedError" in names or "refused" in text:
        reason, hint = "connection refused", "is Redis running?" if redis else "is the server running?"
    elif (
        "AuthenticationError" in names
        or "noauth" in text
        or "invalid password" in text
        or "wrongpass" in text
    ):
        reason, hint = "authentication failed", "check the password in the URL or REDIS_PASSWORD"
    elif "gaierror" in names or "name or service not known" in text or "nodename nor servname" in text:
        reason, hint = "host not found", "check the host name in the URL or REDIS_HOST"
    elif "TimeoutError" in names or "timed out" in text or "timeout" in text:
        reason, hint = "connection timed out", "is Redis running and reachable from this host?"
    elif scheme == "sqlite":
        reason, hint = "cannot open the database file", "check that its directory exists and is writable"
    else:
        deepest = list(_chain(exc))[-1]
        reason, hint = (str(deepest) or type(deepest).__name__).rstrip("."), "check the queue URL"
    return f"cannot reach the queue backend at {mask_url(url)}: {reason}; {hint}"


# ---------------------------------------------------------------------------- output


def fail(message: str, code: int = EXIT_NO, *, as_json: bool = False) -> NoReturn:
    """Print one sentence to stderr (and ``{"error": ...}`` to stdout under ``--json``) and exit."""
    if as_json:
        print_json({"error": message})
    stderr().print(Text(f"error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def ago(ts: float | None, now: float | None = None) -> str:
    """A relative age for people: ``just now``, ``42s ago``, ``3m ago``, ``5h ago``, ``2d ago``."""
    if ts is None:
        return "-"
    delta = (time.time() if now is None else now) - ts
    if delta < 0:
        return f"in {span(-delta)}"
    if delta < 1:
        return "just now"
    return f"{span(delta)} ago"


def span(seconds: float) -> str:
    """A coarse span: ``42s``, ``3m``, ``5h``, ``2d``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def duration(seconds: float | None) -> str:
    """A precise duration: ``12ms``, ``1.40s``, ``3m 12s``, ``2h 05m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def timestamp(ts: float | None) -> str:
    """Local time with its relative age: ``2024-05-01 12:03:04 (3m ago)``."""
    if ts is None:
        return "-"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ts))} ({ago(ts)})"


def new_table(title: str | None = None) -> Table:
    """The house style: a heavy header rule, column rules, no outer frame (it costs width)."""
    return Table(title=title, title_justify="left", show_edge=False, pad_edge=False)


def render_job(console: Console, job: Job) -> None:
    """Everything about one job: where it is, its payload, and its last error with traceback."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a long value wraps; none is cut
    tries = f"{job.attempts} of {job.tries}" if job.tries else f"{job.attempts} (worker default limit)"
    rows: list[tuple[str, str]] = [
        ("ID", job.id),
        ("Job", job.name),
        ("Queue", job.queue),
        ("State", str(job.state)),
        ("Attempts", tries),
        ("Exceptions", str(job.exceptions)),
        ("Created", timestamp(job.created_at)),
        ("Available", timestamp(job.available_at)),
        ("Reserved", timestamp(job.reserved_at)),
        ("Finished" if job.state != "failed" else "Failed", timestamp(job.finished_at)),
        ("Runtime", duration(job.runtime_s)),
    ]
    if job.timeout_s is not None:
        rows.append(("Timeout", duration(job.timeout_s)))
    if job.unique_key:
        rows.append(("Unique key", job.unique_key))
    if job.tags:
        rows.append(("Tags", ", ".join(job.tags)))
    payload = json.dumps({"args": job.args, "kwargs": job.kwargs}, default=str)
    rows.append(("Payload", payload))
    if job.error is not None:
        rows.append(("Error", job.error.summary()))
    for key, value in rows:
        table.add_row(key, Text(value))
    console.print(table)
    if job.error is not None and job.error.traceback:
        console.print()
        console.print(Text("Traceback", style="bold"))
        console.print(Text(job.error.traceback.rstrip("\n")), soft_wrap=True)
