"""Heartbeats are typed on both ends: written with ``to_dict``, read back with ``from_dict``."""

from __future__ import annotations

import json

from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.heartbeat import RunningJob, WorkerHeartbeat, read_worker_heartbeats
from docmill.supervisor.heartbeat import (
    LastExit,
    MasterHeartbeat,
    PoolHeartbeat,
    ProcessHeartbeat,
    read_master_heartbeats,
)

WORKER = WorkerHeartbeat(
    worker_id="web-1:101:ab12",
    host="web-1",
    pid=101,
    queues=("documents", "default"),
    state="busy",
    jobs=(RunningJob("0193a1b2c3d4e5f6a7b8c9", "reports.render"),),
    reserved_ahead=2,
    jobs_done=17,
    memory_mb=61.4,
    started_at=1_800_000_000.0,
    concurrency=4,
)
MASTER = MasterHeartbeat(
    member="web-1:100",
    host="web-1",
    pid=100,
    state="running",
    started=1_800_000_000.0,
    at=1_800_000_060.0,
    connection="redis://:***@cache:6379/0",
    pools=(
        PoolHeartbeat(
            name="default",
            state="running",
            queues=("default",),
            balance="off",
            target=2,
            processes=(
                ProcessHeartbeat("default.1", "running", pid=101, started=1_800_000_001.0, uptime_s=59.0),
                ProcessHeartbeat("default.2", "backoff", restarts=3, last_exit=LastExit(14, "backend_lost")),
            ),
        ),
    ),
)


def test_a_worker_heartbeat_survives_the_trip_through_json() -> None:
    assert WorkerHeartbeat.from_dict(json.loads(json.dumps(WORKER.to_dict()))) == WORKER


def test_a_master_heartbeat_survives_the_trip_through_json() -> None:
    assert MasterHeartbeat.from_dict(json.loads(json.dumps(MASTER.to_dict()))) == MASTER


def test_a_heartbeat_from_an_older_host_with_missing_keys_is_still_read() -> None:
    worker = WorkerHeartbeat.from_dict({"host": "old", "pid": 7})
    master = MasterHeartbeat.from_dict({"host": "old", "pid": 6, "pools": [{"name": "p", "processes": [{}]}]})

    assert (worker.host, worker.pid, worker.state, worker.jobs, worker.memory_mb) == (
        "old",
        7,
        "idle",
        (),
        None,
    )
    assert master.pools[0].processes[0].pid is None


def test_keys_a_newer_host_adds_are_kept_when_written_again() -> None:
    data = {**WORKER.to_dict(), "gpu_mb": 512}

    assert WorkerHeartbeat.from_dict(data).to_dict() == data


async def test_heartbeats_written_to_a_backend_are_read_back_typed() -> None:
    backend = MemoryBackend()
    await backend.put_heartbeat("worker", WORKER.worker_id, WORKER.to_dict(), ttl_s=15)
    await backend.put_heartbeat("master", MASTER.member, MASTER.to_dict(), ttl_s=15)

    assert await read_worker_heartbeats(backend) == [WORKER]
    assert await read_master_heartbeats(backend) == [MASTER]
