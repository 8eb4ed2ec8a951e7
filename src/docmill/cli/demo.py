"""`docmill demo`: the whole system on its embedded default, no server needed."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Run the demo (not built yet)."""
        raise typer.Exit(2)
