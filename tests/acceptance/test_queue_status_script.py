"""`bin/queue-status.sh`, the seed's script, run with bash against an SQLite queue.

Each test calls the script as an operator would and checks what the `docmill queue`
command behind it did to the queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from docmill.queue import Backend, Client, Dispatch, ErrorInfo, JobOptions, JobState, backend_from_url

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bin" / "queue-status.sh"
DOCMILL = Path(sys.executable).parent / "docmill"
# Variables from the developer's shell that would point the commands elsewhere.
IGNORED_ENV = {"DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "DOCMILL_CONFIG", "DOCMILL_APP", "DOCMILL"}


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'queue.db'}"


def on_queue(url: str, action: Callable[[Backend], Awaitable[T]]) -> T:
    async def go() -> T:
        backend = backend_from_url(url)
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def make_failed_jobs(url: str, count: int) -> list[str]:
    """Dispatch ``count`` jobs and fail each one, as a worker would after its last try."""

    async def go(backend: Backend) -> list[str]:
        items = [Dispatch("report.render", (n,), {}, JobOptions(queue="default")) for n in range(count)]
        ids = await Client(backend).dispatch_many(items)
        reservation = await backend.reserve("default", worker_id="test", lease_s=30, limit=count)
        for job in reservation.jobs:
            assert await backend.fail(job, ErrorInfo("ValueError", "page 3 is unreadable"))
        return list(ids)

    return on_queue(url, go)


def run_script(
    tmp_path: Path, url: str, *args: str, docmill: str | None = str(DOCMILL), **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
    env.update(DOCMILL_QUEUE_URL=url, COLUMNS="160", NO_COLOR="1", TERM="dumb", **extra_env)
    if docmill is not None:
        env["DOCMILL"] = docmill
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )


def folded_rows(output: str) -> dict[str, list[str]]:
    """A table's rows by first cell, each other cell joined over the lines it folds onto."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in output.splitlines():
        if line.count("│") != 2:
            continue
        first, *rest = (cell.strip() for cell in line.split("│"))
        if first:
            last = rows[first] = rest
        else:
            last[:] = [done + more for done, more in zip(last, rest, strict=True)]
    return rows


def test_config_shows_the_seed_pools_and_the_queue_url_from_the_environment(
    tmp_path: Path, queue_url: str
) -> None:
    result = run_script(tmp_path, queue_url, "config")
    assert result.returncode == 0, result.stderr
    rows = folded_rows(result.stdout)
    assert rows["connection"] == [queue_url, "env DOCMILL_QUEUE_URL"]  # the long URL folds, whole
    for pool, processes in (("default", 2), ("document-analysis", 1), ("document-processing", 2)):
        assert rows[f"pools.{pool}.processes"][0] == str(processes)

    # Extra arguments pass through, and --json gives every value too.
    as_json = run_script(tmp_path, queue_url, "config", "--json")
    settings = {s["key"]: s["value"] for s in json.loads(as_json.stdout)["settings"]}
    assert settings["connection"] == queue_url


def test_status_without_a_master_reports_inactive_and_the_queue_counts(
    tmp_path: Path, queue_url: str
) -> None:
    make_failed_jobs(queue_url, 2)
    result = run_script(tmp_path, queue_url, "status")
    assert result.returncode == 2, result.stderr  # inactive: no master heartbeat
    lines = result.stdout.splitlines()
    assert lines[0] == "Supervisors: inactive"
    assert lines[1] == "No `docmill supervise` is running on any host (no heartbeat lately)."
    default = next(line for line in lines if line.startswith("default "))
    assert default.split("│")[:5] == ["default ", "       0 ", "       0 ", "        0 ", "      2 "]


def test_failed_lists_the_failed_jobs_and_retry_all_puts_them_back(tmp_path: Path, queue_url: str) -> None:
    # Given two jobs that failed for good
    ids = make_failed_jobs(queue_url, 2)

    # When the operator lists them
    listed = run_script(tmp_path, queue_url, "failed")

    # Then both are shown with their error
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("page 3 is unreadable") == 2
    assert all(job_id[:8] in listed.stdout for job_id in ids)
    assert listed.stdout.splitlines()[-1] == "2 failed jobs; page 1 of 1."

    # When they are retried, they are pending again and the failed store is empty
    retried = run_script(tmp_path, queue_url, "retry", "all")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "Retried 2 failed jobs."
    stats = on_queue(queue_url, lambda backend: backend.stats("default"))
    assert (stats.pending, stats.failed) == (2, 0)
    assert run_script(tmp_path, queue_url, "failed").stdout.strip() == "No failed jobs."


def test_retry_one_id_moves_only_that_job(tmp_path: Path, queue_url: str) -> None:
    first, second = make_failed_jobs(queue_url, 2)
    result = run_script(tmp_path, queue_url, "retry", first)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Retried 1 failed job."
    stats = on_queue(queue_url, lambda backend: backend.stats("default"))
    assert (stats.pending, stats.failed) == (1, 1)
    still_failed = on_queue(queue_url, lambda backend: backend.get(second))
    assert still_failed is not None and still_failed.state == JobState.FAILED


def test_the_docmill_on_path_is_used_when_docmill_is_not_set(tmp_path: Path, queue_url: str) -> None:
    path = f"{DOCMILL.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run_script(tmp_path, queue_url, "failed", docmill=None, PATH=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No failed jobs."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Usage: bin/queue-status.sh COMMAND [ARGS]"),
        (("purge",), "queue-status.sh: unknown command 'purge'"),
        (("retry",), "queue-status.sh: retry needs 'all' or job ids"),
    ],
)
def test_a_missing_or_unknown_command_prints_usage_and_exits_2(
    tmp_path: Path, queue_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run_script(tmp_path, queue_url, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_help_lists_every_command_of_the_seed_script(tmp_path: Path, queue_url: str) -> None:
    result = run_script(tmp_path, queue_url, "help")
    assert result.returncode == 0
    for command in ("config", "status", "start", "stop", "restart", "logs [QUEUE]", "failed", "retry all"):
        assert f"  {command} " in result.stdout
