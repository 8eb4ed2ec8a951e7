"""``/api/health``: whether the database and the job queue answer. No token needed.

Load balancers and container runtimes call it without credentials, so it tells only
``ok`` or the kind of failure, never a URL, a host or a message from the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from docmill.web.deps import ContextDep
from docmill.web.schemas import ComponentHealth, HealthOut

PROBE_TIMEOUT_S = 3.0

router = APIRouter(tags=["health"])
log = logging.getLogger("docmill.web")


@router.get(
    "/api/health",
    response_model=HealthOut,
    summary="Check the database and the job queue",
    responses={503: {"model": HealthOut, "description": "The database or the queue does not answer."}},
)
async def health(context: ContextDep) -> JSONResponse:
    """200 when the documents database and the queue backend both answer, else 503."""

    def ping(session: Session) -> None:
        session.execute(text("SELECT 1"))

    database, queue = await asyncio.gather(
        _probe("database", context.db.run(ping)), _probe("queue", context.backend.paused_queues())
    )
    healthy = database.ok and queue.ok
    body = HealthOut(status="ok" if healthy else "unavailable", database=database, queue=queue)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


async def _probe(name: str, check: Awaitable[Any]) -> ComponentHealth:
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT_S)
    except TimeoutError:
        log.warning("api.health_failed component=%s error=timeout", name)
        return ComponentHealth(ok=False, error="timeout")
    except Exception as exc:
        log.warning("api.health_failed component=%s error=%s", name, type(exc).__name__)
        return ComponentHealth(ok=False, error=type(exc).__name__)
    return ComponentHealth(ok=True)
