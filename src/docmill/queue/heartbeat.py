"""A worker's heartbeat: what every running worker tells the backend about itself.

Each worker writes one every few seconds (``Backend.put_heartbeat`` with kind
``worker``, a TTL of three beats), so a worker that dies disappears on its own.
``docmill queue status`` and the dashboard read them back with
``read_worker_heartbeats``. ``to_dict`` is the stored form; ``from_dict`` reads
it back and tolerates missing keys, so a host running an older docmill still
shows up.

API::

    beats = await read_worker_heartbeats(backend)     # list[WorkerHeartbeat]
    beat.worker_id, beat.host, beat.pid, beat.state, beat.jobs, beat.jobs_done, beat.memory_mb
    beat.to_dict(), WorkerHeartbeat.from_dict(data)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.queue.backend import Backend

WORKER_KIND = "worker"

# What a worker is doing: taking no job, running at least one, or finishing before it exits.
WORKER_STATES = ("idle", "busy", "stopping")


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job a worker is running now."""

    id: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunningJob:
        return cls(id=str(data.get("id", "")), name=str(data.get("name", "")))


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat:
    """One worker process as it last reported itself."""

    worker_id: str
    host: str
    pid: int
    queues: tuple[str, ...] = ()
    state: str = "idle"  # one of WORKER_STATES
    jobs: tuple[RunningJob, ...] = ()
    reserved_ahead: int = 0  # jobs prefetched and waiting for a free slot
    jobs_done: int = 0
    memory_mb: float | None = None  # resident set size
    started_at: float | None = None  # epoch seconds
    concurrency: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a newer docmill added

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "worker_id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "state": self.state,
            "jobs": [job.to_dict() for job in self.jobs],
            "reserved_ahead": self.reserved_ahead,
            "jobs_done": self.jobs_done,
            "memory_mb": self.memory_mb,
            "started_at": self.started_at,
            "concurrency": self.concurrency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerHeartbeat:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            worker_id=str(data.get("worker_id", "")),
            host=str(data.get("host", "")),
            pid=int(data.get("pid") or 0),
            queues=tuple(str(q) for q in data.get("queues") or ()),
            state=str(data.get("state", "idle")),
            jobs=tuple(RunningJob.from_dict(j) for j in data.get("jobs") or () if isinstance(j, Mapping)),
            reserved_ahead=int(data.get("reserved_ahead") or 0),
            jobs_done=int(data.get("jobs_done") or 0),
            memory_mb=_float_or_none(data.get("memory_mb")),
            started_at=_float_or_none(data.get("started_at")),
            concurrency=None if data.get("concurrency") is None else int(data["concurrency"]),
            extra={k: v for k, v in data.items() if k not in known},
        )


async def read_worker_heartbeats(backend: Backend) -> list[WorkerHeartbeat]:
    """Every live worker's heartbeat, on every host."""
    return [WorkerHeartbeat.from_dict(data) for data in await backend.heartbeats(WORKER_KIND)]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
