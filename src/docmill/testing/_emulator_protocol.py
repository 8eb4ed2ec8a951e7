"""Wire-level pieces shared by the emulator's routes: errors, auth, request ids, SSE framing.

Every ``/v1`` response carries a ``request-id`` header and the rate-limit headers of
the model it concerns; errors have the API's body
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docmill.testing._emulator_models import ModelEntry
from docmill.testing._emulator_state import EmulatorState

_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """An id shaped like the API's (``req_011C…``, ``msg_01…``)."""
    return prefix + "011C" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


class ApiError(Exception):
    """An error answer of the emulated API, rendered by ``error_response``."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        model: ModelEntry | None = None,
        headers: dict[str, str] | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status
        self.error_type = error_type
        self.message = message
        self.model = model
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_body(
    error_type: str, message: str, rid: str | None, error_code: str | None = None
) -> dict[str, Any]:
    """The API's error object; ``error_code`` goes to ``error.details.error_code``."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": rid}


def error_response(state: EmulatorState, request: Request, exc: ApiError) -> JSONResponse:
    headers = {**state.rate_limit_headers(exc.model), **exc.headers}
    body = error_body(exc.error_type, exc.message, request_id(request), exc.error_code)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event in the API's framing (``event:`` line, ``data:`` line, blank line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def read_body(state: EmulatorState, request: Request) -> dict[str, Any]:
    """Size check, authentication, version check and JSON parsing, in the API's order."""
    raw = await request.body()
    if len(raw) > state.config.max_request_bytes:
        raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
    authorize(state, request)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise invalid(f"There was an error parsing the body of your request: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Input should be a valid dictionary")
    return body


def authorize(state: EmulatorState, request: Request) -> None:
    """Accept ``x-api-key`` or ``Authorization: Bearer`` and require ``anthropic-version``."""
    config = state.config
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    if config.api_key is not None and key != config.api_key:
        raise ApiError(401, "authentication_error", "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if not version:
        raise invalid("anthropic-version: header is required")
    if version not in config.api_versions:
        raise invalid(f"anthropic-version: {version!r} is not a valid version")


class RequestIdMiddleware:
    """Gives each ``/v1`` request an id, stamps it on the response and counts the call."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        rid = new_id("req_")
        scope.setdefault("state", {})["request_id"] = rid
        self.state.record_start(f"{scope['method']} {_route(scope['path'])}")

        async def stamped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"request-id", rid.encode())]
                self.state.record_status(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, stamped_send)
        finally:
            self.state.record_end()


def _route(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "/v1/models/{model_id}"
    if path.startswith("/v1/messages/batches/"):
        tail = path.removeprefix("/v1/messages/batches/").partition("/")[2]
        return "/v1/messages/batches/{id}" + (f"/{tail}" if tail else "")
    return path
