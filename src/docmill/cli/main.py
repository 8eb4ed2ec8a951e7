"""Entry point of the `docmill` console script: one Typer sub-app per command group."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from docmill import __version__
from docmill.cli import demo, documents, queue, serve, submit, supervise

app = typer.Typer(no_args_is_help=True, help="docmill: document-processing job queues.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"docmill {version()}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """docmill: document-processing job queues."""


def version() -> str:
    """The installed distribution's version; the source tree's when docmill is not installed."""
    try:
        return metadata.version("docmill")
    except metadata.PackageNotFoundError:
        return __version__


app.add_typer(queue.app, name="queue")
demo.register(app)
supervise.register(app)
app.add_typer(documents.app, name="documents")
serve.register(app)
submit.register(app)


def run() -> None:
    app()
