"""`docmill supervise`: the master process that runs this host's worker pools."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from docmill.cli._common import EXIT_UNAVAILABLE, ConnectionOption, fail
from docmill.supervisor import SupervisorConfig, SupervisorConfigError, load_config
from docmill.supervisor.runner import supervise as run_master

# The handlers a worker loads when no --app, DOCMILL_APP or [supervisor] app names others.
DOCUMENT_PIPELINE_APP = "docmill.documents.jobs:registry"

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
    loaded = load_config(config, connection=connection, apps=apps)
    if loaded.apps:
        return loaded
    sources = {**loaded.sources, "app": "default (docmill's document pipeline)"}
    return dataclasses.replace(loaded, apps=(DOCUMENT_PIPELINE_APP,), sources=sources)


def register(app: typer.Typer) -> None:
    @app.command("supervise")
    def supervise(
        config: ConfigOption = None,
        connection: ConnectionOption = None,
        apps: AppOption = None,
        json_logs: Annotated[
            bool, typer.Option("--json-logs", help="Write the master's log as JSON.")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", help="Log to storage/logs only, not stderr.")] = False,
    ) -> None:
        """Run this host's worker pools: restart, recycle, scale, and stop them gracefully.

        Signals: TERM/INT graceful shutdown (a second one kills), HUP reload the configuration
        with a rolling restart, USR2 pause (zero workers), CONT continue.
        """

        def load() -> SupervisorConfig:
            return effective_config(config, connection, tuple(apps or ()))

        try:
            effective = load()
        except SupervisorConfigError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
        raise typer.Exit(run_master(effective, reload=load, json_lines=json_logs, echo=not quiet))
