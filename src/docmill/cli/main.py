"""Entry point of the `docmill` console script."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="docmill: document-processing job queues.")


def run() -> None:
    app()
