"""A job whose handler this worker does not know: put back for a while, then failed.

In a rolling deploy, jobs for a handler that only the new code defines reach the
workers still running the old code first. Failing them at once would fail every such
job dispatched during the deploy, so a worker that does not know a job's handler puts
it back (no attempt spent) for a worker that does, for up to
``WorkerOptions.unknown_handler_wait_s``; after that the job fails with the reason.

The wait is counted from the first worker that met the job. A release can only change
the job's availability and its last error, so that moment travels in the error
(``UnknownHandler: ... waiting for a worker that has it since 2026-12-07T22:31:05.250Z``),
which is also what an operator reads in ``docmill queue job ID`` meanwhile. A job
retried from the failed store gets a fresh wait: the final error does not carry it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from docmill.queue.job import ErrorInfo, Job

UNKNOWN_HANDLER = "UnknownHandler"
RECHECK_S = 5.0  # how soon a put-back job is offered again; each offer costs one reserve and release
_SINCE = re.compile(r"waiting for a worker that has it since (\S+Z)")


@dataclass(frozen=True, slots=True)
class UnknownHandlerOutcome:
    """What to do with the job: put it back after ``delay_s``, or (``delay_s`` None) fail it."""

    error: ErrorInfo
    delay_s: float | None
    waited_s: float


def unknown_handler_outcome(job: Job, *, now: float, wait_s: float) -> UnknownHandlerOutcome:
    """Put ``job`` back while the wait lasts, else fail it; ``now`` is epoch seconds."""
    since = _waiting_since(job) or now
    waited_s = max(0.0, now - since)
    left_s = wait_s - waited_s
    if left_s > 0:
        message = (
            f"no handler named {job.name!r} is registered in the worker that took this job; "
            f"waiting for a worker that has it since {_iso(since)}"
        )
        return UnknownHandlerOutcome(ErrorInfo(UNKNOWN_HANDLER, message), min(RECHECK_S, left_s), waited_s)
    message = (
        f"no handler named {job.name!r} is registered in any worker that took this job "
        f"from {_iso(since)} to {_iso(now)}; start workers with the --app that defines it, "
        "then retry the job"
    )
    return UnknownHandlerOutcome(ErrorInfo(UNKNOWN_HANDLER, message), None, waited_s)


def _waiting_since(job: Job) -> float | None:
    if job.error is None or job.error.type != UNKNOWN_HANDLER:
        return None
    found = _SINCE.search(job.error.message)
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found.group(1)).timestamp()
    except ValueError:
        return None


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
