"""``/api/failed`` and ``/api/jobs``: the failed store, paged; retry or forget; any job by id.

The routes call the backend's failed store as ``docmill queue failed|retry|forget|job``
do; retrying all goes through ``Client.retry_all_failed``, which walks the store in
batches and retries only what had failed when it started. Payloads and errors are shown
with their secrets masked (``masking.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from docmill.queue import Client, JobState
from docmill.web.deps import BackendDep, authorize
from docmill.web.errors import ApiError
from docmill.web.params import MAX_OFFSET
from docmill.web.queue_params import MAX_FAILED_PAGE, JobId, QueueFilter
from docmill.web.queue_schemas import FailedJobItem, FailedPage, JobDetail, RetryOut
from docmill.web.schemas import ErrorBody

router = APIRouter(
    tags=["jobs"],
    dependencies=[Depends(authorize)],
    responses={
        401: {"model": ErrorBody, "description": "No valid bearer token."},
        503: {"model": ErrorBody, "description": "The job queue cannot be reached."},
    },
)
_NO_FAILED: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such failed job."}
}


class JobNotFound(ApiError):
    status_code = 404
    type = "not_found"


@router.get("/api/failed", response_model=FailedPage, summary="List failed jobs")
async def list_failed(
    backend: BackendDep,
    queue: QueueFilter = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FAILED_PAGE)] = 50,
) -> FailedPage:
    """Failed jobs newest failure first, a page at a time, with their error's type and message."""
    total = await backend.failed_count(queue)
    jobs = await backend.failed_page(queue, offset=offset, limit=limit) if offset < total else []
    end = offset + len(jobs)
    return FailedPage(
        items=[FailedJobItem.build(job) for job in jobs],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=end if jobs and end < total else None,
    )


@router.post("/api/failed/retry", response_model=RetryOut, summary="Retry every failed job")
async def retry_all_failed(backend: BackendDep, queue: QueueFilter = None) -> RetryOut:
    """Put back every job that had failed when the call started (of ``queue``, or of every
    queue), oldest first; a job that fails again meanwhile is not retried twice."""
    return RetryOut(retried=await Client(backend).retry_all_failed(queue), queue=queue)


@router.post(
    "/api/failed/{job_id}/retry", response_model=RetryOut, responses=_NO_FAILED, summary="Retry a failed job"
)
async def retry_failed(job_id: JobId, backend: BackendDep) -> RetryOut:
    """Put the job back on its queue with fresh attempts."""
    job = await backend.get(job_id)
    if job is not None and job.state == JobState.FAILED and await backend.retry_failed([job_id]):
        return RetryOut(retried=1, queue=job.queue)
    # Read again: another request may have retried or forgotten it since the first read.
    now = await backend.get(job_id)
    raise _no_failed_job(job_id, None if now is None else now.state)


@router.delete(
    "/api/failed/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_NO_FAILED,
    summary="Forget a failed job",
)
async def forget_failed(job_id: JobId, backend: BackendDep) -> Response:
    """Delete the failed job for good."""
    if not await backend.forget_failed(job_id):
        job = await backend.get(job_id)
        raise _no_failed_job(job_id, None if job is None else job.state)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/jobs/{job_id}",
    response_model=JobDetail,
    responses={404: {"model": ErrorBody, "description": "No such job."}},
    summary="Show a job",
)
async def get_job(job_id: JobId, backend: BackendDep) -> JobDetail:
    """Any job the backend still holds (pending, delayed, reserved, failed, recently
    completed): its payload, options, attempts, timings and last error with its traceback."""
    job = await backend.get(job_id)
    if job is None:
        raise JobNotFound(
            f"There is no job {job_id}; completed jobs are kept only for a while. "
            "List the failed ones with GET /api/failed."
        )
    return JobDetail.build(job)


def _no_failed_job(job_id: str, state: JobState | None) -> JobNotFound:
    now = "" if state is None else f" (it is {state})"
    return JobNotFound(f"There is no failed job {job_id}{now}; list them with GET /api/failed.")
