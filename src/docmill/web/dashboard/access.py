"""Who is looking at the dashboard, and whether they may act.

Pages depend on ``Viewer`` (any signed-in user), actions on ``Operator``: a signed-in
user with the operator role whose form carries the session's CSRF token (compared in
constant time). Every action is a POST; a GET never changes anything.

With no users configured the dashboard is open to requests from this host only (client,
``Host`` and ``Origin`` all loopback, as the API's development exemption): such a visitor
gets an operator session of its own, so the CSRF check applies all the same.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from docmill.web.auth import is_loopback
from docmill.web.dashboard.config import DashboardConfig, Role
from docmill.web.dashboard.reads import LiveDigest, WeekFailures
from docmill.web.dashboard.sessions import COOKIE_NAME, Session, SessionSigner
from docmill.web.dashboard.signin_limit import SignInLimiter

CSRF_FIELD = "csrf_token"
LOCAL_USER = "local"


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, anything else gets 401."""


class ActionRefused(Exception):
    """A request the dashboard will not serve (403); the message says why, in one sentence."""


@dataclass
class DashboardState:
    """What the dashboard keeps on ``app.state.dashboard``."""

    config: DashboardConfig
    signer: SessionSigner
    limiter: SignInLimiter
    week_failures: WeekFailures
    live: LiveDigest

    @classmethod
    def build(cls, config: DashboardConfig) -> DashboardState:
        signer = SessionSigner(config.secret, config.session_s)
        return cls(config, signer, SignInLimiter(), WeekFailures(), LiveDigest())


def dashboard_state(request: Request) -> DashboardState:
    state: DashboardState = request.app.state.dashboard
    return state


def is_local_request(request: Request) -> bool:
    """From this host, to a loopback name, from no other site's page (a DNS-rebinding
    page names a foreign ``Host``; another site's form sends its ``Origin``)."""
    if not is_loopback(request.client.host if request.client else None):
        return False
    host_header = request.headers.get("host")
    if host_header is not None and not is_loopback(urlsplit(f"//{host_header}").hostname):
        return False
    origin = request.headers.get("origin")
    return origin is None or is_loopback(urlsplit(origin).hostname)


def current_session(request: Request) -> Session | None:
    """The visitor's session; in open mode a new local one (the response sets its cookie)."""
    state = dashboard_state(request)
    session = state.signer.loads(request.cookies.get(COOKIE_NAME))
    if state.config.open_on_loopback:
        if not is_local_request(request):
            raise ActionRefused(
                "No dashboard users are configured, so the dashboard answers only on this host; "
                "set DOCMILL_DASHBOARD_USERS to sign in from elsewhere."
            )
        if session is None:
            session = state.signer.new(LOCAL_USER, Role.OPERATOR)
            request.state.new_session = session
    return session


def viewer(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise SignInRequired
    return session


async def operator(request: Request) -> Session:
    """The session of a user who may act, after the CSRF check of the posted form."""
    session = viewer(request)
    form = await request.form()
    check_csrf(session, form)
    if not session.may_act:
        raise ActionRefused(f"{session.user} may look but not act (role {session.role.value}).")
    return session


def check_csrf(session: Session, form: FormData | dict[str, str]) -> None:
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise ActionRefused("This form is out of date or did not come from the dashboard; reload the page.")


Viewer = Annotated[Session, Depends(viewer)]
Operator = Annotated[Session, Depends(operator)]
