"""``/live``: server-sent events telling open pages that what they show has changed.

Each event's data is the fingerprint of ``reads.live_digest``; a page compares it with the
one it was rendered with and, when they differ, fetches its fresh ``live`` block. A stream
ends after ``STREAM_S`` (the browser reconnects by itself), so no connection is held forever
and a server told to stop waits at most that long for the open dashboards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from docmill.web.dashboard.access import Viewer, dashboard_state
from docmill.web.dashboard.deps import BackendDep, ServiceDep
from docmill.web.dashboard.rendering import SECURITY_HEADERS

router = APIRouter(include_in_schema=False)
STREAM_S = 25.0
RETRY_MS = 1000


@router.get("/live")
async def live(request: Request, _: Viewer, backend: BackendDep, service: ServiceDep) -> StreamingResponse:
    poll_s: float = getattr(request.app.state, "dashboard_poll_s", 1.0)
    stream_s: float = getattr(request.app.state, "dashboard_stream_s", STREAM_S)

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        last: str | None = None
        ends = time.monotonic() + stream_s
        while time.monotonic() < ends and not await request.is_disconnected():
            try:
                digest: str | None = await dashboard_state(request).live.get(backend, service)
            except Exception:  # the backend is away for a moment: say nothing, try again
                digest = last
            if digest is not None and digest != last:
                last = digest
                yield f"data: {digest}\n\n"
            await asyncio.sleep(poll_s)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
