"""A job that records progress survives more SIGKILLs of its worker than it has tries.

Real `docmill queue work` processes on SQLite and on Redis: the handler saves a step and
calls ``await ctx.progress()``; the test then kills its worker with SIGKILL, as an OOM
killer or an operator's ``kill -9`` would. Each killed attempt made progress, so none is
spent; the job completes on the run after the last kill. (A job that kills its worker
without progress still fails after its tries: test_worker_cli.py.)
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from test_worker_cli import WorkerProcess, dispatch, jobs, start, url, workers

from docmill.queue import Dispatch, JobOptions, JobState

__all__ = ["url", "workers"]  # fixtures shared with test_worker_cli.py

TRIES = 2
KILLS = 4


def wait_for_lines(path: Path, count: int, worker: WorkerProcess, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert worker.proc.poll() is None, f"the worker exited early; log:\n{''.join(worker.raw)}"
        assert time.monotonic() < deadline, f"no {count} steps saved in time; log:\n{''.join(worker.raw)}"
        time.sleep(0.05)


def test_a_job_that_made_progress_in_every_attempt_outlives_more_kills_than_tries(
    url: str, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    # Given a job with 2 tries whose handler saves a step and records progress on each run
    journal = tmp_path / "journal.txt"
    options = JobOptions(tries=TRIES)
    [job_id] = dispatch(url, [Dispatch("accept.saves_then_waits", [str(journal), KILLS + 1], {}, options)])

    # When its worker is killed with SIGKILL after each step, 4 times (a supervisor restarts it)
    for kill in range(1, KILLS + 1):
        worker = start(workers, url, "--lease", "0.5", "--max-jobs", "1")
        wait_for_lines(journal, kill, worker)
        os.kill(worker.proc.pid, signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL

    # Then the next worker runs it to completion: no killed attempt was spent
    last = start(workers, url, "--lease", "0.5", "--max-jobs", "1")
    assert last.wait(30) == 0
    [job] = jobs(url, [job_id])
    assert job.state is JobState.COMPLETED
    assert job.attempts == 1
    assert journal.read_text().splitlines() == ["step"] * (KILLS + 1)
    assert [event["id"] for event in last.named("job.done")] == [job_id]
    assert last.named("job.failed") == []
