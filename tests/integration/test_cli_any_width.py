"""The `queue` commands at any width, on a real SQLite queue: nothing an operator copies is cut.

Each command runs in-process through the Typer app (``CliRunner``, whose output is no
terminal): with ``COLUMNS`` set the tables fit that width, without it every row is one line.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from docmill.cli.main import app
from docmill.queue import Backend, Completion, ErrorInfo, Job, backend_from_url
from docmill.supervisor.logs import child_line

T = TypeVar("T")
ERROR = "page 3 of the scanned contract is unreadable: the image is blank"


def on_queue(url: str, action: Callable[[Backend], Awaitable[T]]) -> T:
    async def run() -> T:
        backend = backend_from_url(url)
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    return asyncio.run(run())


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCMILL_CONFIG", "DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no docmill.toml around
    monkeypatch.setenv("DOCMILL_STORAGE", str(tmp_path / "storage"))
    (tmp_path / "storage").mkdir()
    return tmp_path / "storage"


@pytest.fixture
def url(storage: Path) -> str:
    """A queue where one job completed in 443 ms and one failed for good."""
    queue_url = f"sqlite:///{storage / 'queue.db'}"

    async def fill(backend: Backend) -> str:
        done = Job.build(
            "docmill.documents.jobs:analyze_section", options=None, default_queue="document-analysis"
        )
        broken = Job.build("reports.render", default_queue="document-analysis")
        await backend.enqueue([done, broken])
        reserved = (await backend.reserve("document-analysis", worker_id="w", lease_s=30, limit=2)).jobs
        first, second = sorted(reserved, key=lambda job: job.id != done.id)
        await backend.complete([Completion(first, runtime_s=0.443, wait_s=1.5)])
        await backend.fail(second, ErrorInfo("ValueError", ERROR, "Traceback ..."))
        return broken.id

    on_queue(queue_url, fill)
    return queue_url


def docmill(*args: str, columns: int | None = None) -> str:
    env = {"NO_COLOR": "1", "TERM": "dumb", **({"COLUMNS": str(columns)} if columns else {})}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code in (0, 1, 2), result.output
    return result.output


def failed_id(url: str) -> str:
    async def first(backend: Backend) -> str:
        [job] = await backend.failed_page(None, offset=0, limit=1)
        return job.id

    return on_queue(url, first)


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_failed_jobs_show_their_whole_id_and_error_at_any_width(url: str, columns: int) -> None:
    out = docmill("queue", "failed", "-c", url, columns=columns)

    assert failed_id(url) in out.split()
    assert ERROR.split()[-1] in out
    assert max(len(line) for line in out.splitlines()) <= columns


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_the_monitor_never_cuts_a_duration(url: str, columns: int) -> None:
    out = docmill("queue", "monitor", "-c", url, columns=columns)

    assert re.search(r"\b443ms\b", out) and re.search(r"\b1\.50s\b", out)
    assert max(len(line) for line in out.splitlines()) <= columns


def test_without_a_terminal_or_columns_each_row_is_one_whole_line(url: str) -> None:
    out = docmill("queue", "failed", "-c", url)

    [row] = [line for line in out.splitlines() if failed_id(url) in line]
    assert row.startswith(failed_id(url)) and row.endswith(f"ValueError: {ERROR}")


def test_json_output_is_unchanged_by_the_width(url: str) -> None:
    narrow = json.loads(docmill("queue", "monitor", "--json", "-c", url, columns=40))
    [queue] = narrow["queues"]

    assert (queue["queue"], queue["failed"], queue["avg_runtime_s"]) == ("document-analysis", 1, 0.443)
    status = json.loads(docmill("queue", "status", "--json", "-c", url, columns=40))
    assert set(status) == {"state", "workers_stopped", "masters", "workers", "queues", "llm_calls_stopped"}
    assert status["queues"][0]["failed"] == 1


def test_logs_are_readable_lines_and_json_only_on_request(storage: Path) -> None:
    logs = storage / "logs"
    logs.mkdir()
    event: dict[str, Any] = {"ts": 1_795_806_962.123, "level": "info", "event": "job.done", "id": "0193a1b2"}
    (logs / "default.log").write_text(child_line("default", "default.1", 42, "stdout", json.dumps(event)))

    readable = docmill("queue", "logs", "default")
    raw = docmill("queue", "logs", "default", "--json")

    assert readable == "2026-11-27T19:16:02.123Z info default.1[42] job.done id=0193a1b2\n"
    assert json.loads(raw) == {"process": "default.1", "pid": 42, **event}
