"""/metrics over real stores: what it says of queues, workers, documents and the LLM, and
that Prometheus's own checker (``promtool check metrics``) accepts it.

The queue runs on SQLite, then on Redis; the documents database is SQLite. Jobs go
through the backend as a worker would take them (reserve, complete, fail), heartbeats
and learned rate limits are written as workers write them, and saved LLM calls are rows
of the documents database.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from conftest import require_program
from docmill.documents.context import DocumentContext
from docmill.documents.models import ChunkResult, utcnow
from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.llm.limits import TIER_1_LIMITS, LearnedLimits, key_fingerprint
from docmill.llm.settings import LLMSettings
from docmill.queue import Completion, ErrorInfo, JobOptions
from docmill.web import create_app
from docmill.web.job_totals import JobTotals

TOKEN = "metrics-token-" + uuid.uuid4().hex
API_KEY = "sk-ant-metrics-0123456789"
MODEL = "claude-sonnet-4-5-20250929"
QUEUE = "metrics-q"


@pytest.fixture
async def app(queue_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=queue_url,
        api_tokens=(TOKEN,),
        llm=LLMSettings(anthropic_api_key=API_KEY, default_model=MODEL),
    )
    application = create_app(settings, development=False)
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app, client=("10.0.0.9", 51000))
    return httpx.AsyncClient(transport=transport, base_url="http://docmill.internal", headers=headers)


async def fill(context: DocumentContext) -> None:
    """Three jobs (two completed in 2 s after 0.5 s of wait, one failed), a busy and an idle
    worker with their master, learned limits for the model, and two saved LLM calls."""
    backend = context.backend
    for n in range(3):
        await context.client.dispatch("metrics.job", n, options=JobOptions(queue=QUEUE))
    jobs = (await backend.reserve(QUEUE, worker_id="w1", lease_s=30, limit=3)).jobs
    assert len(jobs) == 3
    await backend.complete([Completion(job, runtime_s=2.0, wait_s=0.5) for job in jobs[:2]])
    assert await backend.fail(jobs[2], ErrorInfo("ValueError", "bad input"))

    for worker_id, state in (("w1", "busy"), ("w2", "idle")):
        beat = {"worker_id": worker_id, "host": "host-a", "pid": 1, "state": state}
        await backend.put_heartbeat("worker", worker_id, beat, ttl_s=60)
    await backend.put_heartbeat("master", "m1", {"master_id": "m1", "host": "host-a", "pid": 1}, ttl_s=60)

    learned = LearnedLimits(backend, key_fingerprint(API_KEY))
    headers = {
        "anthropic-ratelimit-requests-limit": "1000",
        "anthropic-ratelimit-input-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-limit": "16000",
    }
    assert learned.observe(MODEL, headers, TIER_1_LIMITS) is not None
    await learned.share(MODEL)

    document = await context.service.upload(b"Quarterly report.\n", "report.txt", {})

    def save_calls(session: Session) -> None:
        for index, (input_tokens, output_tokens, cost) in enumerate(
            ((1200, 300, 0.0081), (800, 200, 0.0054))
        ):
            session.add(
                ChunkResult(
                    document_id=document.id, phase="map", index=index, text="...", model=MODEL,
                    provider="anthropic", input_tokens=input_tokens, output_tokens=output_tokens,
                    cost_usd=cost, created_at=utcnow(),
                )
            )  # fmt: skip

    await context.db.run(save_calls)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_tell_queues_jobs_workers_documents_and_llm_use(app: FastAPI) -> None:
    # Given a cluster with finished jobs, workers, documents and learned limits, and a
    # process whose clock has passed the minute the jobs finished in
    context: DocumentContext = app.state.context
    await fill(context)
    app.state.job_totals = JobTotals(clock=lambda: time.time() + 120)

    async with client_for(app) as api:
        response = await api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    # queues
    assert value(found, "docmill_queue_jobs", queue=QUEUE, state="failed") == 1
    assert value(found, "docmill_queue_jobs", queue=QUEUE, state="pending") == 0
    assert value(found, "docmill_queue_paused", queue=QUEUE) == 0
    assert value(found, "docmill_jobs_total", queue=QUEUE, outcome="completed") == 2
    assert value(found, "docmill_jobs_total", queue=QUEUE, outcome="failed") == 1
    assert value(found, "docmill_job_runtime_seconds_bucket", queue=QUEUE, le="1.0") == 0
    assert value(found, "docmill_job_runtime_seconds_bucket", queue=QUEUE, le="2.5") == 2
    assert value(found, "docmill_job_runtime_seconds_sum", queue=QUEUE) == 4.0
    assert value(found, "docmill_job_wait_seconds_count", queue=QUEUE) == 2
    # workers
    assert value(found, "docmill_workers", host="host-a", state="busy") == 1
    assert value(found, "docmill_workers", host="host-a", state="idle") == 1
    assert value(found, "docmill_masters", host="host-a") == 1
    # documents and LLM use
    assert value(found, "docmill_documents", status="uploaded") == 1
    assert value(found, "docmill_documents", status="completed") == 0
    assert value(found, "docmill_llm_calls", model=MODEL) == 2
    assert value(found, "docmill_llm_tokens", model=MODEL, direction="input") == 2000
    assert value(found, "docmill_llm_tokens", model=MODEL, direction="output") == 500
    assert value(found, "docmill_llm_cost_usd", model=MODEL) == pytest.approx(0.0135)
    assert value(found, "docmill_llm_rate_limit_per_minute", model=MODEL, resource="input_tokens") == 80000
    assert value(found, "docmill_llm_rate_used_per_minute", model=MODEL, resource="requests") == 2
    assert (
        value(found, "docmill_llm_rate_headroom_per_minute", model=MODEL, resource="output_tokens") == 15500
    )
    assert {value(found, "docmill_scrape_ok", part=p) for p in ("queues", "workers", "documents", "llm")} == {
        1
    }
    assert API_KEY not in response.text


async def test_counters_hold_their_value_across_scrapes(app: FastAPI) -> None:
    context: DocumentContext = app.state.context
    await fill(context)
    async with client_for(app) as api:
        first = samples((await api.get("/metrics")).text)
        second = samples((await api.get("/metrics")).text)

    key = ("docmill_jobs_total", (("outcome", "completed"), ("queue", QUEUE)))
    assert first[key] == second[key] == 2


async def test_metrics_need_the_api_token(app: FastAPI) -> None:
    async with client_for(app, token=None) as anonymous:
        response = await anonymous.get("/metrics")

    assert response.status_code == 401
    assert "docmill_" not in response.text


async def test_a_part_that_cannot_be_read_is_reported_and_the_rest_still_answers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a documents database that fails (the queue still answers)
    async def broken(self: DocumentService) -> None:
        raise ConnectionRefusedError("connection refused by 10.0.0.7")

    monkeypatch.setattr(DocumentService, "summary", broken)
    async with client_for(app) as api:
        response = await api.get("/metrics")

    found = samples(response.text)
    assert response.status_code == 200
    assert value(found, "docmill_scrape_ok", part="documents") == 0
    assert value(found, "docmill_scrape_ok", part="queues") == 1
    assert "10.0.0.7" not in response.text


def promtool() -> str:
    return require_program("promtool", "Debian's prometheus package; .ci/run provides it")


async def test_promtool_accepts_the_exposition(app: FastAPI) -> None:
    checker = promtool()
    await fill(app.state.context)
    app.state.job_totals = JobTotals(clock=lambda: time.time() + 120)
    async with client_for(app) as api:
        exposition = (await api.get("/metrics")).text
    assert "docmill_job_runtime_seconds_bucket" in exposition

    result = subprocess.run(
        [checker, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # no lint complaint either
