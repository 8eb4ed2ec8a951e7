"""`docmill demo` end to end: real worker processes on a fresh SQLite queue in the working directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from docmill.queue import ErrorInfo, Job, JobOptions, backend_from_url

DOCMILL = str(Path(sys.executable).parent / "docmill")


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


def row_of(output: str, first_cell: str) -> list[str]:
    rows = [cells(line) for line in output.splitlines() if "│" in line]
    [row] = [row for row in rows if row[0] == first_cell]
    return row


def field(output: str, name: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(f"{name} ")]
    return line[len(name) :].strip()


def worker_logs(cwd: Path) -> str:
    """The tail of every worker log, to explain a failed run."""
    parts = []
    for log in sorted((cwd / "storage" / "logs").glob("demo-*.log")):
        parts.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "\n".join(parts)


async def _stale_failure(url: str) -> str:
    backend = backend_from_url(url)
    await backend.connect()
    try:
        [job_id] = await backend.enqueue([Job.build("stale.job", options=JobOptions(queue="default"))])
        [job] = (await backend.reserve("default", worker_id="old-run", lease_s=30)).jobs
        await backend.fail(job, ErrorInfo("RuntimeError", "left over from an earlier run"))
        return job_id
    finally:
        await backend.close()


async def _failed_ids(url: str) -> list[str]:
    backend = backend_from_url(url)
    await backend.connect()
    try:
        return [job.id for job in await backend.failed_page(limit=10)]
    finally:
        await backend.close()


def test_demo_completes_all_jobs_but_one_and_shows_the_failure(tmp_path: Path) -> None:
    # Given a working directory holding a queue left over from an earlier run
    url = f"sqlite:///{tmp_path / 'storage' / 'demo-queue.db'}"
    (tmp_path / "storage").mkdir()
    stale_id = asyncio.run(_stale_failure(url))

    # When the demo runs there
    env = {k: v for k, v in os.environ.items() if k not in {"DOCMILL_QUEUE_URL", "PYTHONDONTWRITEBYTECODE"}}
    env.update(COLUMNS="120", NO_COLOR="1", TERM="dumb")
    result = subprocess.run(
        [DOCMILL, "demo", "--engine"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr + worker_logs(tmp_path)

    # Then it started from a fresh queue, and every job but the scanned PDF completed
    assert out.startswith(
        "Dispatched 300 jobs to 3 queues in storage/demo-queue.db; starting 5 worker processes"
    )
    assert row_of(out, "default")[:4] == ["default", "100", "0", "10"]
    assert row_of(out, "document-analysis")[:4] == ["document-analysis", "99", "1", "1"]
    assert row_of(out, "document-processing")[:4] == ["document-processing", "100", "0", "0"]
    assert row_of(out, "all")[:4] == ["all", "299", "1", "11"]
    assert all(value.endswith("jobs/s") for value in (row_of(out, q)[5] for q in ("default", "all")))
    assert "299 of 300 jobs completed, 1 failed, in " in out

    # And the one failed job is shown with its handler, attempts and error
    failed_ids = asyncio.run(_failed_ids(url))
    assert len(failed_ids) == 1 and failed_ids != [stale_id]
    assert field(out, "ID") == failed_ids[0]
    assert field(out, "Job") == "demo.parse_scanned_pdf"
    assert field(out, "Attempts") == "2 of 2"
    assert field(out, "Error") == "UnreadableDocument: document 37 is a scanned PDF without a text layer"
    assert "  uv run docmill queue failed --connection sqlite:///storage/demo-queue.db" in out.splitlines()
    assert "  uv run docmill queue retry all --connection sqlite:///storage/demo-queue.db" in out.splitlines()

    # And every worker wrote its log under storage/logs
    logs = sorted(p.name for p in (tmp_path / "storage" / "logs").glob("demo-*.log"))
    assert logs == [
        "demo-default-1.log",
        "demo-default-2.log",
        "demo-document-analysis-1.log",
        "demo-document-processing-1.log",
        "demo-document-processing-2.log",
    ]
    assert "worker.started" in (tmp_path / "storage" / "logs" / "demo-default-1.log").read_text()
