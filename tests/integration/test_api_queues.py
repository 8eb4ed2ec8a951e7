"""The queue API against real queue backends: queues, failed jobs, any job, the workers.

Each test runs the app's lifespan over an SQLite documents database and a real queue
backend (an SQLite file, then Redis under the test's own prefix), fills the backend
through its own interface (dispatch, reserve, fail; heartbeats as masters and workers
write them) and reads it back through ``httpx.ASGITransport``. The answers are compared
with the read models the CLI renders, and with ``docmill queue status --json`` itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from docmill.cli.main import app as cli
from docmill.documents.settings import DocumentSettings
from docmill.queue import Backend, ErrorInfo, Job, JobOptions, JobState
from docmill.queue.heartbeat import WORKER_KIND, RunningJob, WorkerHeartbeat
from docmill.queue.summary import summarize_queues
from docmill.supervisor.heartbeat import MASTER_KIND, MasterHeartbeat, PoolHeartbeat, ProcessHeartbeat
from docmill.web import create_app

TOKEN = "queue-token-" + uuid.uuid4().hex
PASSWORD, SECRET = "pw-" + uuid.uuid4().hex[:8], "tok-" + uuid.uuid4().hex[:8]
CALLBACK = f"https://hooks:{PASSWORD}@receiver.test/in?access_token={SECRET}&batch=7"
SHOWN = "https://hooks:***@receiver.test/in?access_token=***&batch=7"
TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom\n'
# Times that move between two reads of the same state.
MOVING = {"uptime_s", "oldest_pending_age_s", "throughput_last_minute", "throughput_per_minute_avg"}


@pytest.fixture
async def app(tmp_path: Path, queue_url: str) -> AsyncIterator[FastAPI]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=queue_url,
        api_tokens=(TOKEN,),
    )
    application = create_app(settings, development=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 51000))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


@pytest.fixture
def backend(app: FastAPI) -> Backend:
    backend: Backend = app.state.context.backend
    return backend


async def dispatch(backend: Backend, queue: str, name: str = "reports.build", **kwargs: Any) -> Job:
    job = Job.build(name, [1], kwargs, JobOptions(queue=queue, tags=("report:1",)))
    await backend.enqueue([job])
    return job


async def failed_job(
    backend: Backend, queue: str, message: str = "boom", traceback: str = TRACEBACK, **kwargs: Any
) -> str:
    """A job dispatched to ``queue``, reserved and failed with a RuntimeError."""
    job = await dispatch(backend, queue, **kwargs)
    reservation = await backend.reserve(queue, worker_id="api-test", lease_s=30.0)
    (reserved,) = reservation.jobs
    assert reserved.id == job.id
    assert await backend.fail(reserved, ErrorInfo("RuntimeError", message, traceback), count_exception=True)
    return job.id


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def without(data: Any, keys: set[str]) -> Any:
    if isinstance(data, dict):
        return {k: without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [without(item, keys) for item in data]
    return data


# ------------------------------------------------------------------------------- queues


async def test_queues_are_listed_with_the_summary_the_cli_renders(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    # Given one job failed on alpha, two waiting there, and one waiting on a queue with a slash
    await failed_job(backend, "alpha")
    await dispatch(backend, "alpha")
    await dispatch(backend, "alpha")
    await dispatch(backend, "reports/daily")

    # When the queues are listed
    response = await api.get("/api/queues")

    # Then each queue's answer is its QueueSummary in to_dict's form, by name
    assert response.status_code == 200, response.text
    listed = response.json()["queues"]
    expected = [summary.to_dict() for summary in await summarize_queues(backend)]
    assert without(listed, MOVING) == without(expected, MOVING)
    assert [q["queue"] for q in listed] == ["alpha", "reports/daily"]
    alpha = listed[0]
    assert (alpha["pending"], alpha["failed"], alpha["size"], alpha["paused"]) == (2, 1, 2, False)
    assert alpha["oldest_pending_age_s"] is not None
    # ... and one queue alone, a name with a slash included
    one = await api.get("/api/queues/alpha")
    assert without(one.json(), MOVING) == without(alpha, MOVING)
    slashed = await api.get("/api/queues/reports/daily")
    assert slashed.status_code == 200, slashed.text
    assert slashed.json()["queue"] == "reports/daily" and slashed.json()["pending"] == 1


async def test_an_unknown_queue_is_404_and_a_bad_name_is_422(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    await dispatch(backend, "alpha")

    unknown = await api.get("/api/queues/omega")
    assert unknown.status_code == 404
    assert error_of(unknown) == {
        "type": "not_found",
        "message": "There is no queue 'omega'; list the queues with GET /api/queues.",
    }
    for bad, why in (
        ("a,b", "comma"),
        ("x" * 101, "at most 100"),
        (" lead", "space"),
        ("tab%09here", "U+0009"),
    ):
        for method, path in (("GET", f"/api/queues/{bad}"), ("POST", f"/api/queues/{bad}/pause")):
            answer = await api.request(method, path)
            assert answer.status_code == 422, (method, bad, answer.text)
            assert error_of(answer)["type"] == "validation_error"
            assert why in error_of(answer)["message"], error_of(answer)
    assert await backend.queues() == ["alpha"]  # no bad name reached the backend


async def test_a_name_with_a_line_break_matches_no_route_and_the_schema_says_so(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    for action in ("pause", "continue"):
        answer = await api.post(f"/api/queues/a%0Ab/{action}")
        assert answer.status_code == 404, answer.text
        documented = (await api.get("/openapi.json")).json()["paths"]["/api/queues/{queue}/" + action]["post"]
        assert "404" in documented["responses"]
    assert await backend.paused_queues() == set()


async def test_a_queue_is_paused_and_continued(api: httpx.AsyncClient, backend: Backend) -> None:
    await dispatch(backend, "alpha")

    paused = await api.post("/api/queues/alpha/pause")

    assert paused.status_code == 200, paused.text
    assert paused.json() == {"queue": "alpha", "paused": True}
    assert await backend.paused_queues() == {"alpha"}
    assert (await api.get("/api/queues/alpha")).json()["paused"] is True
    reservation = await backend.reserve("alpha", worker_id="api-test", lease_s=30.0)
    assert reservation.jobs == []  # a paused queue hands out nothing

    continued = await api.post("/api/queues/alpha/continue")

    assert continued.json() == {"queue": "alpha", "paused": False}
    assert await backend.paused_queues() == set()
    assert (await api.get("/api/queues/alpha")).json()["paused"] is False
    # A queue without jobs yet can be paused before they arrive, as with the CLI
    assert (await api.post("/api/queues/later/pause")).json() == {"queue": "later", "paused": True}
    assert "later" in await backend.paused_queues()


# ---------------------------------------------------------------------------- failed jobs


async def test_failed_jobs_are_paged_newest_first_and_filtered_by_queue(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    alpha = [await failed_job(backend, "alpha", message=f"boom {n}") for n in range(5)]
    beta = [await failed_job(backend, "beta") for _ in range(2)]
    newest_first = [job.id for job in await backend.failed_page(None, limit=100)]

    first = (await api.get("/api/failed", params={"limit": 3})).json()
    assert (first["total"], first["offset"], first["limit"], first["next_offset"]) == (7, 0, 3, 3)
    assert [item["id"] for item in first["items"]] == newest_first[:3]
    rest = (await api.get("/api/failed", params={"limit": 3, "offset": 6})).json()
    assert [item["id"] for item in rest["items"]] == newest_first[6:]
    assert rest["next_offset"] is None
    beyond = (await api.get("/api/failed", params={"offset": 7})).json()
    assert (beyond["items"], beyond["total"], beyond["next_offset"]) == ([], 7, None)

    only_beta = (await api.get("/api/failed", params={"queue": "beta"})).json()
    assert {item["id"] for item in only_beta["items"]} == set(beta) and only_beta["total"] == 2
    item = next(i for i in first["items"] if i["id"] == alpha[-1])
    failed = await backend.get(alpha[-1])
    assert failed is not None
    assert item == {
        "id": alpha[-1],
        "name": "reports.build",
        "queue": "alpha",
        "attempts": 1,
        "exceptions": 1,
        "tries": None,
        "tags": ["report:1"],
        "created_at": failed.created_at,
        "failed_at": failed.finished_at,
        "error": {"type": "RuntimeError", "message": "boom 4"},  # the traceback is on the job's route
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"offset": "-1"},
        {"offset": str(2**31)},
        {"queue": ""},
        {"queue": "a,b"},
    ],
)
async def test_bad_paging_or_queue_parameters_are_422(api: httpx.AsyncClient, params: dict[str, str]) -> None:
    for method, path in (("GET", "/api/failed"), ("POST", "/api/failed/retry")):
        if method == "POST" and "queue" not in params:
            continue
        response = await api.request(method, path, params=params)
        assert response.status_code == 422, response.text
        assert error_of(response)["type"] == "validation_error"


async def test_a_job_is_shown_in_any_state_with_its_traceback_when_failed(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    waiting = await dispatch(backend, "alpha", report="q3")
    failed = await failed_job(backend, "beta")

    shown = await api.get(f"/api/jobs/{waiting.id}")
    assert shown.status_code == 200, shown.text
    stored = await backend.get(waiting.id)
    assert stored is not None
    assert shown.json() == stored.to_dict()  # the same JSON as `docmill queue job ID --json`
    assert shown.json()["state"] == "pending" and shown.json()["kwargs"] == {"report": "q3"}

    failure = (await api.get(f"/api/jobs/{failed}")).json()
    assert failure["state"] == "failed"
    assert failure["error"] == {"type": "RuntimeError", "message": "boom", "traceback": TRACEBACK}

    unknown = await api.get("/api/jobs/0123456789abcdef")
    assert unknown.status_code == 404 and error_of(unknown)["type"] == "not_found"
    for bad in ("a.b", "x" * 65, "a%20b"):
        assert (await api.get(f"/api/jobs/{bad}")).status_code == 422, bad


async def test_a_failed_job_is_retried_or_forgotten_once(api: httpx.AsyncClient, backend: Backend) -> None:
    retried, forgotten, kept = [await failed_job(backend, "alpha") for _ in range(3)]

    response = await api.post(f"/api/failed/{retried}/retry")
    assert response.status_code == 200, response.text
    assert response.json() == {"retried": 1, "queue": "alpha"}
    job = await backend.get(retried)
    assert job is not None and job.state == JobState.PENDING and job.attempts == 0
    again = await api.post(f"/api/failed/{retried}/retry")
    assert again.status_code == 404
    assert error_of(again)["message"] == (
        f"There is no failed job {retried} (it is pending); list them with GET /api/failed."
    )

    gone = await api.delete(f"/api/failed/{forgotten}")
    assert gone.status_code == 204 and gone.content == b""
    assert await backend.get(forgotten) is None
    assert (await api.delete(f"/api/failed/{forgotten}")).status_code == 404
    pending = await api.delete(f"/api/failed/{retried}")  # retried above: pending, not failed
    assert pending.status_code == 404 and "(it is pending)" in error_of(pending)["message"]
    assert [job.id for job in await backend.failed_page()] == [kept]


async def test_retry_all_puts_back_a_queue_or_every_queue(api: httpx.AsyncClient, backend: Backend) -> None:
    for _ in range(3):
        await failed_job(backend, "alpha")
    for _ in range(2):
        await failed_job(backend, "beta")

    beta = await api.post("/api/failed/retry", params={"queue": "beta"})
    assert beta.status_code == 200, beta.text
    assert beta.json() == {"retried": 2, "queue": "beta"}
    assert (await backend.stats("beta")).pending == 2
    assert await backend.failed_count("alpha") == 3

    every = await api.post("/api/failed/retry")
    assert every.json() == {"retried": 3, "queue": None}
    assert await backend.failed_count() == 0
    assert (await api.post("/api/failed/retry")).json() == {"retried": 0, "queue": None}


async def test_secrets_in_a_failed_jobs_payload_and_error_are_masked(
    api: httpx.AsyncClient, backend: Backend
) -> None:
    job_id = await failed_job(
        backend,
        "hooks",
        message=f"The callback URL {CALLBACK} answered 503.",
        traceback=f"Traceback ...\nhttpx.HTTPStatusError: 503 for url '{CALLBACK}'\n",
        callback_url=CALLBACK,
        api_key=SECRET,
        nested={"urls": [CALLBACK]},
    )

    listed = await api.get("/api/failed")
    shown = await api.get(f"/api/jobs/{job_id}")

    for text in (listed.text, shown.text):
        assert PASSWORD not in text and SECRET not in text
    assert listed.json()["items"][0]["error"]["message"] == f"The callback URL {SHOWN} answered 503."
    job = shown.json()
    assert job["kwargs"] == {"callback_url": SHOWN, "api_key": "***", "nested": {"urls": [SHOWN]}}
    assert SHOWN in job["error"]["message"] and f"'{SHOWN}'" in job["error"]["traceback"]


# -------------------------------------------------------------------------------- workers


async def test_workers_answer_what_queue_status_json_prints(
    api: httpx.AsyncClient, backend: Backend, queue_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a master with a pool of two slots, one worker in it busy, one worker without a master
    now = time.time()
    await dispatch(backend, "alpha")
    slots = (
        ProcessHeartbeat(name="docs.1", state="running", pid=4101, started=now - 30, restarts=1),
        ProcessHeartbeat(name="docs.2", state="starting", pid=None),
    )
    pool = PoolHeartbeat(name="docs", state="running", queues=("alpha",), target=2, processes=slots)
    master = MasterHeartbeat(
        member="h1:4100", host="h1", pid=4100, state="running", started=now - 60, pools=(pool,)
    )
    await backend.put_heartbeat(MASTER_KIND, master.member, master.to_dict(), 60)
    busy = WorkerHeartbeat(
        worker_id="h1:4101",
        host="h1",
        pid=4101,
        queues=("alpha",),
        state="busy",
        jobs_done=7,
        jobs=(RunningJob(id="0123456789abcdef", name="reports.build"),),
        memory_mb=81.5,
        started_at=now - 30,
    )
    alone = WorkerHeartbeat(worker_id="h2:77", host="h2", pid=77, queues=("beta",), started_at=now - 5)
    for worker in (busy, alone):
        await backend.put_heartbeat(WORKER_KIND, worker.worker_id, worker.to_dict(), 60)

    # When the API is asked, and the CLI
    response = await api.get("/api/workers")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLAUDE_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    argv = ["queue", "status", "--json", "--connection", queue_url]
    result = await asyncio.to_thread(CliRunner().invoke, cli, argv)

    # Then both say the same, but for the seconds that passed between them
    assert response.status_code == 200, response.text
    assert result.exit_code == 0, result.output
    cluster = response.json()
    assert without(cluster, MOVING) == without(json.loads(result.output), MOVING)
    assert cluster["state"] == "running" and cluster["llm_calls_stopped"] is None
    assert [(m["host"], m["pid"], m["pools"][0]["processes"]) for m in cluster["masters"]] == [
        ("h1", 4100, 2)
    ]
    rows = {(w["host"], w["process"]): w for w in cluster["workers"]}
    assert set(rows) == {("h1", "docs.1"), ("h1", "docs.2"), ("h2", None)}
    assert rows["h1", "docs.1"]["activity"] == "busy" and rows["h1", "docs.1"]["jobs_done"] == 7
    assert rows["h1", "docs.1"]["current_jobs"] == [{"id": "0123456789abcdef", "name": "reports.build"}]
    assert rows["h2", None]["state"] == "unsupervised"
    assert [q["queue"] for q in cluster["queues"]] == ["alpha"]


async def test_the_workers_state_is_inactive_without_a_master(api: httpx.AsyncClient) -> None:
    cluster = (await api.get("/api/workers")).json()
    assert (cluster["state"], cluster["masters"], cluster["workers"]) == ("inactive", [], [])


# ----------------------------------------------------------------------------------- auth


async def test_every_queue_route_needs_the_token(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 51000))
    routes = [
        ("GET", "/api/queues"),
        ("GET", "/api/queues/alpha"),
        ("POST", "/api/queues/alpha/pause"),
        ("POST", "/api/queues/alpha/continue"),
        ("GET", "/api/failed"),
        ("POST", "/api/failed/retry"),
        ("POST", "/api/failed/abc/retry"),
        ("DELETE", "/api/failed/abc"),
        ("GET", "/api/jobs/abc"),
        ("GET", "/api/workers"),
    ]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as anonymous:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = await anonymous.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, response.text)
                assert error_of(response)["type"] == "unauthorized"
    assert await app.state.context.backend.paused_queues() == set()
