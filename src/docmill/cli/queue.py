"""`docmill queue ...`: the worker and the operator's commands on the engine."""

from __future__ import annotations

import typer

from docmill.cli import queue_work

app = typer.Typer(no_args_is_help=True, help="Run workers and operate the job queues.")
queue_work.register(app)
