"""A master's heartbeat: one ``docmill supervise`` with its pools and every process they hold.

The master writes ``MasterHeartbeat.to_dict()`` every ``heartbeat_s`` (kind
``master``, a TTL of three beats); ``docmill queue status`` and the dashboard
read them back with ``read_master_heartbeats``. ``from_dict`` tolerates missing
keys, so a host running an older docmill still shows up. States are the
``.value`` of ``MasterState``, ``PoolState`` and ``ProcessState``, kept as
strings so that a state a newer host writes is shown rather than rejected.

API::

    beats = await read_master_heartbeats(backend)       # list[MasterHeartbeat]
    beat.host, beat.pid, beat.state, beat.pools[0].processes[0].pid
    beat.to_dict(), MasterHeartbeat.from_dict(data)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docmill.queue import Backend

MASTER_KIND = "master"


@dataclass(frozen=True, slots=True)
class LastExit:
    """How a process last ended: its exit code and the stop reason that code names."""

    code: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LastExit:
        code = data.get("code")
        reason = data.get("reason")
        return cls(code=None if code is None else int(code), reason=None if reason is None else str(reason))


@dataclass(frozen=True, slots=True)
class ProcessHeartbeat:
    """One supervised worker slot (``pool.N``) and the process in it, if any."""

    name: str
    state: str  # a ProcessState value
    pid: int | None = None  # None while no process runs in the slot
    started: float | None = None  # epoch seconds of the running process's start
    uptime_s: float | None = None
    restarts: int = 0
    generation: int = 0
    last_exit: LastExit | None = None
    fatal_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "started": self.started,
            "uptime_s": self.uptime_s,
            "restarts": self.restarts,
            "generation": self.generation,
            "last_exit": None if self.last_exit is None else self.last_exit.to_dict(),
            "fatal_reason": self.fatal_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessHeartbeat:
        last_exit = data.get("last_exit")
        return cls(
            name=str(data.get("name", "")),
            state=str(data.get("state", "exited")),
            pid=_int_or_none(data.get("pid")),
            started=_float_or_none(data.get("started")),
            uptime_s=_float_or_none(data.get("uptime_s")),
            restarts=int(data.get("restarts") or 0),
            generation=int(data.get("generation") or 0),
            last_exit=LastExit.from_dict(last_exit) if isinstance(last_exit, Mapping) else None,
            fatal_reason=_str_or_none(data.get("fatal_reason")),
        )


@dataclass(frozen=True, slots=True)
class PoolHeartbeat:
    """A pool: identical workers on the same queues, held at ``target`` processes."""

    name: str
    state: str  # a PoolState value
    queues: tuple[str, ...] = ()
    balance: str | None = None
    target: int = 0
    fatal_reason: str | None = None
    processes: tuple[ProcessHeartbeat, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "queues": list(self.queues),
            "balance": self.balance,
            "target": self.target,
            "fatal_reason": self.fatal_reason,
            "processes": [p.to_dict() for p in self.processes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolHeartbeat:
        return cls(
            name=str(data.get("name", "")),
            state=str(data.get("state", "running")),
            queues=tuple(str(q) for q in data.get("queues") or ()),
            balance=_str_or_none(data.get("balance")),
            target=int(data.get("target") or 0),
            fatal_reason=_str_or_none(data.get("fatal_reason")),
            processes=tuple(
                ProcessHeartbeat.from_dict(p) for p in data.get("processes") or () if isinstance(p, Mapping)
            ),
        )


@dataclass(frozen=True, slots=True)
class MasterHeartbeat:
    """One ``docmill supervise`` as it last reported itself."""

    member: str  # the heartbeat's key: host and pid
    host: str
    pid: int
    state: str  # a MasterState value
    started: float | None = None  # epoch seconds
    at: float | None = None  # when this heartbeat was written
    connection: str | None = None  # the queue URL, password masked
    pools: tuple[PoolHeartbeat, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "at": self.at,
            "state": self.state,
            "connection": self.connection,
            "pools": [p.to_dict() for p in self.pools],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MasterHeartbeat:
        return cls(
            member=str(data.get("member", "")),
            host=str(data.get("host", "")),
            pid=int(data.get("pid") or 0),
            state=str(data.get("state", "running")),
            started=_float_or_none(data.get("started")),
            at=_float_or_none(data.get("at")),
            connection=_str_or_none(data.get("connection")),
            pools=tuple(
                PoolHeartbeat.from_dict(p) for p in data.get("pools") or () if isinstance(p, Mapping)
            ),
        )


async def read_master_heartbeats(backend: Backend) -> list[MasterHeartbeat]:
    """Every live master's heartbeat, on every host."""
    return [MasterHeartbeat.from_dict(data) for data in await backend.heartbeats(MASTER_KIND)]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
