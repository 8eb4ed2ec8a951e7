"""The web app factory: ``create_app(settings)`` builds the FastAPI application.

Its lifespan opens the per-process dependencies (the documents database, migrated;
the queue backend; the service over them) and closes them on shutdown. Everything a
request needs sits on ``app.state``; there are no module globals, so two apps (two
tests) never share a connection:

    app.state.settings   DocumentSettings
    app.state.auth       AuthPolicy (tokens, development exemption)
    app.state.context    DocumentContext (database, files, queue backend and client)
    app.state.service    DocumentService: the only thing the routes call
    app.state.sse_poll_s how often an event stream looks for new status changes
    app.state.dashboard  the dashboard's users, session signer and sign-in limiter
    app.state.job_totals running job counters of /metrics (``job_totals.py``)

Run it with ``docmill serve``, or ``uvicorn --factory docmill.web.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import docmill
from docmill.documents.context import DocumentContext
from docmill.documents.settings import DocumentSettings
from docmill.web.auth import AuthPolicy, development_mode
from docmill.web.dashboard import DashboardConfig, install_dashboard
from docmill.web.errors import install_error_handlers
from docmill.web.job_totals import JobTotals
from docmill.web.routers import documents, failed, health, metrics, queues, workers
from docmill.web.routers.docs import install_docs

SSE_POLL_S = 0.5

DESCRIPTION = """\
Upload documents, follow them through analysis, estimate, approval and processing,
and fetch their results; see the job queues, failed jobs and workers, and steer them.

Every route but `/api/health`, `/healthz` and `/readyz` needs `Authorization: Bearer <token>`
with a token from the server's `DOCMILL_API_TOKENS`.
Errors are JSON: `{"error": {"type": ..., "message": ...}}`.
"""


def create_app(
    settings: DocumentSettings | None = None,
    *,
    development: bool | None = None,
    dashboard: DashboardConfig | None = None,
) -> FastAPI:
    """The API over ``settings`` (default: from the environment).

    ``development`` (default: ``DOCMILL_ENV=development``) lets requests from loopback
    through when no token is configured; see ``auth.py``. ``dashboard`` names the
    dashboard's users (default: ``DashboardConfig.from_env()``).
    """
    if settings is None:
        from docmill.config import load

        settings = load().documents
    development = development_mode() if development is None else development

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await DocumentContext.create(settings)
        app.state.context = context
        app.state.service = context.service
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(
        title="docmill",
        version=docmill.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.auth = AuthPolicy.build(settings.api_tokens, development=development)
    app.state.sse_poll_s = SSE_POLL_S
    install_error_handlers(app)
    app.state.job_totals = JobTotals()
    install_docs(app, title="docmill")
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(documents.router)
    app.include_router(queues.router)
    app.include_router(failed.router)
    app.include_router(workers.router)
    install_dashboard(app, dashboard if dashboard is not None else DashboardConfig.from_env())
    return app
