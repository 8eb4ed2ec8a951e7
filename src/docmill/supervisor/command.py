"""The command line of a pool's worker process, built from the pool's configuration."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from docmill.supervisor.config import PoolConfig, SupervisorConfig
from docmill.supervisor.process import Command


def docmill_executable() -> tuple[str, ...]:
    """The installed ``docmill`` script beside this interpreter, else on PATH, else through Python."""
    script = Path(sys.executable).parent / ("docmill.exe" if os.name == "nt" else "docmill")
    if script.exists():
        return (str(script),)
    found = shutil.which("docmill")
    if found:
        return (found,)
    return (
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'docmill'; from docmill.cli.entry import run; run()",
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def worker_command(config: SupervisorConfig, pool: PoolConfig) -> Command:
    """``docmill queue work --queue a,b --concurrency .. --connection URL --app APP --json``.

    A URL with a password is handed over in ``DOCMILL_QUEUE_URL`` instead of
    ``--connection``, so it never shows in ``ps``.
    """
    argv = [
        *(config.worker_command or docmill_executable()),
        "queue",
        "work",
        "--queue",
        ",".join(pool.queues),
        "--concurrency",
        str(pool.concurrency),
        "--timeout",
        _number(pool.timeout_s),
        "--tries",
        str(pool.tries),
        "--sleep",
        _number(pool.sleep_s),
        "--max-time",
        _number(pool.max_time_s),
        "--max-jobs",
        str(pool.max_jobs),
        "--memory",
        str(pool.memory_mb),
        # Running jobs get stop_wait_s after SIGTERM; the master's SIGKILL comes a little later
        # (pool.KILL_MARGIN_S) so the worker can hand back what it could not finish.
        "--grace",
        _number(pool.stop_wait_s),
    ]
    env = {"PYTHONUNBUFFERED": "1", "DOCMILL_SUPERVISED_POOL": pool.name}
    if config.config_file is not None:  # the workers' start-up hooks read the same file
        env["DOCMILL_CONFIG"] = str(config.config_file.resolve())
    if urlsplit(config.connection).password is None:
        argv += ["--connection", config.connection]
    else:
        env["DOCMILL_QUEUE_URL"] = config.connection
    if pool.lease_s is not None:
        argv += ["--lease", _number(pool.lease_s)]
    if pool.backoff_s is not None:
        argv += ["--backoff", pool.backoff_s]
    if pool.unknown_handler_wait_s is not None:
        argv += ["--unknown-handler-wait", _number(pool.unknown_handler_wait_s)]
    for app in config.apps:
        argv += ["--app", app]
    argv.append("--json")
    return Command(tuple(argv), env)
