"""Why a worker stopped, and the exit code each reason gives its process.

A supervisor reads the exit code: 0 means "stopped on purpose, start another
if you want one"; ``MEMORY`` and ``JOB_TIMEOUT`` ask for a fresh process, and
so does ``LEASE_LOST`` (a sync handler's thread, whose job the backend may now
give to another worker, cannot be stopped any other way); ``BACKEND_LOST`` asks
for a restart with backoff; ``BOOT_FAILURE`` means the worker can never start
as configured, so restarting it again is pointless.
"""

from __future__ import annotations

from enum import Enum


class WorkerStopReason(Enum):
    """Every way a worker stops (Laravel's ``WorkerStopReason``), with its exit code."""

    INTERRUPTED = "interrupted"  # SIGTERM / SIGINT
    MASTER_GONE = "master_gone"  # SIGHUP: the supervising master died (its parent-death signal)
    MAX_TIME = "max_time"  # ran for --max-time seconds
    MAX_JOBS = "max_jobs"  # processed --max-jobs jobs
    RESTART = "restart"  # `docmill queue restart` was requested after this worker started
    EMPTY = "empty"  # --stop-when-empty and nothing left to do
    MEMORY = "memory"  # resident memory above --memory
    JOB_TIMEOUT = "job_timeout"  # a sync handler overran its timeout; only ending the process stops it
    BACKEND_LOST = "backend_lost"  # the backend stayed unreachable longer than the grace
    LEASE_LOST = "lease_lost"  # a sync handler's lease was lost; only ending the process stops its thread
    BOOT_FAILURE = "boot_failure"  # bad --app, bad options, unknown backend or malformed URL

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    WorkerStopReason.INTERRUPTED: 0,
    WorkerStopReason.MASTER_GONE: 0,
    WorkerStopReason.MAX_TIME: 0,
    WorkerStopReason.MAX_JOBS: 0,
    WorkerStopReason.RESTART: 0,
    WorkerStopReason.EMPTY: 0,
    WorkerStopReason.MEMORY: 12,
    WorkerStopReason.JOB_TIMEOUT: 13,
    WorkerStopReason.BACKEND_LOST: 14,
    WorkerStopReason.LEASE_LOST: 15,
    WorkerStopReason.BOOT_FAILURE: 3,
}
