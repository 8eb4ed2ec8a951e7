"""`docmill queue work`: one worker process (the seed's `queue:work`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("work")
    def work() -> None:
        """Process jobs (not built yet)."""
        raise typer.Exit(2)
