"""Upload to result through the API, with a real worker running the pipeline's handlers.

The app's lifespan opens the documents database and an SQLite queue under ``tmp_path``;
an in-process ``Worker`` serves the analysis, processing and webhook queues with
``docmill.documents.jobs:registry``, sharing the app's ``DocumentContext`` (through
``WorkerContext.state``) so both sides see the same database, files and settings. The LLM is
the offline extractive provider: no key, no network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.context import DocumentContext
from docmill.documents.jobs import DOCUMENTS, registry
from docmill.documents.settings import DocumentSettings
from docmill.llm.settings import LLMSettings
from docmill.queue import WorkerOptions, backend_from_url
from docmill.queue.worker import Worker
from docmill.web import create_app

TOKEN = "end-to-end-token"
REPORT = """\
# Quarterly report

## Revenue

Revenue grew by twelve percent over the quarter, driven by the new subscription plans
and a strong season in the northern markets. Costs stayed flat.

## Outlook

The company expects steady growth next quarter and plans to hire ten engineers.
"""


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        api_tokens=(TOKEN,),
        llm=LLMSettings.from_env({"DOCMILL_LLM_PROVIDER": "extractive"}),
    )
    application = create_app(settings, development=False)
    application.state.sse_poll_s = 0.05
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def worker(app: FastAPI) -> AsyncIterator[Worker]:
    # The worker gets a queue connection of its own, as a worker process would (it closes
    # it when it stops); its handlers share the app's context.
    context: DocumentContext = app.state.context
    settings = context.settings
    backend = backend_from_url(settings.queue_url)
    await backend.connect()
    running = Worker(
        backend,
        registry,
        WorkerOptions(
            queues=(settings.analysis_queue, settings.processing_queue, settings.webhook_queue),
            concurrency=2,
            sleep_s=0.05,
            timeout_s=120,
            stop_grace_s=5,
            memory_mb=0,  # the test process's memory is not the worker's to watch
        ),
        worker_id="api-end-to-end",
        heartbeat_s=0.5,
        restart_poll_s=0.5,
    )
    running.context.state[DOCUMENTS] = context  # the handlers share the app's context
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.request_stop()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


def sse_events(body: str) -> list[dict[str, Any]]:
    events = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if line and not line.startswith(":") and ": " in line
        )
        if "data" in fields:
            events.append({"event": fields.get("event"), "data": json.loads(fields["data"])})
    return events


async def test_an_upload_completes_through_a_real_worker(api: httpx.AsyncClient, worker: Worker) -> None:
    # Given a Markdown report uploaded through the API
    uploaded = await api.post(
        "/api/documents",
        files={"file": ("report.md", REPORT.encode(), "text/markdown")},
        data={"profile": "summary"},
    )
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]

    # When its event stream is followed while the worker runs the pipeline
    stream = await asyncio.wait_for(api.get(f"/api/documents/{document_id}/events"), 120)

    # Then it went through every stage and completed
    statuses = [e["data"]["to_status"] for e in sse_events(stream.text) if e["event"] == "status"]
    assert statuses == ["uploaded", "analyzing", "analyzed", "queued", "processing", "completed"], stream.text
    document = (await api.get(f"/api/documents/{document_id}")).json()
    assert document["status"] == "completed"
    assert document["analysis"]["kind"] == "markdown"
    assert document["analysis"]["chunks"] >= 1
    assert document["estimate"]["offline"] is True
    assert document["progress"]["fraction"] == 1.0
    assert document["cost_usd"] == 0.0

    # And its result is there as JSON and as Markdown
    result = await api.get(f"/api/documents/{document_id}/result")
    markdown = await api.get(f"/api/documents/{document_id}/result", params={"format": "markdown"})
    assert result.status_code == 200
    assert result.json()["document_id"] == document_id
    assert result.json()["result"]["summary"]
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert "## Key points" in markdown.text
    assert "Costs stayed flat." in markdown.text
