"""The `docmill` console script's entry point.

`docmill queue work` goes straight to the lean ``docmill.queue.worker_main`` in this
process, without importing Typer, Rich and the other command groups first and then
replacing itself (which the Typer command still does): a worker is ready in about
0.2 s instead of 0.6 s, and its process never peaks at the CLI's 45 MB.
Without ``--connection`` the worker takes its queue URL from the configuration every other
command reads (``docmill.config``: the environment, then ``[supervisor] connection`` of
``docmill.toml``, then ``queue.db`` in ``DOCMILL_STORAGE``), loaded only then.
Every other command, and `docmill queue work --help`, is the Typer app in ``docmill.cli.main``.
"""

from __future__ import annotations

import sys
from typing import NoReturn


def run() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["queue", "work"] and not {"--help", "-h"}.intersection(argv[2:]):
        work(argv[2:])
    from docmill.cli.main import app

    app()


def work(argv: list[str]) -> NoReturn:
    """Run one worker with the application's configuration as its default queue URL."""
    from docmill.queue.worker_main import run as run_worker

    run_worker(argv, default_url=configured_queue_url)


def configured_queue_url() -> str:
    """The queue URL of ``docmill.config``; an invalid value is the worker's boot failure."""
    from docmill.config import load

    return load().queue_url
