"""``/api/workers``: every master, pool and worker on every host, as ``docmill queue status --json``.

The answer is ``ClusterStatus`` (``docmill.supervisor.status``) read from the heartbeats,
with the queues' summaries and, while a spend-limit, billing or key error holds them,
the stopped LLM calls of the configured Claude key.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from docmill.llm.circuit import circuit_of_key
from docmill.supervisor.status import read_cluster_status
from docmill.web.deps import BackendDep, SettingsDep, authorize
from docmill.web.queue_schemas import ClusterOut
from docmill.web.schemas import ErrorBody

router = APIRouter(
    prefix="/api/workers",
    tags=["workers"],
    dependencies=[Depends(authorize)],
    responses={
        401: {"model": ErrorBody, "description": "No valid bearer token."},
        503: {"model": ErrorBody, "description": "The job queue cannot be reached."},
    },
)


@router.get("", response_model=ClusterOut, summary="Show the masters and workers")
async def cluster(backend: BackendDep, settings: SettingsDep) -> ClusterOut:
    """The overall state (running, paused, stopped, inactive), every master with its pools,
    every worker (state, pid, uptime, jobs done, memory, current jobs), the queues, and
    whether LLM calls are stopped."""
    status = await read_cluster_status(backend)
    api_key = settings.llm.anthropic_api_key if settings.llm is not None else None
    return ClusterOut.build(status, await circuit_of_key(backend, api_key))
