"""The operator's `docmill queue ...` commands, run as the installed CLI against real backends.

Each test seeds state through the backend API, runs the command in a
subprocess at a fixed console width, and checks the exact JSON it prints, the
key lines it renders, its exit code, and what it changed in the backend.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from docmill.queue import Backend, ErrorInfo, Job, JobOptions, JobState, backend_from_url

T = TypeVar("T")
DOCMILL = str(Path(sys.executable).parent / "docmill")
# The CLI must not pick up the caller's queue; bytecode caching keeps ~100 CLI starts affordable.
IGNORED_ENV = {"DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "PYTHONDONTWRITEBYTECODE"}
TRACEBACK = 'Traceback (most recent call last):\n  File "reports.py", line 12, in render\nValueError: {msg}\n'


def docmill(*args: str, url: str | None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
    env.update(COLUMNS="120", NO_COLOR="1", TERM="dumb")
    command = [DOCMILL, "queue", *args] + (["--connection", url] if url else [])
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=60)


def run_json(*args: str, url: str, code: int = 0) -> Any:
    result = docmill(*args, "--json", url=url)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def with_backend(url: str, action: Callable[[Backend], Awaitable[T]]) -> T:
    async def run() -> T:
        backend = backend_from_url(url)
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    return asyncio.run(run())


def seed_failed(url: str, queue: str, count: int, *, start: int = 1) -> list[str]:
    """Dispatch ``count`` jobs to ``queue``, reserve them, and fail each with its own error."""

    async def seed(backend: Backend) -> list[str]:
        jobs = [
            Job.build(
                "reports.render",
                [n],
                {"format": "pdf"},
                JobOptions(queue=queue, tries=3, tags=(f"document:{n}",)),
            )
            for n in range(start, start + count)
        ]
        await backend.enqueue(jobs)
        reserved = (await backend.reserve(queue, worker_id="test-worker", lease_s=30, limit=count)).jobs
        assert len(reserved) == count
        for job in reserved:
            msg = f"boom {job.args[0]}"
            await backend.fail(job, ErrorInfo("ValueError", msg, TRACEBACK.format(msg=msg)))
            await asyncio.sleep(0.002)  # distinct failure times, so "newest first" is well defined
        return [job.id for job in reserved]

    return with_backend(url, seed)


def get_job(url: str, job_id: str) -> Job | None:
    async def get(backend: Backend) -> Job | None:
        return await backend.get(job_id)

    return with_backend(url, get)


def enqueue(url: str, queue: str, count: int, **options: Any) -> list[str]:
    async def put(backend: Backend) -> list[str]:
        jobs = [
            Job.build("reports.render", [n], {}, JobOptions(queue=queue, **options)) for n in range(count)
        ]
        return await backend.enqueue(jobs)

    return with_backend(url, put)


def line_with(output: str, text: str) -> str:
    lines = [line for line in output.splitlines() if text in line]
    assert len(lines) == 1, f"{text!r} in {lines!r}\n{output}"
    return lines[0].rstrip()


def cells(row: str) -> list[str]:
    """The cells of one rendered table row."""
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


def row_of(output: str, first_cell: str) -> list[str]:
    """The cells of the one table row whose first cell is ``first_cell``."""
    rows = [cells(line) for line in output.splitlines() if "│" in line]
    [row] = [row for row in rows if row[0] == first_cell]
    return row


# ------------------------------------------------------------------------------ failed jobs


def test_failed_lists_jobs_newest_first_as_json_and_table(queue_url: str) -> None:
    # Given three failed jobs on "reports"
    ids = seed_failed(queue_url, "reports", 3)

    # When the operator lists them
    data = run_json("failed", url=queue_url)

    # Then JSON holds exactly what the backend holds, newest failure first
    expected = [get_job(queue_url, job_id) for job_id in reversed(ids)]
    assert data == {
        "total": 3,
        "page": 1,
        "per_page": 25,
        "pages": 1,
        "jobs": [job.to_dict() for job in expected if job is not None],
    }
    first = data["jobs"][0]
    assert (first["id"], first["queue"], first["name"], first["state"]) == (
        ids[2],
        "reports",
        "reports.render",
        "failed",
    )
    assert first["error"] == {
        "type": "ValueError",
        "message": "boom 3",
        "traceback": TRACEBACK.format(msg="boom 3"),
    }

    # And the table shows one row per job with its attempts, age and error
    table = docmill("failed", url=queue_url)
    assert table.returncode == 0, table.stderr
    row = cells(line_with(table.stdout, ids[0]))
    assert row[:4] == [ids[0], "reports", "reports.render", "1/3"]
    assert row[4].endswith(" ago") or row[4] == "just now"
    assert row[5] == "ValueError: boom 1"
    assert table.stdout.index(ids[2]) < table.stdout.index(ids[0])
    assert table.stdout.rstrip().endswith("3 failed jobs; page 1 of 1.")


def test_failed_pages_and_filters_by_queue(queue_url: str) -> None:
    ids = seed_failed(queue_url, "reports", 3)
    other = seed_failed(queue_url, "mail", 1, start=10)

    page2 = run_json("failed", "--per-page", "2", "--page", "2", url=queue_url)
    assert (page2["total"], page2["pages"], [j["id"] for j in page2["jobs"]]) == (4, 2, [ids[1], ids[0]])

    mail = run_json("failed", "--queue", "mail", url=queue_url)
    assert (mail["total"], [j["id"] for j in mail["jobs"]]) == (1, other)

    table = docmill("failed", "--per-page", "2", url=queue_url)
    assert "4 failed jobs; page 1 of 2." in table.stdout
    assert "Next page: docmill queue failed --page 2" in table.stdout


def test_failed_show_prints_payload_attempts_and_traceback(queue_url: str) -> None:
    [job_id] = seed_failed(queue_url, "reports", 1)
    expected = get_job(queue_url, job_id)
    assert expected is not None

    assert run_json("failed", job_id, url=queue_url) == expected.to_dict()
    assert run_json("failed", "show", job_id, url=queue_url) == expected.to_dict()

    shown = docmill("failed", "show", job_id, url=queue_url)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert line_with(out, "ID ").split() == ["ID", job_id]
    assert line_with(out, "Attempts").split() == ["Attempts", "1", "of", "3"]
    assert line_with(out, "State").split() == ["State", "failed"]
    assert line_with(out, "Payload").split(maxsplit=1) == [
        "Payload",
        '{"args": [1], "kwargs": {"format": "pdf"}}',
    ]
    assert line_with(out, "Error ").split(maxsplit=1) == ["Error", "ValueError: boom 1"]
    assert "Traceback (most recent call last):" in out
    assert out.rstrip().endswith("ValueError: boom 1")


def test_failed_show_of_unknown_id_exits_1_with_one_sentence(queue_url: str) -> None:
    result = docmill("failed", "nope", url=queue_url)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no failed job with id nope; list them with: docmill queue failed"
    assert result.stdout == ""


# ------------------------------------------------------------------------------ retry / forget / flush


def test_retry_by_id_puts_the_job_back_with_fresh_attempts(queue_url: str) -> None:
    first, second = seed_failed(queue_url, "reports", 2)

    assert run_json("retry", first, url=queue_url) == {"retried": 1, "missing": []}

    job = get_job(queue_url, first)
    assert job is not None and (job.state, job.attempts) == (JobState.PENDING, 0)
    assert run_json("failed", url=queue_url)["total"] == 1

    result = docmill("retry", second, "missing-id", url=queue_url)
    assert result.returncode == 1
    assert result.stdout.strip() == "Retried 1 failed job."
    assert result.stderr.strip() == "error: no failed job with id missing-id"


def test_retry_all_streams_every_failed_job_per_queue_then_all(queue_url: str) -> None:
    seed_failed(queue_url, "reports", 7)
    seed_failed(queue_url, "mail", 3, start=100)

    assert run_json("retry", "all", "--queue", "mail", url=queue_url) == {"retried": 3, "queue": "mail"}
    assert run_json("failed", url=queue_url)["total"] == 7

    result = docmill("retry", "all", url=queue_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Retried 7 failed jobs."
    assert run_json("failed", url=queue_url)["total"] == 0
    assert run_json("monitor", "reports,mail", url=queue_url)["queues"][0]["pending"] == 7


def test_forget_deletes_one_failed_job(queue_url: str) -> None:
    first, second = seed_failed(queue_url, "reports", 2)

    assert run_json("forget", first, url=queue_url) == {"forgotten": first}
    assert [j["id"] for j in run_json("failed", url=queue_url)["jobs"]] == [second]

    again = docmill("forget", first, url=queue_url)
    assert again.returncode == 1
    assert (
        again.stderr.strip() == f"error: no failed job with id {first}; list them with: docmill queue failed"
    )


def test_flush_keeps_recent_failures_with_hours_and_deletes_all_without(queue_url: str) -> None:
    seed_failed(queue_url, "reports", 2)
    seed_failed(queue_url, "mail", 1, start=10)

    assert run_json("flush", "--hours", "1", url=queue_url) == {"deleted": 0, "queue": None, "hours": 1.0}
    assert run_json("flush", "--queue", "mail", url=queue_url) == {
        "deleted": 1,
        "queue": "mail",
        "hours": None,
    }

    result = docmill("flush", url=queue_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Deleted 2 failed jobs."
    assert run_json("failed", url=queue_url)["total"] == 0


def test_prune_failed_keeps_failures_younger_than_a_day_by_default(queue_url: str) -> None:
    seed_failed(queue_url, "reports", 2)
    assert run_json("prune-failed", url=queue_url) == {"deleted": 0, "queue": None, "hours": 24.0}
    assert run_json("prune-failed", "--hours", "0", url=queue_url) == {
        "deleted": 2,
        "queue": None,
        "hours": 0.0,
    }


# ------------------------------------------------------------------------------ queue control


def test_pause_and_continue_show_in_monitor(queue_url: str) -> None:
    enqueue(queue_url, "reports", 2)

    assert run_json("pause", "reports", url=queue_url) == {"queue": "reports", "paused": True}
    assert run_json("monitor", "reports", url=queue_url)["queues"][0]["paused"] is True
    table = docmill("monitor", url=queue_url)
    assert row_of(table.stdout, "reports")[5] == "paused"

    resumed = docmill("continue", "reports", url=queue_url)
    assert resumed.stdout.strip() == "Resumed queue reports."
    assert run_json("monitor", "reports", url=queue_url)["queues"][0]["paused"] is False


def test_clear_asks_first_and_deletes_waiting_jobs(queue_url: str) -> None:
    enqueue(queue_url, "reports", 3)
    enqueue(queue_url, "reports", 1, delay_s=600)
    enqueue(queue_url, "mail", 2)

    declined = docmill("clear", "reports", url=queue_url, stdin="n\n")
    assert declined.returncode == 1
    assert "Delete every pending and delayed job on queue reports? [y/N]" in declined.stderr
    assert "error: nothing was cleared; pass --force to clear reports without asking" in declined.stderr
    assert run_json("monitor", "reports", url=queue_url)["queues"][0]["size"] == 4

    confirmed = docmill("clear", "reports", url=queue_url, stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout.strip() == "Cleared 4 jobs from queue reports."

    assert run_json("clear", "mail", "--force", url=queue_url) == {"queue": "mail", "deleted": 2}
    sizes = {q["queue"]: q["size"] for q in run_json("monitor", url=queue_url)["queues"]}
    assert sizes == {"mail": 0, "reports": 0}


def test_restart_records_a_request_workers_can_read(queue_url: str) -> None:
    before = time.time()
    data = run_json("restart", url=queue_url)

    async def requested(backend: Backend) -> float | None:
        return await backend.restart_requested_at()

    assert before - 1 <= data["restart_requested_at"] <= time.time() + 1
    assert with_backend(queue_url, requested) == pytest.approx(data["restart_requested_at"])
    text = docmill("restart", url=queue_url)
    assert text.stdout.strip().endswith("every worker exits after its current jobs.")


# ------------------------------------------------------------------------------ monitor and lookups


def test_monitor_reports_counts_and_exits_1_over_max(queue_url: str) -> None:
    enqueue(queue_url, "reports", 3)
    enqueue(queue_url, "reports", 2, delay_s=600)
    seed_failed(queue_url, "mail", 1)

    data = run_json("monitor", "--max", "4", url=queue_url, code=1)
    assert data["max"] == 4
    assert data["over"] == ["reports"]
    reports, mail = (next(q for q in data["queues"] if q["queue"] == name) for name in ("reports", "mail"))
    age = reports.pop("oldest_pending_age_s")
    assert 0 <= age < 30
    assert reports == {
        "queue": "reports",
        "pending": 3,
        "delayed": 2,
        "reserved": 0,
        "failed": 0,
        "paused": False,
        "size": 5,
        "completed_last_hour": 0,
        "failed_last_hour": 0,
        "throughput_last_minute": 0,
        "throughput_per_minute_avg": 0.0,
        "avg_runtime_s": None,
        "avg_wait_s": None,
    }
    assert (mail["failed"], mail["size"]) == (1, 0)

    table = docmill("monitor", "--max", "4", url=queue_url)
    assert table.returncode == 1
    row = row_of(table.stdout, "reports")
    assert row[:8] == ["reports", "3", "2", "0", "0", "running", row[6], "0"]
    assert row[6].endswith("s") and row[8:] == ["0.0", "-", "-"]
    assert "Queue reports holds 5 jobs, over the limit of 4." in table.stdout

    assert docmill("monitor", "--max", "5", url=queue_url).returncode == 0


def test_job_and_tagged_find_jobs_in_any_state(queue_url: str) -> None:
    [failed_id] = seed_failed(queue_url, "reports", 1, start=42)
    [pending_id] = enqueue(queue_url, "mail", 1, tags=("document:42",))

    job = run_json("job", pending_id, url=queue_url)
    assert (job["id"], job["state"], job["queue"]) == (pending_id, "pending", "mail")

    tagged = run_json("tagged", "document:42", url=queue_url)
    assert tagged["tag"] == "document:42"
    assert sorted(j["id"] for j in tagged["jobs"]) == sorted([failed_id, pending_id])

    table = docmill("tagged", "document:42", url=queue_url)
    assert cells(line_with(table.stdout, pending_id))[:5] == [
        pending_id,
        "mail",
        "reports.render",
        "0",
        "pending",
    ]
    assert cells(line_with(table.stdout, failed_id))[:5] == [
        failed_id,
        "reports",
        "reports.render",
        "1/3",
        "failed",
    ]
    assert table.stdout.rstrip().endswith("2 jobs tagged document:42.")

    missing = docmill("job", "nope", url=queue_url)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "error: no job with id nope; list them with: docmill queue failed",
    )


# ------------------------------------------------------------------------------ errors


def test_unreachable_redis_exits_2_with_one_sentence_and_no_traceback() -> None:
    result = docmill("failed", url="redis://:hunter2@127.0.0.1:1/0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: cannot reach the queue backend at redis://:***@127.0.0.1:1/0: connection refused; "
        "is Redis running?"
    )
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr

    as_json = docmill("monitor", "--json", url="redis://127.0.0.1:1/0")
    assert as_json.returncode == 2
    message = "cannot reach the queue backend at redis://127.0.0.1:1/0: connection refused; is Redis running?"
    assert json.loads(as_json.stdout) == {"error": message}


def test_unopenable_sqlite_file_exits_2_with_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'queue.db'}"
    result = docmill("failed", url=url)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: cannot reach the queue backend at {url}: cannot open the database file; "
        "check that its directory exists and is writable"
    )


def test_unknown_scheme_exits_2_and_the_environment_gives_the_default_url(tmp_path: Path) -> None:
    result = docmill("failed", url="mongodb://x")
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown queue backend 'mongodb'")

    env = {**os.environ, "DOCMILL_QUEUE_URL": f"sqlite:///{tmp_path / 'env.db'}", "COLUMNS": "120"}
    from_env = subprocess.run(
        [DOCMILL, "queue", "failed"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert (from_env.returncode, from_env.stdout.strip()) == (0, "No failed jobs.")
    assert (tmp_path / "env.db").exists()
