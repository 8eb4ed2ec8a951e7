"""The JSON of ``/api/queues``, ``/api/failed``, ``/api/jobs`` and ``/api/workers``.

Each model is the pydantic form of a read model the CLI and the dashboard render too:
``QueueSummary`` (``docmill queue monitor --json``), ``Job`` (``docmill queue job ID
--json``) and ``ClusterStatus`` (``docmill queue status --json``). Times are Unix
seconds, as in those. What a job shows passes through ``masking.py`` first.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from docmill.llm.circuit import OpenCircuit
from docmill.queue import Job, JobState
from docmill.queue.summary import QueueSummary
from docmill.supervisor.status import ClusterState, ClusterStatus
from docmill.web.masking import mask_text, mask_value

UNIX_TIME = "Unix time (seconds)."


class QueueSummaryOut(BaseModel):
    """One queue now, and its throughput, runtime and wait over the last hour."""

    queue: str
    pending: int
    delayed: int
    reserved: int
    failed: int
    paused: bool
    size: int = Field(description="Jobs not finished: pending + delayed + reserved.")
    oldest_pending_age_s: float | None = Field(description="Null when nothing is pending.")
    completed_last_hour: int
    failed_last_hour: int
    throughput_last_minute: int = Field(description="Jobs completed in the last 60 s.")
    throughput_per_minute_avg: float
    avg_runtime_s: float | None = Field(description="Null when no job completed in the hour.")
    avg_wait_s: float | None

    @classmethod
    def build(cls, summary: QueueSummary) -> QueueSummaryOut:
        return cls(**summary.to_dict())


class QueueList(BaseModel):
    queues: list[QueueSummaryOut] = Field(description="Every queue ever dispatched to or paused, by name.")


class QueuePaused(BaseModel):
    queue: str
    paused: bool = Field(description="Whether workers now leave the queue's jobs waiting.")


class JobErrorOut(BaseModel):
    """The last failure of a job (exception, timeout, lost lease)."""

    type: str = Field(description="The exception's class name.")
    message: str


class JobErrorDetail(JobErrorOut):
    traceback: str = Field(description="The worker's traceback; empty when none was kept.")


class FailedJobItem(BaseModel):
    """A failed job in a listing (its traceback is on ``GET /api/jobs/{job_id}``)."""

    id: str
    name: str = Field(description="The handler's name.")
    queue: str
    attempts: int
    exceptions: int
    tries: int | None = Field(description="Attempts allowed; null: the worker's default.")
    tags: list[str]
    created_at: float = Field(description=UNIX_TIME)
    failed_at: float | None = Field(description=UNIX_TIME)
    error: JobErrorOut | None

    @classmethod
    def build(cls, job: Job) -> FailedJobItem:
        error = job.error
        return cls(
            id=job.id,
            name=job.name,
            queue=job.queue,
            attempts=job.attempts,
            exceptions=job.exceptions,
            tries=job.tries,
            tags=list(job.tags),
            created_at=job.created_at,
            failed_at=job.finished_at,
            error=None if error is None else JobErrorOut(type=error.type, message=mask_text(error.message)),
        )


class FailedPage(BaseModel):
    """Failed jobs, newest failure first; ask again with ``next_offset`` until it is null."""

    items: list[FailedJobItem]
    total: int = Field(description="Failed jobs matching the filter, on every page.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")


class JobDetail(BaseModel):
    """Everything about one job, in any state: its spec, where it is, its last error."""

    id: str
    name: str
    queue: str
    state: JobState
    args: list[Any] = Field(description="Positional arguments (secrets masked).")
    kwargs: dict[str, Any] = Field(description="Keyword arguments (secrets masked).")
    tries: int | None
    max_exceptions: int | None
    timeout_s: float | None
    backoff_s: int | list[int] | None = Field(description="Seconds before a retry: one, or one per attempt.")
    retry_until: float | None = Field(description=UNIX_TIME)
    unique_key: str | None
    tags: list[str]
    attempts: int
    exceptions: int
    created_at: float = Field(description=UNIX_TIME)
    available_at: float = Field(description=UNIX_TIME)
    reserved_at: float | None = Field(description=UNIX_TIME)
    lease_until: float | None = Field(description=UNIX_TIME)
    finished_at: float | None = Field(description=UNIX_TIME)
    runtime_s: float | None
    error: JobErrorDetail | None

    @classmethod
    def build(cls, job: Job) -> JobDetail:
        data = job.to_dict()
        error = job.error
        data["args"] = mask_value(job.args)
        data["kwargs"] = mask_value(job.kwargs)
        data["error"] = (
            None
            if error is None
            else JobErrorDetail(
                type=error.type, message=mask_text(error.message), traceback=mask_text(error.traceback)
            )
        )
        return cls(**data)


class RetryOut(BaseModel):
    retried: int = Field(description="Failed jobs put back on their queues with fresh attempts.")
    queue: str | None = Field(description="The queue they came from; null: every queue.")


# --------------------------------------------------------------------- the cluster


class RunningJobOut(BaseModel):
    id: str
    name: str


class LastExitOut(BaseModel):
    code: int | None = Field(description="The exit code; null when a signal ended the process.")
    reason: str | None


class PoolOut(BaseModel):
    name: str
    state: str
    queues: list[str]
    target: int = Field(description="Processes the pool wants now.")
    processes: int = Field(description="Processes it holds.")
    fatal_reason: str | None


class MasterOut(BaseModel):
    """One ``docmill supervise`` on one host."""

    host: str
    pid: int
    state: str
    uptime_s: float | None
    pools: list[PoolOut]


class WorkerOut(BaseModel):
    """One worker process: its supervised slot joined with its own heartbeat."""

    host: str
    pool: str | None = Field(description="Null: no master holds it (docmill queue work).")
    process: str | None = Field(description="The slot's name, pool.N.")
    state: str = Field(description="The slot's state, or unsupervised.")
    activity: str | None = Field(description="idle, busy or stopping; null before its first heartbeat.")
    pid: int | None
    uptime_s: float | None
    restarts: int | None
    jobs_done: int | None
    memory_mb: float | None
    current_jobs: list[RunningJobOut]
    queues: list[str] | None
    last_exit: LastExitOut | None
    fatal_reason: str | None


class WorkersStoppedOut(BaseModel):
    """``docmill queue stop`` is in force."""

    at: float = Field(description=UNIX_TIME)
    by: str = Field(description="host:pid of who asked.")


class LLMStoppedOut(BaseModel):
    """Calls to the LLM API stopped on every worker by a spend-limit, billing or key error."""

    kind: str
    reason: str
    since: float = Field(description=UNIX_TIME)
    since_text: str
    resume: str = Field(description="The command that lets the workers call the API again.")
    summary: str

    @classmethod
    def build(cls, circuit: OpenCircuit) -> LLMStoppedOut:
        return cls(**circuit.to_flag(), since_text=circuit.since_text, summary=circuit.summary())


class ClusterOut(BaseModel):
    """Every master and worker on every host, and the queues: ``docmill queue status --json``."""

    state: ClusterState = Field(description="running, paused, stopped or inactive (no master).")
    workers_stopped: WorkersStoppedOut | None
    masters: list[MasterOut]
    workers: list[WorkerOut]
    queues: list[QueueSummaryOut]
    llm_calls_stopped: LLMStoppedOut | None = Field(description="Present while LLM calls are stopped.")

    @classmethod
    def build(cls, status: ClusterStatus, circuit: OpenCircuit | None) -> ClusterOut:
        stopped = None if circuit is None else LLMStoppedOut.build(circuit)
        return cls(**status.to_dict(), llm_calls_stopped=stopped)
