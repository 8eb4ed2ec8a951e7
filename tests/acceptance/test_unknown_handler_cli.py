"""`docmill queue work` with a job whose handler it lacks, as in a rolling deploy: the real
console script, its `--unknown-handler-wait` flag, and the job's state read back through
`docmill queue job`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from docmill.queue import Client, backend_from_url

DOCMILL = str(Path(sys.executable).with_name("docmill"))


async def dispatch(url: str, name: str) -> str:
    backend = backend_from_url(url)
    await backend.connect()
    try:
        return await Client(backend).dispatch(name, "ann@example.com")
    finally:
        await backend.close()


def work(url: str, *flags: str) -> list[dict[str, Any]]:
    """Run one worker until its queue is empty; its JSON log events."""
    argv = [DOCMILL, "queue", "work", "--connection", url, "--app", "docmill.demo_jobs:registry"]
    done = subprocess.run(
        [*argv, "--json", "--stop-when-empty", "--sleep", "0.1", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def job(url: str, job_id: str) -> dict[str, Any]:
    shown = subprocess.run(
        [DOCMILL, "queue", "job", job_id, "--connection", url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def test_a_worker_puts_back_a_job_it_cannot_run_and_with_a_zero_wait_fails_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"

    # Given a job of a handler the worker's --app does not define
    waiting_id = asyncio.run(dispatch(url, "mail.send_v2"))

    # When a worker with the default wait meets it, it puts it back, delayed, with the reason
    events = work(url)
    (released,) = [e for e in events if e["event"] == "job.unknown_handler"]
    assert (released["id"], released["action"], released["wait_s"]) == (waiting_id, "released", 300)
    shown = job(url, waiting_id)
    assert shown["state"] == "delayed" and shown["attempts"] == 0
    assert shown["error"]["type"] == "UnknownHandler"
    assert "waiting for a worker that has it since" in shown["error"]["message"]

    # When a worker started with --unknown-handler-wait 0 meets another such job, it fails it
    failing_id = asyncio.run(dispatch(url, "mail.send_v3"))
    events = work(url, "--unknown-handler-wait", "0")
    (failed,) = [e for e in events if e["event"] == "job.failed"]
    assert failed["id"] == failing_id
    shown = job(url, failing_id)
    assert shown["state"] == "failed"
    assert shown["error"]["message"].startswith("no handler named 'mail.send_v3' is registered in any worker")
