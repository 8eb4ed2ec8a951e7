"""`queue status` from heartbeats, and the master's log files."""

from __future__ import annotations

import json
from pathlib import Path

from docmill.queue.heartbeat import RunningJob, WorkerHeartbeat
from docmill.queue.summary import QueueSummary
from docmill.supervisor.heartbeat import LastExit, MasterHeartbeat
from docmill.supervisor.logs import RotatingFile, child_line
from docmill.supervisor.status import (
    EXIT_CODES,
    ClusterState,
    ClusterStatus,
    WorkersStopped,
    cluster_status,
)

NOW = 1_000_000.0


def master(
    pid: int, state: str = "running", processes: list[dict[str, object]] | None = None
) -> MasterHeartbeat:
    return MasterHeartbeat.from_dict(
        {
            "host": "a",
            "pid": pid,
            "state": state,
            "started": NOW - 60,
            "pools": [{"name": "default", "state": "running", "target": 1, "processes": processes or []}],
        }
    )


def test_workers_are_joined_to_their_master_by_host_and_pid() -> None:
    process = {"name": "default.1", "state": "running", "pid": 42, "started": NOW - 30, "restarts": 2}
    worker = WorkerHeartbeat.from_dict(
        {
            "host": "a",
            "pid": 42,
            "state": "busy",
            "jobs_done": 7,
            "memory_mb": 51.2,
            "jobs": [{"id": "j1", "name": "ocr"}],
            "queues": ["default"],
        }
    )
    stray = WorkerHeartbeat.from_dict(
        {"host": "b", "pid": 9, "state": "idle", "jobs_done": 0, "jobs": [], "started_at": NOW - 5}
    )
    report = cluster_status([master(1, processes=[process])], [worker, stray], None, NOW)
    assert report.state == "running"
    first, second = report.workers
    assert (first.pool, first.process, first.pid, first.uptime_s) == ("default", "default.1", 42, 30)
    assert (first.restarts, first.jobs_done, first.memory_mb, first.activity) == (2, 7, 51.2, "busy")
    assert first.current_jobs == (RunningJob("j1", "ocr"),)
    assert (second.state, second.host, second.pool, second.uptime_s) == ("unsupervised", "b", None, 5)
    assert report.masters[0].uptime_s == 60


def test_a_slot_without_a_worker_heartbeat_is_listed_with_what_its_master_knows() -> None:
    process = {
        "name": "default.1",
        "state": "backoff",
        "pid": None,
        "last_exit": {"code": 3, "reason": "boot"},
    }
    report = cluster_status([master(1, processes=[process])], [], None, NOW)
    [row] = report.workers
    assert (row.state, row.pid, row.activity, row.jobs_done) == ("backoff", None, None, None)
    assert row.last_exit == LastExit(3, "boot")


def test_overall_state_and_exit_code() -> None:
    def state(*masters: MasterHeartbeat, flag: WorkersStopped | None = None) -> tuple[str, int]:
        report = cluster_status(list(masters), [], flag, NOW)
        return report.state, report.exit_code

    assert state() == ("inactive", 2)
    assert state(master(1), master(2, "paused")) == ("running", 0)
    assert state(master(1, "paused")) == ("paused", 1)
    assert state(master(1, "stopped"), flag=WorkersStopped(NOW, "a:1")) == ("stopped", 1)
    assert EXIT_CODES[ClusterState.INACTIVE] == 2


def test_the_cluster_status_reads_back_its_own_json() -> None:
    process = {"name": "default.1", "state": "running", "pid": 42, "started": NOW - 30, "restarts": 2}
    worker = WorkerHeartbeat(worker_id="w", host="a", pid=42, jobs=(RunningJob("j1", "ocr"),), jobs_done=3)
    queue = QueueSummary("default", 1, 2, 3, 4, False, 5.0, avg_runtime_s=0.443)
    report = cluster_status(
        [master(1, processes=[process])], [worker], WorkersStopped(NOW, "a:1"), NOW, [queue]
    )

    data = json.loads(json.dumps(report.to_dict()))

    assert ClusterStatus.from_dict(data) == report
    assert data["state"] == "running" and data["queues"][0]["size"] == 6


def test_a_worker_line_keeps_its_json_and_gains_process_and_pid() -> None:
    line = child_line("default", "default.1", 42, "stdout", '{"event": "job.done", "id": "x"}\n')
    assert json.loads(line) == {"process": "default.1", "pid": 42, "event": "job.done", "id": "x"}
    wrapped = json.loads(
        child_line("default", "default.1", 42, "stderr", "Traceback (most recent call last):\n")
    )
    assert (wrapped["stream"], wrapped["line"]) == ("stderr", "Traceback (most recent call last):")


def test_log_files_rotate_by_size_and_keep_the_newest_backups(tmp_path: Path) -> None:
    log = RotatingFile(tmp_path / "default.log", max_bytes=100, backups=2)
    for n in range(12):
        log.write(f"{n:02d}" + "x" * 37 + "\n")  # 40 bytes: two lines per file
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["default.log", "default.log.1", "default.log.2"]
    assert (tmp_path / "default.log").read_text().splitlines()[0].startswith("10")
    assert (tmp_path / "default.log.2").read_text().splitlines()[0].startswith("06")
