"""Entry point of the `docmill` console script: one Typer sub-app per command group."""

from __future__ import annotations

import typer

from docmill.cli import demo, documents, queue, serve, submit, supervise

app = typer.Typer(no_args_is_help=True, help="docmill: document-processing job queues.")
app.add_typer(queue.app, name="queue")
demo.register(app)
supervise.register(app)
app.add_typer(documents.app, name="documents")
serve.register(app)
submit.register(app)


def run() -> None:
    app()
