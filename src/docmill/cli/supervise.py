"""`docmill supervise`: the master process that runs this host's worker pools."""

from __future__ import annotations

from typing import Annotated

import typer

from docmill.cli._common import EXIT_UNAVAILABLE, ConnectionOption, fail
from docmill.config import InvalidConfiguration, load
from docmill.supervisor import SupervisorConfig
from docmill.supervisor.runner import supervise as run_master

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Pools file (TOML). Default: $DOCMILL_CONFIG, else ./docmill.toml if present, else the "
        "seed's pools.",
        show_default=False,
    ),
]
AppOption = Annotated[
    list[str] | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help=(
            "Handler registry the workers load (repeatable). Default: $DOCMILL_APP, then the "
            "app key of the supervisor table in docmill.toml, then the document pipeline."
        ),
        show_default=False,
    ),
]


def effective_config(config: str | None, connection: str | None, apps: tuple[str, ...]) -> SupervisorConfig:
    """The supervisor's configuration; with no handlers named anywhere, docmill's own pipeline."""
    return load(config_file=config, connection=connection, apps=apps).supervisor


def register(app: typer.Typer) -> None:
    @app.command("supervise")
    def supervise(
        config: ConfigOption = None,
        connection: ConnectionOption = None,
        apps: AppOption = None,
        json_logs: Annotated[
            bool, typer.Option("--json-logs", help="Write the master's log as JSON.")
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", help="Log to the storage's logs/ only, not stderr.")
        ] = False,
    ) -> None:
        """Run this host's worker pools: restart, recycle, scale, and stop them gracefully.

        Signals: TERM/INT graceful shutdown (a second one kills), HUP reload the configuration
        with a rolling restart, USR2 pause (zero workers), CONT continue.
        """

        def load() -> SupervisorConfig:
            return effective_config(config, connection, tuple(apps or ()))

        try:
            effective = load()
        except InvalidConfiguration as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
        raise typer.Exit(run_master(effective, reload=load, json_lines=json_logs, echo=not quiet))
