"""How failures become HTTP answers: ``{"error": {"type": ..., "message": ...}}`` with a code.

==========================================  ====  ===================
raised                                      code  ``type``
==========================================  ====  ===================
DocumentNotFound, unknown route             404   not_found
InvalidTransition                           409   invalid_transition
ResultNotReady                              409   result_not_ready
UploadTooLarge                              413   upload_too_large
InvalidOptions, EmptyUpload, BadUpload,     422   invalid_options, empty_upload,
InvalidRequest, request validation                bad_upload, validation_error
not multipart/form-data                     415   unsupported_media_type
Unauthorized                                401   unauthorized
QueueUnavailable, queue BackendError        503   queue_unavailable
database connection errors                  503   database_unavailable
anything else                               500   internal_error
==========================================  ====  ===================

The messages of the documents domain are already one sentence for the user; they are
passed on as they are. Unexpected errors are logged with their traceback and answered
with a message that reveals nothing of the server.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from docmill.documents.errors import (
    DocumentError,
    DocumentNotFound,
    EmptyUpload,
    InvalidOptions,
    InvalidTransition,
    QueueUnavailable,
    ResultNotReady,
    UploadTooLarge,
)
from docmill.queue import BackendError

log = logging.getLogger("docmill.web")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ApiError(Exception):
    """A failure the web layer itself detects; carries its HTTP status and error type."""

    status_code = 400
    type = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class Unauthorized(ApiError):
    """The request carries no valid bearer token (and is not exempt)."""

    status_code = 401
    type = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class InvalidRequest(ApiError):
    """A parameter the web layer reads itself (a header, a form flag) holds a bad value."""

    status_code = 422
    type = "validation_error"


class BadUpload(ApiError):
    """The upload request is not a usable multipart form (no file, two files, a huge field...)."""

    status_code = 422
    type = "bad_upload"


_DOMAIN: list[tuple[type[DocumentError], int, str]] = [
    (DocumentNotFound, 404, "not_found"),
    (InvalidTransition, 409, "invalid_transition"),
    (ResultNotReady, 409, "result_not_ready"),
    (UploadTooLarge, 413, "upload_too_large"),
    (EmptyUpload, 422, "empty_upload"),
    (InvalidOptions, 422, "invalid_options"),
    (QueueUnavailable, 503, "queue_unavailable"),
]


def error_response(
    status_code: int,
    type_: str,
    message: str,
    *,
    document_id: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"type": type_, "message": message}
    if document_id is not None:
        detail["document_id"] = document_id
    return JSONResponse({"error": detail}, status_code=status_code, headers=headers)


async def _document_error(request: Request, exc: Exception) -> JSONResponse:
    document_id = getattr(exc, "document_id", None)
    for kind, status_code, type_ in _DOMAIN:
        if isinstance(exc, kind):
            return error_response(status_code, type_, str(exc), document_id=document_id)
    return error_response(400, "document_error", str(exc), document_id=document_id)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.type, exc.message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    message = "The request is invalid (" + "; ".join(problems) + "); fix it and send it again."
    return error_response(422, "validation_error", message)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"There is no {request.url.path}; see /docs for the API."
        return error_response(404, "not_found", message)
    if exc.status_code == 413:
        return error_response(413, "upload_too_large", "The request body is larger than the server allows.")
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        message = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}."
        return error_response(405, "method_not_allowed", message, headers={"Allow": ", ".join(allowed)})
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, "http_error", str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path.

    Starlette's own ``Allow`` names only the first route whose path matches, so a path
    served by two routes (``GET`` and ``DELETE /api/documents/{id}``) would advertise one.
    Each method is tried against the routes (included routers answer ``matches`` as a
    whole, without listing their methods).
    """
    routes = request.app.router.routes
    # Inside a mount, the scope's root_path is the mount's; match from the app's root.
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", "")}
    static = (r for r in routes if isinstance(r, Mount) and isinstance(r.app, StaticFiles))
    if any(mount.matches(scope)[0] != Match.NONE for mount in static):
        return ["GET", "HEAD"]  # what static files answer to
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def _queue_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api.queue_unavailable path=%s error=%s", request.url.path, type(exc).__name__)
    return error_response(
        503, "queue_unavailable", "The job queue cannot be reached; try again shortly or check the queue."
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        log.warning("api.database_unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        return error_response(
            503,
            "database_unavailable",
            "The documents database cannot be reached; try again shortly or check DATABASE_URL.",
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("api.internal_error path=%s", request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "The server failed on this request; see its log.")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure in the API's error shape (see the module docstring)."""
    app.add_exception_handler(DocumentError, _document_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BackendError, _queue_down)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
