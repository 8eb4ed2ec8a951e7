"""Upload to result through the HTTP API, with real worker processes talking to Claude's emulator.

The API is the web app (``docmill.web.app:create_app``) served in-process over httpx's
ASGI transport; the pipeline runs in ``docmill queue work --app
docmill.documents.jobs:registry`` subprocesses, which reach the Anthropic Messages API
emulator over HTTP with the real ``anthropic`` SDK (``ANTHROPIC_BASE_URL`` and a key made
up at runtime). Each test runs on SQLite queue + SQLite documents, and on Redis queue +
PostgreSQL documents (a database of its own, dropped afterwards).

``PipelineWorkers`` and ``pipeline_env`` are shared with ``test_pipeline_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.settings import DocumentSettings
from docmill.llm.pricing import PriceTable
from docmill.llm.types import Usage
from docmill.testing import AnthropicEmulator, EmulatorConfig
from docmill.web import create_app

DOCMILL = str(Path(sys.executable).parent / "docmill")
APP = "docmill.documents.jobs:registry"
QUEUES = "document-analysis,document-processing,default"
MODEL = "claude-haiku-4-5"
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "documents").iterdir())
BROKEN = "broken-truncated.pdf"
BROKEN_REASON = "The PDF is incomplete (the file ends too early); upload the complete file."
MESSAGES = "POST /v1/messages"
# Settings of the test runner's environment that must not leak into the workers.
_IGNORED_ENV = {
    "CLAUDE_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "DOCMILL_LLM_PROVIDER",
    "DOCMILL_LLM_LIMITS",
    "CLAUDE_DEFAULT_MODEL",
    "DATABASE_URL",
    "DOCMILL_QUEUE_URL",
    "QUEUE_CONNECTION",
    "DOCMILL_STORAGE",
    "DOCMILL_CONFIG",
    "DOCMILL_APP",
    "PYTHONDONTWRITEBYTECODE",
}


def fake_key() -> str:
    return f"sk-ant-emulator-{secrets.token_hex(16)}"


def pipeline_env(
    *, storage: Path, queue_url: str, database_url: str, emulator_url: str, api_key: str, **extra: str
) -> dict[str, str]:
    """The environment of the workers (and the settings of the API): Claude at the emulator."""
    env = {k: v for k, v in os.environ.items() if k not in _IGNORED_ENV}
    env.update(
        DOCMILL_STORAGE=str(storage),
        DATABASE_URL=database_url,
        DOCMILL_QUEUE_URL=queue_url,
        DOCMILL_LLM_PROVIDER="anthropic",
        CLAUDE_API_KEY=api_key,
        ANTHROPIC_BASE_URL=emulator_url,
        CLAUDE_DEFAULT_MODEL=MODEL,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class PipelineWorkers:
    """``docmill queue work`` processes on the pipeline's queues; each logs JSON lines to a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self, *, concurrency: int = 4, queues: str = QUEUES, extra: tuple[str, ...] = ()) -> int:
        """Start one worker; returns its index (its log is ``worker-<index>.log``)."""
        index = len(self.processes)
        log = (self.log_dir / f"worker-{index}.log").open("wb")
        command = [
            DOCMILL,
            "queue",
            "work",
            "--app",
            APP,
            "--queue",
            queues,
            "--connection",
            self.env["DOCMILL_QUEUE_URL"],
            "--concurrency",
            str(concurrency),
            "--sleep",
            "0.1",
            "--memory",
            "0",
            "--grace",
            "10",
            "--json",
            *extra,
        ]
        self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        self._logs.append(log)
        return index

    def events(self, event: str | None = None, index: int | None = None) -> list[dict[str, Any]]:
        """The JSON log events of one worker, or of all, optionally of one kind."""
        found: list[dict[str, Any]] = []
        for number in range(len(self.processes)) if index is None else [index]:
            path = self.log_dir / f"worker-{number}.log"
            for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if event is None or item.get("event") == event:
                    found.append(item)
        return found

    def wait_started(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until ``count`` workers logged ``worker.started`` (booting takes seconds)."""
        deadline = time.monotonic() + timeout_s
        while len(self.events("worker.started")) < count:
            self.assert_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"workers did not start in {timeout_s}s:\n{self.tail()}")
            time.sleep(0.1)

    def assert_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if process.poll() is not None and process.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"worker {index} exited with {process.returncode}:\n{self.tail()}")

    def kill(self, index: int) -> None:
        """SIGKILL: the worker dies at once, holding its jobs under leases."""
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(10)

    def stop(self) -> list[int | None]:
        """SIGTERM every live worker and wait; the exit codes (killed ones stay negative)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        return [process.returncode for process in self.processes]

    def tail(self, lines: int = 25) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            parts.append(
                f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            )
        return "\n".join(parts)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def api_key() -> str:
    return fake_key()


@pytest.fixture(scope="module")
def emulator(api_key: str) -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=api_key)) as running:
        yield running


@dataclass(frozen=True)
class Stack:
    queue_url: str
    database_url: str


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis-postgresql", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ]
)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Stack:
    if request.param == "sqlite":
        return Stack(f"sqlite:///{tmp_path / 'queue.db'}", f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}")
    return Stack(request.getfixturevalue("redis_url"), request.getfixturevalue("postgres_database"))


@pytest.fixture
def env(tmp_path: Path, stack: Stack, emulator: AnthropicEmulator, api_key: str) -> dict[str, str]:
    emulator.reset(EmulatorConfig(api_key=api_key))
    return pipeline_env(
        storage=tmp_path / "storage",
        queue_url=stack.queue_url,
        database_url=stack.database_url,
        emulator_url=emulator.url,
        api_key=api_key,
        DOCMILL_API_TOKENS=secrets.token_urlsafe(24),
    )


@pytest.fixture
async def app(env: dict[str, str]) -> AsyncIterator[FastAPI]:
    application = create_app(DocumentSettings.from_env(env), development=False)
    application.state.sse_poll_s = 0.05
    async with application.router.lifespan_context(application):  # migrates the database
        yield application


@pytest.fixture
async def api(app: FastAPI, env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {env['DOCMILL_API_TOKENS']}"}
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[PipelineWorkers]:
    started = PipelineWorkers(env, tmp_path / "logs")
    yield started
    started.stop()


# ---------------------------------------------------------------------- helpers
def sse_statuses(body: str) -> list[dict[str, Any]]:
    """The ``status`` events of a server-sent event stream, as their data."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "status":
            found.append(json.loads(fields["data"]))
    return found


async def wait_ended(
    api: httpx.AsyncClient, ids: list[int], workers: PipelineWorkers, timeout_s: float = 90.0
) -> dict[int, dict[str, Any]]:
    """Poll the API until every document completed or failed; their details by id."""
    deadline = time.monotonic() + timeout_s
    while True:
        details = {i: (await api.get(f"/api/documents/{i}")).json() for i in ids}
        if all(d["status"] in ("completed", "failed", "cancelled") for d in details.values()):
            return details
        workers.assert_alive()
        if time.monotonic() > deadline:
            stuck = {d["name"]: d["status"] for d in details.values()}
            raise AssertionError(f"documents did not end in {timeout_s}s: {stuck}\n{workers.tail()}")
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------- the tests
async def test_every_example_goes_from_upload_to_result_through_the_api_and_real_workers(
    api: httpx.AsyncClient, workers: PipelineWorkers, emulator: AnthropicEmulator
) -> None:
    # Given two worker processes on the pipeline's queues
    workers.start()
    workers.start()

    # When every example is uploaded through the API
    ids: dict[str, int] = {}
    for path in EXAMPLES:
        response = await api.post("/api/documents", files={"file": (path.name, path.read_bytes())})
        assert response.status_code == 201, response.text
        ids[path.name] = response.json()["id"]
    details = await wait_ended(api, list(ids.values()), workers)

    # Then each completed with Claude's answer, but the broken file, which failed with its reason
    prices = PriceTable.default()
    totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    for name, document_id in ids.items():
        document = details[document_id]
        events = sse_statuses((await api.get(f"/api/documents/{document_id}/events")).text)
        if name == BROKEN:
            assert (document["status"], document["error"]) == ("failed", BROKEN_REASON)
            assert [e["to_status"] for e in events] == ["uploaded", "analyzing", "failed"]
            assert document["cost_usd"] == 0.0
            continue
        assert document["status"] == "completed", (name, document["error"])
        result = (await api.get(f"/api/documents/{document_id}/result")).json()["result"]
        assert result["processor"] == f"anthropic ({result['models'][0]})" and not result["offline"]
        assert result["summary"] and result["title"]

        # And the cost recorded is what the API's reported usage costs at list prices
        usage = result["usage"]
        expected = sum(
            prices.cost_usd(model, Usage(usage["input_tokens"], usage["output_tokens"]))
            for model in result["models"]
        )
        assert usage["cost_usd"] == pytest.approx(expected, abs=1e-6) and expected > 0
        assert document["cost_usd"] == pytest.approx(usage["cost_usd"], abs=1e-6)
        assert usage["calls"] == document["progress"]["total"] == document["progress"]["done"]
        assert usage["calls"] == document["estimate"]["calls"]["total"]
        for key in totals:
            totals[key] += usage[key]

        # And every stage left its event, in order, each saying what happened
        assert [e["to_status"] for e in events] == [
            "uploaded",
            "analyzing",
            "analyzed",
            "queued",
            "processing",
            "completed",
        ]
        messages = {e["to_status"]: e["message"] for e in events}
        assert messages["analyzed"].startswith("analysed: ")
        assert messages["queued"].startswith("auto-approved")
        assert messages["completed"] == (
            f"completed: {usage['calls']} calls, ${usage['cost_usd']:.4f}, by {result['processor']}"
        )

    # And the emulator answered exactly the calls the results account for, with no 429
    stats = emulator.stats
    assert stats["by_endpoint"][MESSAGES] == totals["calls"]
    assert (stats["input_tokens"], stats["output_tokens"]) == (
        totals["input_tokens"],
        totals["output_tokens"],
    )
    assert stats["rate_limited"] == 0

    # And no job failed or retried: the broken file failed its document, not its job
    assert workers.events("job.failed") == [] and workers.events("job.retry") == []
    assert workers.stop() == [0, 0]


async def test_a_document_over_the_budget_waits_for_approval_and_completes_once_approved(
    api: httpx.AsyncClient, env: dict[str, str], tmp_path: Path, emulator: AnthropicEmulator
) -> None:
    # Given a worker whose auto-approve budget is $0
    workers = PipelineWorkers({**env, "DOCUMENT_AUTO_APPROVE_MAX_USD": "0"}, tmp_path / "logs")
    try:
        workers.start()
        path = next(p for p in EXAMPLES if p.name == "meeting-notes.md")
        document_id = (
            await api.post("/api/documents", files={"file": (path.name, path.read_bytes())})
        ).json()["id"]

        # When the document has been analysed and estimated
        deadline = time.monotonic() + 60
        while (document := (await api.get(f"/api/documents/{document_id}")).json())["status"] != (
            "awaiting_approval"
        ):
            assert document["status"] not in ("completed", "failed"), document
            assert time.monotonic() < deadline, workers.tail()
            workers.assert_alive()
            await asyncio.sleep(0.2)

        # Then nothing was paid for yet, and the estimate says what it will cost
        assert document["estimated_cost_usd"] > 0 and document["cost_usd"] == 0.0
        assert emulator.stats["by_endpoint"].get(MESSAGES, 0) == 0

        # When it is approved through the API, it completes
        approved = await api.post(f"/api/documents/{document_id}/approve")
        assert approved.status_code == 200 and approved.json()["status"] == "queued"
        details = await wait_ended(api, [document_id], workers)
        assert details[document_id]["status"] == "completed"
        assert details[document_id]["cost_usd"] > 0
        events = sse_statuses((await api.get(f"/api/documents/{document_id}/events")).text)
        assert [e["to_status"] for e in events] == [
            "uploaded",
            "analyzing",
            "analyzed",
            "awaiting_approval",
            "queued",
            "processing",
            "completed",
        ]
        assert events[3]["message"].startswith("awaiting approval: estimated $")
        assert events[4]["message"] == "approved"
    finally:
        assert workers.stop() == [0]
