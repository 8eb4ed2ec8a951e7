"""`docmill queue work`: one worker process (the seed's `queue:work`).

The console script sends `docmill queue work` to ``docmill.queue.worker_main``
before Typer is even imported (``docmill.cli.entry``). This command is the way
in for callers of the Typer app itself (``docmill.cli.main.app``, as in tests):
it replaces this process with the lean worker (same pid, so a supervisor's
signals still reach it), so that a running worker does not keep Typer and Rich
in memory. Options and their help live in ``worker_main`` alone: `docmill queue
work --help` shows them.
"""

from __future__ import annotations

import os
import sys

import typer

# The console script's way into the worker (``docmill.cli.entry.work``), for the exec'd process.
_WORKER = "import sys; from docmill.cli.entry import work; work(sys.argv[1:])"


def register(app: typer.Typer) -> None:
    @app.command(
        "work",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def work(ctx: typer.Context) -> None:
        """Process jobs from the queues; `docmill queue work --help` lists the options."""
        argv = [sys.executable, "-c", _WORKER, *ctx.args]
        sys.stdout.flush()
        sys.stderr.flush()
        if os.name == "posix":
            os.execv(sys.executable, argv)
        from docmill.cli.entry import work as run  # no exec elsewhere: run in this process

        run(list(ctx.args))
