"""``/api/queues``: every queue's counts, rates and timings; pause and continue one.

The answers are ``QueueSummary`` (``docmill.queue.summary``), the model ``docmill queue
monitor`` and the dashboard render.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from docmill.queue.summary import summarize_queues
from docmill.web.deps import BackendDep, authorize
from docmill.web.errors import ApiError
from docmill.web.queue_params import QueueName
from docmill.web.queue_schemas import QueueList, QueuePaused, QueueSummaryOut
from docmill.web.schemas import ErrorBody

router = APIRouter(
    prefix="/api/queues",
    tags=["queues"],
    dependencies=[Depends(authorize)],
    responses={
        401: {"model": ErrorBody, "description": "No valid bearer token."},
        503: {"model": ErrorBody, "description": "The job queue cannot be reached."},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such queue."}}
# A name the path cannot carry (a line break: the name takes the rest of the path, which no
# route then matches) is answered 404 by the router before the name is checked.
_UNROUTABLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No route matches the path (a name holding a line break)."}
}


class QueueNotFound(ApiError):
    status_code = 404
    type = "not_found"


@router.get("", response_model=QueueList, summary="List the queues")
async def list_queues(backend: BackendDep) -> QueueList:
    """Every queue ever dispatched to (or paused), by name, with its summary."""
    return QueueList(queues=[QueueSummaryOut.build(s) for s in await summarize_queues(backend)])


# A name may hold "/" (any punctuation is allowed), so the name takes the rest of the path.
@router.get("/{queue:path}", response_model=QueueSummaryOut, responses=_NOT_FOUND, summary="Show a queue")
async def get_queue(queue: QueueName, backend: BackendDep) -> QueueSummaryOut:
    """Pending, delayed, reserved and failed jobs, whether paused, the oldest wait, and the
    last hour's throughput, runtime and wait."""
    if queue not in await backend.queues():
        raise QueueNotFound(f"There is no queue {queue!r}; list the queues with GET /api/queues.")
    (summary,) = await summarize_queues(backend, [queue])
    return QueueSummaryOut.build(summary)


@router.post(
    "/{queue:path}/pause", response_model=QueuePaused, responses=_UNROUTABLE, summary="Pause a queue"
)
async def pause_queue(queue: QueueName, backend: BackendDep) -> QueuePaused:
    """Workers leave the queue's jobs waiting (running jobs finish) until it continues. A
    queue with no jobs yet can be paused before they arrive."""
    await backend.pause(queue)
    return QueuePaused(queue=queue, paused=True)


@router.post(
    "/{queue:path}/continue", response_model=QueuePaused, responses=_UNROUTABLE, summary="Continue a queue"
)
async def continue_queue(queue: QueueName, backend: BackendDep) -> QueuePaused:
    """Workers take the queue's jobs again."""
    await backend.resume(queue)
    return QueuePaused(queue=queue, paused=False)
