"""Queue names as an operator meets them: reserved words served side by side, bad names refused.

A job that fails on a queue named ``notify`` while a queue named ``failed`` exists is listed
by ``docmill queue failed`` and retried by ``docmill queue retry`` (the first Redis key
schema lost it); a name the rule refuses is one sentence and exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from test_worker_cli import DOCMILL, HERE, WorkerProcess, dispatch, jobs, start, url, workers

from docmill.queue import Dispatch, JobOptions, JobState

__all__ = ["url", "workers"]  # fixtures shared with test_worker_cli.py


def docmill(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(HERE), COLUMNS="200")
    return subprocess.run([DOCMILL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_job_failed_on_notify_beside_a_queue_named_failed_is_listed_and_retried(
    url: str, workers: list[WorkerProcess]
) -> None:
    # Given a job that fails on `notify` and any job on `failed`
    [failing, other] = dispatch(
        url,
        [
            Dispatch("accept.refuse", options=JobOptions(queue="notify")),
            Dispatch("accept.sleep", [0], options=JobOptions(queue="failed")),
        ],
    )

    # When one worker serves both queues until they are empty
    worker = start(workers, url, "--queue", "notify,failed", "--stop-when-empty")
    assert worker.wait(30) == 0
    assert worker.named("job.lease_lost") == []

    # Then `queue failed` lists the failure, and `queue retry ID` brings it back
    listed = docmill("queue", "failed", "--json", "--connection", url)
    assert listed.returncode == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)["jobs"]] == [failing]
    retried = docmill("queue", "retry", failing, "--json", "--connection", url)
    assert json.loads(retried.stdout) == {"retried": 1, "missing": []}
    states = [job.state for job in jobs(url, [failing, other])]
    assert states == [JobState.PENDING, JobState.COMPLETED]


def test_a_queue_name_with_a_control_character_is_refused_in_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    app = ("--app", "worker_jobs:registry", "--json")
    worker = docmill("queue", "work", "--queue", "default,bad\x01", "--connection", url, *app)
    paused = docmill("queue", "pause", "bad\x01", "--connection", url)

    # The worker's boot fails with its own code (the supervisor stops restarting it) ...
    assert worker.returncode == 3
    boot = json.loads(worker.stdout.splitlines()[0])
    assert boot["event"] == "worker.boot_failed"
    assert boot["error"].startswith(
        "InvalidQueueName: queue name 'bad\\x01' (--queue) is not valid: it holds the character U+0001"
    )
    # ... and an operator command says it in one sentence, exit code 2
    assert paused.returncode == 2
    assert paused.stderr.startswith(
        "error: queue name 'bad\\x01' is not valid: it holds the character U+0001"
    )
    assert "Traceback" not in worker.stdout + worker.stderr + paused.stderr
