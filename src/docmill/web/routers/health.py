"""``/api/health``, ``/healthz`` and ``/readyz``: whether the process, the database and the
job queue answer. No token needed.

``/healthz`` is liveness (the process serves requests; it reads nothing), ``/readyz``
readiness (the database and the queue answer, else 503 naming which does not), for
orchestrators' probes; ``/api/health`` says the same as ``/readyz`` with more detail.

Load balancers and container runtimes call it without credentials, so it tells only
``ok`` or the kind of failure, never a URL, a host or a message from the server. While a
spend-limit, billing or key error has stopped the LLM calls (``docmill.llm.circuit``), the
answer (still 200) carries ``llm_calls_stopped``: the kind, since when, and how to resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from docmill.documents.context import DocumentContext
from docmill.llm.circuit import circuit_of_key
from docmill.web.deps import ContextDep
from docmill.web.schemas import ComponentHealth, HealthOut, LiveOut, LLMCallsStopped, ReadyOut

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
    stopped = await _llm_calls_stopped(context) if queue.ok else None
    body = HealthOut(
        status="ok" if healthy else "unavailable", database=database, queue=queue, llm_calls_stopped=stopped
    )
    data = body.model_dump()
    if stopped is None:
        del data["llm_calls_stopped"]
    return JSONResponse(data, status_code=200 if healthy else 503)


@router.get("/healthz", response_model=LiveOut, summary="Liveness: the process answers")
async def healthz() -> LiveOut:
    """Always 200 while the process serves requests; it reads nothing, so a slow database
    never makes an orchestrator restart a healthy process."""
    return LiveOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness: the database and the job queue answer",
    responses={503: {"model": ReadyOut, "description": "The database or the queue does not answer."}},
)
async def readyz(context: ContextDep) -> JSONResponse:
    """200 when the documents database and the queue backend both answer; else 503 naming
    which one does not (``failed``), and nothing more about it."""
    database, queue = await asyncio.gather(
        _probe("database", context.db.run(_ping)), _probe("queue", context.backend.paused_queues())
    )
    failed: list[Literal["database", "queue"]] = []
    if not database.ok:
        failed.append("database")
    if not queue.ok:
        failed.append("queue")
    body = ReadyOut(status="unavailable" if failed else "ok", failed=failed)
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


def _ping(session: Session) -> None:
    session.execute(text("SELECT 1"))


async def _llm_calls_stopped(context: DocumentContext) -> LLMCallsStopped | None:
    """The circuit of the configured Claude key, if open; a failed read is logged, not shown."""
    llm = context.settings.llm
    try:
        circuit = await asyncio.wait_for(
            circuit_of_key(context.backend, llm.anthropic_api_key if llm else None), PROBE_TIMEOUT_S
        )
    except Exception as exc:
        log.warning("api.health_failed component=llm_circuit error=%s", type(exc).__name__)
        return None
    if circuit is None:
        return None
    return LLMCallsStopped(
        kind="credentials" if circuit.kind == "credentials" else "spend_limit",
        since=circuit.since_text,
        resume=circuit.resume,
    )


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
