"""`docmill serve`: the HTTP API and the dashboard (uvicorn), refusing to expose itself without tokens.

With no ``DOCMILL_API_TOKENS``, it binds loopback only: any other address is refused
(exit 2) before anything listens. On loopback without tokens, requests are refused too
unless in development (``--dev`` or ``DOCMILL_ENV=development``), where requests from
this host need no token; see ``docmill.web.auth``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from docmill.cli._common import EXIT_UNAVAILABLE, fail, load_settings, stderr


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
        dev: Annotated[
            bool,
            typer.Option("--dev", help="Development: without tokens, let requests from this host in."),
        ] = False,
        log_level: Annotated[
            str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug.")
        ] = "info",
    ) -> None:
        """Serve the HTTP API (OpenAPI at /docs) until interrupted."""
        # Imported here: the web stack is not needed by the other commands.
        import uvicorn

        from docmill.web import create_app
        from docmill.web.auth import development_mode, is_loopback
        from docmill.web.dashboard.config import DashboardConfig, DashboardConfigError

        settings = load_settings().documents
        development = dev or development_mode()
        if not settings.api_tokens and not is_loopback(host):
            fail(
                f"no API tokens are configured, so docmill serve will not listen on {host}; "
                "set DOCMILL_API_TOKENS to one or more comma-separated secret tokens, "
                "or use --host 127.0.0.1",
                EXIT_UNAVAILABLE,
            )
        if not settings.api_tokens:
            if development:
                stderr().print("development: no API tokens, so requests from this host need none.")
            else:
                stderr().print(
                    "warning: no API tokens are configured, so the API refuses all but /api/health; "
                    "set DOCMILL_API_TOKENS, or use --dev on this host.",
                    style="yellow",
                )
        try:
            dashboard = DashboardConfig.from_env()
        except DashboardConfigError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
        if dashboard.open_on_loopback:
            stderr().print("dashboard: no DOCMILL_DASHBOARD_USERS, so it serves this host only.")
        app = create_app(settings, development=development, dashboard=dashboard)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
