"""Rendering a dashboard page: the template, the common context, cookies and headers.

A request with ``X-Live: 1`` (the live script) gets only the page's ``live`` block, which
it swaps in place; anything else gets the whole page. Every answer forbids caching and
framing, and its Content-Security-Policy lets in only this server's own scripts and styles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from docmill.web.dashboard.access import dashboard_state
from docmill.web.dashboard.formatting import install_filters
from docmill.web.dashboard.sessions import COOKIE_NAME, Session

HERE = Path(__file__).parent
NOTICE_COOKIE = "docmill_notice"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = (
    ("/", "Overview"),
    ("/failed", "Failed"),
    ("/jobs", "Jobs"),
    ("/documents", "Documents"),
    ("/approvals", "Approvals"),
    ("/workers", "Workers"),
    ("/money", "Money"),
    ("/charts", "Charts"),
)

templates = Jinja2Templates(directory=str(HERE / "templates"))
install_filters(templates.env)


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    status_code: int = 200,
    digest: str = "",
    **context: Any,
) -> Response:
    fragment = request.headers.get("x-live") == "1"
    state = dashboard_state(request)
    notice = unquote(request.cookies.get(NOTICE_COOKIE) or "") or None
    page = {
        "session": session,
        "may_act": session is not None and session.may_act,
        "csrf_token": session.csrf_token if session is not None else "",
        "open_mode": state.config.open_on_loopback,
        "notice": notice[:300] if notice else None,
        "fragment": fragment,
        "nav": NAV,
        "path": request.url.path,
        "return_to": return_path(request),
        "digest": digest,
        **context,
    }
    response = templates.TemplateResponse(request, template, page, status_code=status_code)
    finish(request, response)
    if fragment:
        response.headers["X-Live"] = "1"
    elif notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def return_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


def safe_return(target: str | None, default: str = "/") -> str:
    """A local path to go back to after an action; anything else (another site) is ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def back(request: Request, target: str | None, notice: str) -> Response:
    """After an action: 303 to ``target`` (a local path), with ``notice`` shown there once."""
    response = RedirectResponse(safe_return(target), status_code=303)
    response.set_cookie(
        NOTICE_COOKIE,
        quote(notice[:300], safe=""),
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    """Security headers, and the cookie of a session made for this request (open mode)."""
    response.headers.update(SECURITY_HEADERS)
    new_session: Session | None = getattr(request.state, "new_session", None)
    if new_session is not None:
        set_session_cookie(request, response, new_session)


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    state = dashboard_state(request)
    response.set_cookie(
        COOKIE_NAME,
        state.signer.dumps(session),
        max_age=int(state.signer.lifetime_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def message_page(
    request: Request, session: Session | None, title: str, text: str, status_code: int
) -> Response:
    return render(request, "message.html", session, status_code=status_code, title=title, text=text)
