"""The queue side's pages: overview, failed jobs, jobs, a job, workers, charts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from docmill.queue import Job, MinuteMetrics
from docmill.queue.summary import summarize_queues
from docmill.web.dashboard.access import Viewer, dashboard_state
from docmill.web.dashboard.charts import line_chart
from docmill.web.dashboard.deps import BackendDep, DigestDep, ServiceDep, SettingsDep
from docmill.web.dashboard.failures import SAMPLE_SIZE, group_failures, matches
from docmill.web.dashboard.reads import read_cluster, read_overview, read_series
from docmill.web.dashboard.rendering import message_page, render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
MAX_QUERY = 200
CHARTS: tuple[tuple[str, str, Callable[[MinuteMetrics], float | None]], ...] = (
    ("Jobs completed per minute", "jobs", lambda m: m.completed),
    ("Failures per minute", "jobs", lambda m: m.failed),
    ("Average runtime", "s", lambda m: m.avg_runtime_s),
    ("Average wait", "s", lambda m: m.avg_wait_s),
)


@router.get("/")
async def overview(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    data = await read_overview(backend, service, settings.llm, dashboard_state(request).week_failures)
    return render(
        request,
        "overview.html",
        session,
        title="Overview",
        overview=data,
        processes=data.cluster.processes_by_queue(),
        digest=digest,
    )


@router.get("/failed")
async def failed(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    queue: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """One page of the failed store (the backend pages it), and reasons over the newest failures."""
    where = queue or None
    total = await backend.failed_count(where)
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(page, pages)
    sample = await backend.failed_page(where, offset=0, limit=SAMPLE_SIZE) if total else []
    if page * PER_PAGE <= SAMPLE_SIZE:  # the page lies inside the sample: no second read
        jobs = sample[(page - 1) * PER_PAGE : page * PER_PAGE]
    else:
        jobs = await backend.failed_page(where, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    if q:
        jobs = [job for job in jobs if matches(job, text=q)]
        sample = [job for job in sample if matches(job, text=q)]
    query = {k: v for k, v in (("queue", queue), ("q", q)) if v}
    return render(
        request,
        "failed.html",
        session,
        title="Failed jobs",
        queues=await backend.queues(),
        queue=queue,
        text=q,
        total=total,
        jobs=jobs,
        groups=group_failures(sample),
        sample=min(total, SAMPLE_SIZE),
        page=page,
        pages=pages,
        pager_base=f"/failed?{urlencode(query)}&" if query else "/failed?",
        digest=digest,
    )


@router.get("/jobs")
async def jobs(
    request: Request,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    queue: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    query = q.strip()
    found: list[Job] = []
    if query:
        job = await backend.get(query)
        found = [job] if job is not None else await backend.find_by_tag(query, limit=100)
    cluster = await read_cluster(backend)
    running = [(worker, job) for worker in cluster.workers for job in worker.jobs]
    queues = await summarize_queues(backend)
    completed: list[Job] = []
    for summary in queues:
        completed += await backend.recent_completed(summary.queue, limit=20)
    completed.sort(key=lambda job: job.finished_at or 0.0, reverse=True)
    # One queue's waiting jobs, a page at a time: the first queue with any unless one is chosen.
    shown = next((s for s in queues if s.queue == queue), None) or next(
        (s for s in queues if s.pending + s.delayed), None
    )
    waiting_total = shown.pending + shown.delayed if shown is not None else 0
    pages = max(1, math.ceil(waiting_total / PER_PAGE))
    page = min(page, pages)
    waiting: list[Job] = []
    if shown is not None and waiting_total:
        waiting = await backend.pending_page(shown.queue, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    return render(
        request,
        "jobs.html",
        session,
        title="Jobs",
        query=query,
        found=found,
        running=running,
        queues=queues,
        completed=completed[:50],
        waiting_queue=shown.queue if shown is not None else "",
        waiting=waiting,
        waiting_total=waiting_total,
        page=page,
        pages=pages,
        pager_base=f"/jobs?{urlencode({'queue': shown.queue})}&" if shown is not None else "/jobs?",
        digest=digest,
    )


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request,
    job_id: str,
    session: Viewer,
    digest: DigestDep,
    backend: BackendDep,
) -> Response:
    job = await backend.get(job_id[:MAX_QUERY])
    if job is None:
        return message_page(
            request,
            session,
            "No such job",
            "No job has this id; completed jobs are kept for a while only.",
            404,
        )
    options = {
        "tries": job.tries,
        "max_exceptions": job.max_exceptions,
        "timeout_s": job.timeout_s,
        "backoff_s": job.backoff_s,
        "retry_until": job.retry_until,
        "unique_key": job.unique_key,
    }
    return render(
        request,
        "job.html",
        session,
        title=f"Job {job.id}",
        job=job,
        options=json.dumps({k: v for k, v in options.items() if v is not None}, default=str),
        payload=json.dumps({"args": job.args, "kwargs": job.kwargs}, indent=2, default=str),
        digest=digest,
    )


@router.get("/workers")
async def workers(request: Request, session: Viewer, digest: DigestDep, backend: BackendDep) -> Response:
    return render(
        request,
        "workers.html",
        session,
        title="Workers",
        cluster=await read_cluster(backend),
        queues=await summarize_queues(backend),
        digest=digest,
    )


@router.get("/charts")
async def charts(request: Request, session: Viewer, digest: DigestDep, backend: BackendDep) -> Response:
    minutes = 60
    series = await read_series(backend, minutes)
    drawn = []
    if series:
        drawn = [
            line_chart(
                "Jobs completed per minute",
                "jobs",
                {s.queue: [m.completed for m in s.minutes] for s in series},
            ),
            line_chart(
                "Failures per minute", "jobs", {s.queue: [m.failed for m in s.minutes] for s in series}
            ),
            line_chart(
                "Average runtime", "s", {s.queue: [m.avg_runtime_s for m in s.minutes] for s in series}
            ),
            line_chart("Average wait", "s", {s.queue: [m.avg_wait_s for m in s.minutes] for s in series}),
        ]
    return render(
        request,
        "charts.html",
        session,
        title="Charts",
        charts=drawn,
        minutes=minutes,
        digest=digest,
    )
