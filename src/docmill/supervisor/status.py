"""The cluster's status: what ``docmill queue status`` and the dashboard show, from heartbeats.

Masters (``MasterHeartbeat``) list their pools and processes; workers
(``WorkerHeartbeat``) add what only they know: jobs done, memory, the jobs
running now. The two are joined on host and pid into one ``WorkerStatus`` per
process. Workers that no master holds (a plain ``docmill queue work``) are
listed too, as ``unsupervised``.

The overall state, and the exit code of ``status`` (``ClusterStatus.exit_code``):

    running   0   at least one master runs workers
    paused    1   every master is paused (SIGUSR2) or shutting down
    stopped   1   ``docmill queue stop`` holds every master at zero workers
    inactive  2   no master has written a heartbeat lately

API::

    status = await read_cluster_status(backend)                  # every host; host="a" for one
    status.state, status.exit_code, status.masters, status.workers, status.queues
    status.workers_stopped                                       # WorkersStopped | None
    status.to_dict(), ClusterStatus.from_dict(data)              # the JSON of `queue status --json`
    cluster_status(masters, workers, stopped, now)               # from heartbeats already read
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from docmill.queue import Backend
from docmill.queue.heartbeat import RunningJob, WorkerHeartbeat, read_worker_heartbeats
from docmill.queue.summary import QueueSummary, summarize_queues
from docmill.supervisor.control import BackendControlStore, workers_stopped
from docmill.supervisor.heartbeat import (
    LastExit,
    MasterHeartbeat,
    ProcessHeartbeat,
    read_master_heartbeats,
)


class ClusterState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    INACTIVE = "inactive"


EXIT_CODES = {
    ClusterState.RUNNING: 0,
    ClusterState.PAUSED: 1,
    ClusterState.STOPPED: 1,
    ClusterState.INACTIVE: 2,
}

# A worker no master holds: started by hand with `docmill queue work`.
UNSUPERVISED = "unsupervised"


@dataclass(frozen=True, slots=True)
class WorkersStopped:
    """``docmill queue stop`` is in force: since when, and who (``host:pid``) asked."""

    at: float
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "by": self.by}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkersStopped:
        return cls(at=float(data.get("at") or 0.0), by=str(data.get("by", "")))


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """A pool as its master reports it: ``processes`` of ``target`` slots filled."""

    name: str
    state: str  # a PoolState value
    queues: tuple[str, ...]
    target: int
    processes: int
    fatal_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "queues": list(self.queues),
            "target": self.target,
            "processes": self.processes,
            "fatal_reason": self.fatal_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolStatus:
        return cls(
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            queues=tuple(str(q) for q in data.get("queues") or ()),
            target=int(data.get("target") or 0),
            processes=int(data.get("processes") or 0),
            fatal_reason=_str_or_none(data.get("fatal_reason")),
        )


@dataclass(frozen=True, slots=True)
class MasterStatus:
    """One ``docmill supervise`` on one host."""

    host: str
    pid: int
    state: str  # a MasterState value
    uptime_s: float | None
    pools: tuple[PoolStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
            "uptime_s": self.uptime_s,
            "pools": [p.to_dict() for p in self.pools],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MasterStatus:
        return cls(
            host=str(data.get("host", "")),
            pid=int(data.get("pid") or 0),
            state=str(data.get("state", "")),
            uptime_s=_float_or_none(data.get("uptime_s")),
            pools=tuple(PoolStatus.from_dict(p) for p in data.get("pools") or ()),
        )


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker: its supervised slot (if a master holds it) joined with its own heartbeat."""

    host: str
    pool: str | None  # None: unsupervised
    process: str | None  # the slot's name, ``pool.N``
    state: str  # a ProcessState value, or "unsupervised"
    activity: str | None  # idle, busy or stopping (from the worker's heartbeat), None before its first
    pid: int | None
    uptime_s: float | None
    restarts: int | None
    jobs_done: int | None
    memory_mb: float | None
    current_jobs: tuple[RunningJob, ...] = ()
    queues: tuple[str, ...] | None = None
    last_exit: LastExit | None = None
    fatal_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pool": self.pool,
            "process": self.process,
            "state": self.state,
            "activity": self.activity,
            "pid": self.pid,
            "uptime_s": self.uptime_s,
            "restarts": self.restarts,
            "jobs_done": self.jobs_done,
            "memory_mb": self.memory_mb,
            "current_jobs": [j.to_dict() for j in self.current_jobs],
            "queues": None if self.queues is None else list(self.queues),
            "last_exit": None if self.last_exit is None else self.last_exit.to_dict(),
            "fatal_reason": self.fatal_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerStatus:
        queues = data.get("queues")
        last_exit = data.get("last_exit")
        return cls(
            host=str(data.get("host", "")),
            pool=_str_or_none(data.get("pool")),
            process=_str_or_none(data.get("process")),
            state=str(data.get("state", "")),
            activity=_str_or_none(data.get("activity")),
            pid=_int_or_none(data.get("pid")),
            uptime_s=_float_or_none(data.get("uptime_s")),
            restarts=_int_or_none(data.get("restarts")),
            jobs_done=_int_or_none(data.get("jobs_done")),
            memory_mb=_float_or_none(data.get("memory_mb")),
            current_jobs=tuple(RunningJob.from_dict(j) for j in data.get("current_jobs") or ()),
            queues=None if queues is None else tuple(str(q) for q in queues),
            last_exit=LastExit.from_dict(last_exit) if isinstance(last_exit, Mapping) else None,
            fatal_reason=_str_or_none(data.get("fatal_reason")),
        )


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """Every master and worker on every host, the "workers stopped" flag, and the queues."""

    state: ClusterState
    masters: tuple[MasterStatus, ...] = ()
    workers: tuple[WorkerStatus, ...] = ()
    workers_stopped: WorkersStopped | None = None
    queues: tuple[QueueSummary, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "workers_stopped": None if self.workers_stopped is None else self.workers_stopped.to_dict(),
            "masters": [m.to_dict() for m in self.masters],
            "workers": [w.to_dict() for w in self.workers],
            "queues": [q.to_dict() for q in self.queues],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterStatus:
        flag = data.get("workers_stopped")
        return cls(
            state=ClusterState(data["state"]),
            masters=tuple(MasterStatus.from_dict(m) for m in data.get("masters") or ()),
            workers=tuple(WorkerStatus.from_dict(w) for w in data.get("workers") or ()),
            workers_stopped=WorkersStopped.from_dict(flag) if isinstance(flag, Mapping) else None,
            queues=tuple(QueueSummary.from_dict(q) for q in data.get("queues") or ()),
        )


def cluster_status(
    masters: Sequence[MasterHeartbeat],
    workers: Sequence[WorkerHeartbeat],
    stopped: WorkersStopped | None,
    now: float,
    queues: Sequence[QueueSummary] = (),
) -> ClusterStatus:
    """Join the heartbeats (see the module docstring); masters sorted by host and pid."""
    by_pid = {(w.host, w.pid): w for w in workers}
    claimed: set[tuple[str, int]] = set()
    rows: list[WorkerStatus] = []
    ordered = sorted(masters, key=lambda m: (m.host, m.pid))
    for master in ordered:
        for pool in master.pools:
            for process in pool.processes:
                seen = by_pid.get((master.host, process.pid)) if process.pid else None
                if seen is not None:
                    claimed.add((seen.host, seen.pid))
                rows.append(_supervised(master.host, pool.name, process, seen, now))
    rows.extend(_unsupervised(w, now) for key, w in by_pid.items() if key not in claimed)
    return ClusterStatus(
        state=_overall(masters, stopped),
        masters=tuple(_master(m, now) for m in ordered),
        workers=tuple(rows),
        workers_stopped=stopped,
        queues=tuple(queues),
    )


async def read_cluster_status(
    backend: Backend, *, host: str | None = None, now: float | None = None
) -> ClusterStatus:
    """Read every heartbeat, the "workers stopped" flag and every queue's summary.

    ``host`` keeps only that host's masters and workers (a container's health check).
    """
    masters = await read_master_heartbeats(backend)
    workers = await read_worker_heartbeats(backend)
    if host is not None:
        masters = [m for m in masters if m.host == host]
        workers = [w for w in workers if w.host == host]
    flag = await workers_stopped(BackendControlStore(backend))
    at = time.time() if now is None else now
    queues = await summarize_queues(backend, now=at)
    stopped = WorkersStopped.from_dict(flag) if flag is not None else None
    return cluster_status(masters, workers, stopped, at, queues)


def _overall(masters: Sequence[MasterHeartbeat], stopped: WorkersStopped | None) -> ClusterState:
    states = {m.state for m in masters}
    if not masters:
        return ClusterState.INACTIVE
    if "running" in states:
        return ClusterState.RUNNING
    if stopped is not None or "stopped" in states:
        return ClusterState.STOPPED
    return ClusterState.PAUSED


def _master(master: MasterHeartbeat, now: float) -> MasterStatus:
    return MasterStatus(
        host=master.host,
        pid=master.pid,
        state=master.state,
        uptime_s=None if master.started is None else round(now - master.started, 1),
        pools=tuple(
            PoolStatus(
                name=p.name,
                state=p.state,
                queues=p.queues,
                target=p.target,
                processes=len(p.processes),
                fatal_reason=p.fatal_reason,
            )
            for p in master.pools
        ),
    )


def _supervised(
    host: str, pool: str, process: ProcessHeartbeat, worker: WorkerHeartbeat | None, now: float
) -> WorkerStatus:
    started = process.started or (worker.started_at if worker is not None else None)
    return WorkerStatus(
        host=host,
        pool=pool,
        process=process.name,
        state=process.state,
        activity=None if worker is None else worker.state,
        pid=process.pid,
        uptime_s=None if started is None else round(now - started, 1),
        restarts=process.restarts,
        jobs_done=None if worker is None else worker.jobs_done,
        memory_mb=None if worker is None else worker.memory_mb,
        current_jobs=() if worker is None else worker.jobs,
        queues=None if worker is None else worker.queues,
        last_exit=process.last_exit,
        fatal_reason=process.fatal_reason,
    )


def _unsupervised(worker: WorkerHeartbeat, now: float) -> WorkerStatus:
    return WorkerStatus(
        host=worker.host,
        pool=None,
        process=None,
        state=UNSUPERVISED,
        activity=worker.state,
        pid=worker.pid,
        uptime_s=None if worker.started_at is None else round(now - worker.started_at, 1),
        restarts=None,
        jobs_done=worker.jobs_done,
        memory_mb=worker.memory_mb,
        current_jobs=worker.jobs,
        queues=worker.queues,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
