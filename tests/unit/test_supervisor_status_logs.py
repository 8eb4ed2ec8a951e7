"""`queue status` from heartbeats, and the master's log files."""

from __future__ import annotations

import json
from pathlib import Path

from docmill.supervisor.logs import RotatingFile, child_line
from docmill.supervisor.status import EXIT_CODES, cluster_status

NOW = 1_000_000.0


def master(
    pid: int, state: str = "running", processes: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {
        "host": "a",
        "pid": pid,
        "state": state,
        "started": NOW - 60,
        "pools": [{"name": "default", "state": "running", "target": 1, "processes": processes or []}],
    }


def test_workers_are_joined_to_their_master_by_host_and_pid() -> None:
    process = {"name": "default.1", "state": "running", "pid": 42, "started": NOW - 30, "restarts": 2}
    worker = {
        "host": "a",
        "pid": 42,
        "state": "busy",
        "jobs_done": 7,
        "memory_mb": 51.2,
        "jobs": [{"id": "j1", "name": "ocr"}],
        "queues": ["default"],
    }
    stray = {"host": "b", "pid": 9, "state": "idle", "jobs_done": 0, "jobs": [], "started_at": NOW - 5}
    report = cluster_status([master(1, processes=[process])], [worker, stray], None, NOW)
    assert report["state"] == "running"
    first, second = report["workers"]
    assert (first["pool"], first["process"], first["pid"], first["uptime_s"]) == (
        "default",
        "default.1",
        42,
        30,
    )
    assert (first["restarts"], first["jobs_done"], first["memory_mb"]) == (2, 7, 51.2)
    assert first["current_jobs"] == [{"id": "j1", "name": "ocr"}]
    assert (second["state"], second["host"], second["pool"]) == ("unsupervised", "b", None)
    assert report["masters"][0]["uptime_s"] == 60


def test_overall_state_and_exit_code() -> None:
    def state(*masters: dict[str, object], flag: dict[str, object] | None = None) -> tuple[str, int]:
        name = cluster_status(list(masters), [], flag, NOW)["state"]
        return name, EXIT_CODES[name]

    assert state() == ("inactive", 2)
    assert state(master(1), master(2, "paused")) == ("running", 0)
    assert state(master(1, "paused")) == ("paused", 1)
    assert state(master(1, "stopped"), flag={"at": NOW}) == ("stopped", 1)


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
