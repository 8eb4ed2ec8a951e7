"""The operator's dashboard: server-rendered pages at ``/``, live through ``/live``.

``install_dashboard(app, config)`` mounts it on the web app: pages (``pages_queue.py``,
``pages_documents.py``), actions (``actions.py``, POST only), sign-in (``signin.py``), the
event stream (``live.py``) and the static files (``static/``, served from this package:
no CDN, no build step). Who may use it is ``config.py``'s; how, ``access.py``'s.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from docmill.web.dashboard import actions, live, pages_documents, pages_queue, signin
from docmill.web.dashboard.access import ActionRefused, DashboardState, SignInRequired, current_session
from docmill.web.dashboard.config import DashboardConfig
from docmill.web.dashboard.rendering import finish, message_page

__all__ = ["DashboardConfig", "install_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI, config: DashboardConfig) -> None:
    app.state.dashboard = DashboardState.build(config)
    app.mount("/static/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    for module in (signin, live, actions, pages_queue, pages_documents):
        app.include_router(module.router)

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard_alias() -> Response:
        return RedirectResponse("/", status_code=307)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _: SignInRequired) -> Response:
        if request.method == "GET" and request.url.path != "/live" and request.headers.get("x-live") != "1":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
        else:
            response = PlainTextResponse("Sign in to the dashboard first.", status_code=401)
        finish(request, response)
        return response

    @app.exception_handler(ActionRefused)
    async def refused(request: Request, exc: ActionRefused) -> Response:
        try:
            session = current_session(request)
        except ActionRefused:
            session = None
        return message_page(request, session, "Not allowed", str(exc), 403)
