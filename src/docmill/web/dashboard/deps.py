"""What the dashboard's routes read from ``app.state``: the queue backend, the service and the
settings (the API's own dependencies), and the live fingerprint."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.queue import Backend
from docmill.web.dashboard.access import DashboardState
from docmill.web.deps import get_backend, get_service, get_settings


async def page_digest(request: Request) -> str:
    """The live fingerprint, read before the page's data (dependencies run first)."""
    state: DashboardState = request.app.state.dashboard
    return await state.live.get(get_backend(request), get_service(request))


BackendDep = Annotated[Backend, Depends(get_backend)]
DigestDep = Annotated[str, Depends(page_digest)]
ServiceDep = Annotated[DocumentService, Depends(get_service)]
SettingsDep = Annotated[DocumentSettings, Depends(get_settings)]
