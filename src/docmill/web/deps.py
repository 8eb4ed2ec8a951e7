"""What the routes depend on, as ``Annotated`` dependencies read from ``app.state``.

``ServiceDep`` is the documents service of the app's lifetime, ``SettingsDep`` its
settings, ``BackendDep`` its queue backend, and ``authorize`` guards a router (see ``auth.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from docmill.documents.context import DocumentContext
from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.queue import Backend
from docmill.web.auth import AuthPolicy


def get_context(request: Request) -> DocumentContext:
    context: DocumentContext = request.app.state.context
    return context


def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.context.backend
    return backend


def get_service(request: Request) -> DocumentService:
    service: DocumentService = request.app.state.service
    return service


def get_settings(request: Request) -> DocumentSettings:
    settings: DocumentSettings = request.app.state.settings
    return settings


# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs);
# the check itself is the policy's, so its errors keep the API's error shape.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from DOCMILL_API_TOKENS.")


def authorize(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Let the request through or raise ``Unauthorized`` (401)."""
    policy: AuthPolicy = request.app.state.auth
    policy.check(
        authorization=request.headers.get("authorization"),
        client_host=request.client.host if request.client else None,
        host_header=request.headers.get("host"),
        origin=request.headers.get("origin"),
    )


ContextDep = Annotated[DocumentContext, Depends(get_context)]
BackendDep = Annotated[Backend, Depends(get_backend)]
ServiceDep = Annotated[DocumentService, Depends(get_service)]
SettingsDep = Annotated[DocumentSettings, Depends(get_settings)]
