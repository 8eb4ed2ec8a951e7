"""The lean entry point of one worker process: ``python -m docmill.queue.worker_main ...``.

``docmill queue work`` replaces its own process with this module (same pid, so
signals from a supervisor still reach the worker), so a running worker never
carries the CLI's Typer and Rich. Only argparse and the engine are imported.

Exit codes are ``WorkerStopReason.exit_code``; anything that keeps the worker
from starting as configured (bad option, bad ``--app``, unknown backend, malformed
URL) is ``BOOT_FAILURE`` so a supervisor stops restarting it. An unreachable
backend is an outage, not a configuration error: the worker retries for
``DOCMILL_CONNECT_GRACE_S`` (30 s) and then exits ``BACKEND_LOST``. The process always ends
with ``os._exit`` after flushing its output: a sync handler stuck in a thread
must not keep a stopped worker alive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from docmill.queue.backend import Backend
from docmill.queue.backends import backend_from_url, mask_url
from docmill.queue.connection import queue_url_from_env
from docmill.queue.errors import ConfigurationError
from docmill.queue.events import LEVELS, EventLog
from docmill.queue.names import check_queue_name
from docmill.queue.options import WorkerOptions, normalize_backoff
from docmill.queue.registry import Registry, load_registry
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker

DEFAULTS = WorkerOptions()
# How long a starting worker keeps trying an unreachable backend before it exits BACKEND_LOST.
CONNECT_GRACE_S = float(os.environ.get("DOCMILL_CONNECT_GRACE_S", "30"))
# How long a running worker that holds no job keeps trying a failing backend before it exits
# BACKEND_LOST; one holding jobs or unsent acks waits for the backend however long it takes.
BACKEND_GRACE_S = float(os.environ.get("DOCMILL_BACKEND_GRACE_S", "60"))


class BadOption(Exception):
    """argparse found a bad option; reported as a boot failure, not argparse's exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadOption(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="docmill queue work",
        description="Process jobs from the queues (the seed's queue:work). Stops with a named reason "
        "and exit code: 0 on purpose, 12 memory, 13 job timeout, 14 backend lost, 3 boot failure.",
    )
    add = p.add_argument
    add("--queue", default="default", help="queues in priority order, comma separated (default: default)")
    add("--app", action="append", default=[], help="handler registry module:attr (repeatable or comma list)")
    add(
        "--connection",
        default=None,
        help="backend URL (default: $DOCMILL_QUEUE_URL, QUEUE_CONNECTION, the connection in "
        "docmill.toml, queue.db in $DOCMILL_STORAGE)",
    )
    add("--concurrency", type=int, default=DEFAULTS.concurrency, help="jobs run at once (default: 10)")
    add("--tries", type=int, default=DEFAULTS.tries, help="attempts per job unless the job or queue says")
    add("--max-exceptions", type=int, default=None, help="fail after this many exceptions")
    add("--timeout", type=float, default=DEFAULTS.timeout_s, help="seconds a job may run (default: 60)")
    add("--backoff", default=str(DEFAULTS.backoff_s), help="retry delay: '5' or '1,5,30' (last repeats)")
    add("--sleep", type=float, default=DEFAULTS.sleep_s, help="longest idle wait between polls, seconds")
    add("--max-time", type=float, default=0.0, help="stop after this many seconds (0: never)")
    add("--max-jobs", type=int, default=0, help="stop after this many jobs (0: never)")
    add("--memory", type=int, default=DEFAULTS.memory_mb, help="stop when RSS exceeds this many MB (0: off)")
    add("--rest", type=float, default=0.0, help="seconds a slot rests after each job")
    add("--stop-when-empty", action="store_true", help="stop when the queues are empty")
    add("--lease", type=float, default=DEFAULTS.lease_s, help="lease seconds, renewed every third of it")
    add("--grace", type=float, default=DEFAULTS.stop_grace_s, help="seconds running jobs get after SIGTERM")
    add(
        "--unknown-handler-wait",
        type=float,
        default=DEFAULTS.unknown_handler_wait_s,
        help="seconds a job whose handler this worker lacks is put back for one that has it, "
        "then failed (default: 300; 0: fail at once)",
    )
    add(
        "--loop",
        default="auto",
        choices=("auto", "uvloop", "asyncio"),
        help="event loop: uvloop where installed (auto, the default), or asyncio's own",
    )
    add("--json", action="store_true", help="log JSON lines")
    add("--log-level", default="info", choices=sorted(LEVELS), help="debug, info, warning or error")
    return p


def options_from_args(args: argparse.Namespace) -> WorkerOptions:
    """The ``WorkerOptions`` the command line asks for; ``ConfigurationError`` when invalid."""
    backoff = normalize_backoff(args.backoff)
    queues = tuple(check_queue_name(q.strip(), where="--queue") for q in args.queue.split(",") if q.strip())
    if args.timeout <= 0:
        raise ConfigurationError(f"--timeout must be positive, got {args.timeout}")
    return WorkerOptions(
        queues=queues,
        concurrency=args.concurrency,
        tries=args.tries,
        max_exceptions=args.max_exceptions,
        timeout_s=args.timeout,
        backoff_s=0 if backoff is None else backoff,
        sleep_s=args.sleep,
        max_time_s=args.max_time,
        max_jobs=args.max_jobs,
        memory_mb=args.memory,
        rest_s=args.rest,
        stop_when_empty=args.stop_when_empty,
        lease_s=args.lease,
        stop_grace_s=args.grace,
        unknown_handler_wait_s=args.unknown_handler_wait,
    )


def load_apps(specs: Sequence[str]) -> Registry:
    """One registry holding the handlers of every ``--app`` (``DOCMILL_APP`` when none is given)."""
    names = [s.strip() for spec in specs for s in spec.split(",") if s.strip()]
    if not names and os.environ.get("DOCMILL_APP"):
        names = [s.strip() for s in os.environ["DOCMILL_APP"].split(",") if s.strip()]
    if not names:
        raise ConfigurationError("no handlers to run: give --app module:registry (or set DOCMILL_APP)")
    if os.getcwd() not in sys.path:  # --app modules in the working directory, as `python -m` finds them
        sys.path.insert(0, os.getcwd())
    merged = Registry()
    for name in names:
        merged.include(load_registry(name))
    return merged


def main(argv: Sequence[str] | None = None, default_url: Callable[[], str] | None = None) -> int:
    """Run one worker; return its exit code.

    Without ``--connection`` the URL is ``default_url()`` (the application's configuration,
    which the ``docmill`` console script passes), else the environment's.
    """
    log = EventLog()
    try:
        args = build_parser().parse_args(argv)
        log = EventLog(json_lines=args.json, level=args.log_level)
        options = options_from_args(args)
        registry = load_apps(args.app)
        url = args.connection or (default_url() if default_url else queue_url_from_env(os.environ))
        backend = backend_from_url(url)
        runner = event_loop_runner(args.loop)
    except (BadOption, ConfigurationError, ValueError) as exc:
        return _boot_failure(log, exc)
    with runner:
        return runner.run(_work(backend, registry, options, log, url))


def event_loop_runner(kind: str) -> asyncio.Runner:
    """A runner on uvloop where it is installed (``auto``) or asked for, else on asyncio's loop.

    uvloop runs the worker's I/O callbacks and timers in C: on the peer benchmark's
    workloads a worker on it drained no-op jobs 17-29% faster and finished 2,000 I/O-bound
    jobs about 1.5% sooner (docs/benchmarks.md).
    """
    if kind == "asyncio":
        return asyncio.Runner()
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise ConfigurationError("--loop uvloop: uvloop is not installed") from None
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def _work(backend: Backend, registry: Registry, options: WorkerOptions, log: EventLog, url: str) -> int:
    try:
        attempts = await _connect(backend, log, mask_url(url))
    except ConfigurationError as exc:  # e.g. a malformed URL: no retry can fix it
        return _boot_failure(log, exc, connection=mask_url(url))
    if not attempts:
        reason = WorkerStopReason.BACKEND_LOST
        log.error("worker.stopped", reason=reason.name, exit_code=reason.exit_code)
        return reason.exit_code
    worker = Worker(backend, registry, options, log=log, handle_signals=True, backend_grace_s=BACKEND_GRACE_S)
    if attempts > 1:
        # It came up during an outage: the workers that rode it out must deliver their acks
        # before anyone reserves, which would hand out their jobs again (queue/outage.py).
        worker.outage.settle()
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # full passes, which would otherwise walk it all (several ms) in the middle of jobs.
    gc.freeze()
    reason = await worker.run()
    return reason.exit_code


async def _connect(backend: Backend, log: EventLog, connection: str) -> int:
    """Connect, retrying with backoff for ``CONNECT_GRACE_S``: an outage is not a boot failure.

    Returns how many attempts it took, 0 if none succeeded: a backend that stays unreachable
    ends the worker with ``BACKEND_LOST`` (the supervisor keeps retrying with backoff); a
    ``ConfigurationError`` is raised at once.
    """
    deadline = time.monotonic() + CONNECT_GRACE_S
    delay_s = 0.5
    attempts = 0
    while True:
        attempts += 1
        try:
            await backend.connect()
            return attempts
        except ConfigurationError:
            raise
        except Exception as exc:
            left = deadline - time.monotonic()
            log.warning(
                "worker.backend_unreachable",
                connection=connection,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=round(min(delay_s, max(left, 0.0)), 1),
            )
            if left <= 0:
                return 0
            await asyncio.sleep(min(delay_s, left))
            delay_s = min(delay_s * 2, 10.0)


def _boot_failure(log: EventLog, exc: BaseException, **extra: str) -> int:
    reason = WorkerStopReason.BOOT_FAILURE
    log.error("worker.boot_failed", error=f"{type(exc).__name__}: {exc}", **extra)
    log.error("worker.stopped", reason=reason.name, exit_code=reason.exit_code)
    return reason.exit_code


def run(argv: Sequence[str] | None = None, default_url: Callable[[], str] | None = None) -> NoReturn:
    """Run ``main`` and end the process with its exit code (see the module docstring)."""
    code = main(argv, default_url)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
