"""The job record every backend stores, and the signals a handler can give.

A job is an immutable *spec* (what to run, with which options) plus mutable
*state* (where it is, how many attempts it spent, what went wrong). Backends
store the spec as one JSON document (``Job.spec_json``) and the state in
their own fields; ``Job`` is what they hand back.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from docmill.queue.errors import SerializationError
from docmill.queue.names import check_queue_name
from docmill.queue.options import Backoff, JobOptions, normalize_backoff

# One encoder for every spec: ``json.dumps`` with these options builds a new one per call.
_encode_spec = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class JobState(StrEnum):
    """Where a job is. A job leaves the backend only from a TERMINAL state."""

    PENDING = "pending"  # ready to be reserved ("ready" in counts)
    DELAYED = "delayed"  # waits for its available_at (delay, backoff or release)
    RESERVED = "reserved"  # held by a worker under a lease
    COMPLETED = "completed"  # done; kept for the retention window only
    FAILED = "failed"  # in the failed store until retried, forgotten or flushed

    @classmethod
    def terminal(cls) -> frozenset[JobState]:
        return TERMINAL


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED})
WAITING = frozenset({JobState.PENDING, JobState.DELAYED})


class Fail(Exception):
    """Raised by a handler (or subclassed by its errors) to fail its job for good now.

    For errors no retry can fix (Laravel's ``$this->fail()``): the job goes to the
    failed store at once, whatever ``tries`` it has left, with this exception as its
    error. Any other exception spends an attempt and is retried per the job's options.
    """


class Release(BaseException):
    """Raised by a handler to put its job back for ``delay_s`` seconds.

    This is control flow, not failure: no attempt is spent and no exception
    is counted (this is how API rate limits are honoured: "come back in 12 s").
    It derives from ``BaseException`` so a handler's ``except Exception``
    cannot swallow it by accident.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.delay_s = max(0.0, float(delay_s))


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong in one attempt, as stored with the job."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, traceback_text: str = "") -> ErrorInfo:
        return cls(type=type(exc).__name__, message=str(exc), traceback=traceback_text)

    def summary(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return cls(str(data.get("type", "")), str(data.get("message", "")), str(data.get("traceback", "")))


def new_job_id() -> str:
    """A sortable, unique id: 12 hex digits of milliseconds, then 10 random hex digits."""
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


@dataclass(slots=True)
class Job:
    """One job: its spec (fixed at dispatch) and its state (changed by the backend)."""

    # --- spec
    id: str
    name: str
    queue: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    tries: int | None = None
    max_exceptions: int | None = None
    timeout_s: float | None = None
    backoff_s: Backoff | None = None
    retry_until: float | None = None
    unique_key: str | None = None
    tags: tuple[str, ...] = ()
    created_at: float = 0.0
    # --- state
    state: JobState = JobState.PENDING
    attempts: int = 0  # reservations so far, including ones lost to a dead worker
    exceptions: int = 0  # attempts that ended in an exception (for max_exceptions)
    available_at: float = 0.0
    reserved_at: float | None = None
    reservation: str | None = None  # token of the current lease; guards late acks
    lease_until: float | None = None
    finished_at: float | None = None
    runtime_s: float | None = None
    error: ErrorInfo | None = None  # the last failure (exception, timeout, lost lease)
    # The spec's JSON, encoded once (dispatch validates it, the backend stores it). Not an
    # init field, so ``copy``/``replace`` never carry it over to a job whose spec changed.
    _spec_json: str | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        name: str,
        args: list[Any] | tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        options: JobOptions | None = None,
        *,
        default_queue: str = "default",
        now: float | None = None,
    ) -> Job:
        opts = options or JobOptions()
        created = time.time() if now is None else now
        job = cls(
            id=new_job_id(),
            name=name,
            queue=opts.queue or check_queue_name(default_queue, where="the default queue"),
            args=list(args),
            kwargs=dict(kwargs or {}),
            tries=opts.tries,
            max_exceptions=opts.max_exceptions,
            timeout_s=opts.timeout_s,
            backoff_s=normalize_backoff(opts.backoff_s),
            retry_until=opts.retry_until,
            unique_key=opts.unique_key,
            tags=tuple(opts.tags),
            created_at=created,
            available_at=created + opts.delay_s,
            state=JobState.DELAYED if opts.delay_s > 0 else JobState.PENDING,
        )
        job.spec_json()  # fail at dispatch, not in the worker, if args are not JSON
        return job

    # ------------------------------------------------------------------ spec I/O
    def spec(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "queue": self.queue,
            "args": self.args,
            "kwargs": self.kwargs,
            "tries": self.tries,
            "max_exceptions": self.max_exceptions,
            "timeout_s": self.timeout_s,
            "backoff_s": list(self.backoff_s) if isinstance(self.backoff_s, tuple) else self.backoff_s,
            "retry_until": self.retry_until,
            "unique_key": self.unique_key,
            "tags": list(self.tags),
            "created_at": self.created_at,
        }

    def spec_json(self) -> str:
        if self._spec_json is not None:
            return self._spec_json
        try:
            self._spec_json = _encode_spec(self.spec())
            return self._spec_json
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"arguments of job {self.name!r} cannot be stored as JSON: {exc}"
            ) from exc

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | str) -> Job:
        data: dict[str, Any] = json.loads(spec) if isinstance(spec, str) else spec
        backoff = data.get("backoff_s")
        return cls(
            id=data["id"],
            name=data["name"],
            queue=data["queue"],
            args=list(data.get("args") or []),
            kwargs=dict(data.get("kwargs") or {}),
            tries=data.get("tries"),
            max_exceptions=data.get("max_exceptions"),
            timeout_s=data.get("timeout_s"),
            backoff_s=tuple(backoff) if isinstance(backoff, list) else backoff,
            retry_until=data.get("retry_until"),
            unique_key=data.get("unique_key"),
            tags=tuple(data.get("tags") or ()),
            created_at=float(data.get("created_at") or 0.0),
            available_at=float(data.get("created_at") or 0.0),
        )

    def copy(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Everything about the job, JSON-ready, for the CLI, the API and the dashboard."""
        data = self.spec()
        data.update(
            state=str(self.state),
            attempts=self.attempts,
            exceptions=self.exceptions,
            available_at=self.available_at,
            reserved_at=self.reserved_at,
            lease_until=self.lease_until,
            finished_at=self.finished_at,
            runtime_s=self.runtime_s,
            error=self.error.to_dict() if self.error else None,
        )
        return data
