"""What ``docmill queue status`` reports, built from the heartbeats every host writes.

Masters (kind ``master``) list their pools and processes; workers (kind
``worker``) add what only they know: jobs done, memory, the jobs running now.
The two are joined on host and pid. Workers that no master holds (a plain
``docmill queue work``) are listed too.

The overall state, and the exit code of ``status``:

    running   0   at least one master runs workers
    paused    1   every master is paused (SIGUSR2) or shutting down
    stopped   1   ``docmill queue stop`` holds every master at zero workers
    inactive  2   no master has written a heartbeat lately
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXIT_CODES = {"running": 0, "paused": 1, "stopped": 1, "inactive": 2}


def cluster_status(
    masters: Sequence[dict[str, Any]],
    workers: Sequence[dict[str, Any]],
    stopped_flag: dict[str, Any] | None,
    now: float,
) -> dict[str, Any]:
    by_pid = {(w.get("host"), w.get("pid")): w for w in workers}
    claimed: set[tuple[Any, Any]] = set()
    rows: list[dict[str, Any]] = []
    for master in sorted(masters, key=lambda m: (str(m.get("host")), int(m.get("pid") or 0))):
        for pool in master.get("pools", []):
            for process in pool.get("processes", []):
                key = (master.get("host"), process.get("pid"))
                seen = by_pid.get(key) if process.get("pid") else None
                if seen is not None:
                    claimed.add(key)
                rows.append(_row(master.get("host"), pool.get("name"), process, seen, now))
    for key, worker in by_pid.items():
        if key not in claimed:
            rows.append(_row(worker.get("host"), None, None, worker, now))
    states = [m.get("state") for m in masters]
    if not masters:
        overall = "inactive"
    elif "running" in states:
        overall = "running"
    elif stopped_flag is not None or "stopped" in states:
        overall = "stopped"
    else:
        overall = "paused"
    return {
        "state": overall,
        "workers_stopped": stopped_flag,
        "masters": [_master(m, now) for m in masters],
        "workers": rows,
    }


def _master(master: dict[str, Any], now: float) -> dict[str, Any]:
    started = master.get("started")
    return {
        "host": master.get("host"),
        "pid": master.get("pid"),
        "state": master.get("state"),
        "uptime_s": round(now - started, 1) if isinstance(started, int | float) else None,
        "pools": [
            {
                "name": p.get("name"),
                "state": p.get("state"),
                "queues": p.get("queues"),
                "target": p.get("target"),
                "processes": len(p.get("processes", [])),
                "fatal_reason": p.get("fatal_reason"),
            }
            for p in master.get("pools", [])
        ],
    }


def _row(
    host: Any, pool: Any, process: dict[str, Any] | None, worker: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    started = (process or {}).get("started") or (worker or {}).get("started_at")
    return {
        "host": host,
        "pool": pool,
        "process": (process or {}).get("name"),
        "state": (process or {}).get("state", "unsupervised"),
        "activity": (worker or {}).get("state"),
        "pid": (process or {}).get("pid") or (worker or {}).get("pid"),
        "uptime_s": round(now - started, 1) if isinstance(started, int | float) else None,
        "restarts": (process or {}).get("restarts"),
        "jobs_done": (worker or {}).get("jobs_done"),
        "memory_mb": (worker or {}).get("memory_mb"),
        "current_jobs": (worker or {}).get("jobs", []),
        "queues": (worker or {}).get("queues"),
        "last_exit": (process or {}).get("last_exit"),
        "fatal_reason": (process or {}).get("fatal_reason"),
    }
