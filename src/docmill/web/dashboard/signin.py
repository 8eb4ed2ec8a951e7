"""Signing in and out. The password is checked against its hash in constant time, and a
name nobody has is checked against a dummy hash, so the time taken tells nothing; failures
are limited per address and per name (``signin_limit.py``)."""

from __future__ import annotations

import logging
import math
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from docmill.web.dashboard.access import ActionRefused, check_csrf, current_session, dashboard_state
from docmill.web.dashboard.passwords import hash_password, verify_password
from docmill.web.dashboard.rendering import finish, render, safe_return, set_session_cookie
from docmill.web.dashboard.sessions import COOKIE_NAME

log = logging.getLogger("docmill.web")
router = APIRouter(include_in_schema=False)
_DUMMY_HASH = hash_password("not a password anybody has")


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    state = dashboard_state(request)
    if state.config.open_on_loopback or current_session(request) is not None:
        return RedirectResponse(safe_return(next), status_code=303)
    return render(
        request, "signin.html", None, title="Sign in", next=safe_return(next), username="", error=None
    )


@router.post("/signin")
async def signin(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = dashboard_state(request)
    _same_origin(request)
    if state.config.open_on_loopback:
        return RedirectResponse("/", status_code=303)
    address = request.client.host if request.client else "-"
    keys = (f"address:{address}", f"user:{username.lower()}")
    wait_s = state.limiter.retry_after_s(*keys)
    if wait_s > 0:
        minutes = max(1, math.ceil(wait_s / 60))
        return _refuse(request, username, next, f"Too many failed sign-ins; try again in {minutes} min.", 429)
    user = state.config.users.get(username)
    valid = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not valid:
        state.limiter.failed(*keys)
        log.warning("dashboard.signin_failed user=%s address=%s", username[:64], address)
        return _refuse(request, username, next, "The user name or the password is wrong.", 401)
    log.info("dashboard.signed_in user=%s role=%s address=%s", user.name, user.role.value, address)
    response = RedirectResponse(safe_return(next), status_code=303)
    set_session_cookie(request, response, state.signer.new(user.name, user.role))
    finish(request, response)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    session = current_session(request)
    if session is not None:
        check_csrf(session, await request.form())
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    finish(request, response)
    return response


def _refuse(request: Request, username: str, next_path: str, error: str, status_code: int) -> Response:
    return render(
        request,
        "signin.html",
        None,
        status_code=status_code,
        title="Sign in",
        next=safe_return(next_path),
        username=username,
        error=error,
    )


def _same_origin(request: Request) -> None:
    """A sign-in posted by another site's page (login CSRF) is refused."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ActionRefused("Sign in from the dashboard's own page.")
