"""The dashboard's pages and actions in process, on SQLite and on Redis.

The app is ``create_app`` with a real queue backend and documents database under
``tmp_path``; requests go through httpx's ASGI transport, from loopback unless a test says
otherwise. Failed jobs are made the way a worker makes them: reserved, then failed.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.settings import DocumentSettings
from docmill.llm.refusals import RefusalCounter
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, ErrorInfo, Job, JobOptions
from docmill.queue.heartbeat import RunningJob, WorkerHeartbeat
from docmill.supervisor.heartbeat import MasterHeartbeat, PoolHeartbeat, ProcessHeartbeat
from docmill.web import create_app
from docmill.web.dashboard.config import DashboardConfig, parse_users
from docmill.web.dashboard.passwords import hash_password

TOKEN = "dashboard-test-token"
PASSWORDS = {"alice": "alice's password", "bob": "bob's password"}
USERS = parse_users(
    f"alice:operator:{hash_password(PASSWORDS['alice'])},bob:viewer:{hash_password(PASSWORDS['bob'])}"
)
PAGES = ("/", "/failed", "/jobs", "/documents", "/approvals", "/workers", "/money", "/charts")


def settings_for(tmp_path: Path, queue_url: str) -> DocumentSettings:
    return DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=queue_url,
        api_tokens=(TOKEN,),
        llm=LLMSettings.from_env({"DOCMILL_LLM_PROVIDER": "extractive"}),
    )


@pytest.fixture
async def app(tmp_path: Path, queue_url: str) -> AsyncIterator[FastAPI]:
    config = DashboardConfig(users=USERS, secret=b"s" * 32)
    application = create_app(settings_for(tmp_path, queue_url), development=False, dashboard=config)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def open_app(tmp_path: Path, queue_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings_for(tmp_path, queue_url), development=False, dashboard=DashboardConfig()
    )
    async with application.router.lifespan_context(application):
        yield application


def client_of(app: FastAPI, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


@contextlib.asynccontextmanager
async def signed_in(app: FastAPI, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as client:
        answer = await client.post(
            "/signin", data={"username": user, "password": PASSWORDS[user], "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def make_failed(backend: Backend, queue: str, messages: list[tuple[str, str]]) -> list[str]:
    """Failed jobs as a worker leaves them, oldest first; (error type, message) each."""
    ids = []
    for error_type, message in messages:
        job = Job.build("app.task", [len(ids)], default_queue=queue)
        await backend.enqueue([job])
        (reserved,) = (await backend.reserve(queue, worker_id="test", lease_s=60)).jobs
        assert await backend.fail(
            reserved, ErrorInfo(error_type, message, "Traceback (most recent call last)")
        )
        ids.append(job.id)
    return ids


def backend_of(app: FastAPI) -> Backend:
    backend: Backend = app.state.context.backend
    return backend


# ------------------------------------------------------------------------------ pages
async def test_every_page_renders_with_documents_and_failures(app: FastAPI) -> None:
    backend = backend_of(app)
    await make_failed(backend, "mail", [("ValueError", "record 1 is locked")])
    service = app.state.service
    await service.upload(io.BytesIO(b"# Title\n\nSome text to analyse."), "notes.md")
    async with signed_in(app, "bob") as client:
        for path in (*PAGES, "/documents/1", "/jobs?q=document:1"):
            answer = await client.get(path)
            assert answer.status_code == 200, (path, answer.text[:500])
            assert answer.headers["content-security-policy"].startswith("default-src 'self'")
            assert answer.headers["cache-control"] == "no-store"
        overview = (await client.get("/")).text
        assert '<tr data-queue="mail">' in overview
        found = (await client.get("/jobs?q=document:1")).text
        assert "docmill.documents.jobs.analyze" in found or "analyze" in found
        live = (await client.get("/documents", headers={"X-Live": "1"})).text
        assert live.lstrip().startswith('<div class="scroll">') and "<html" not in live


def waiting_ids(html: str) -> list[str]:
    """The job ids of the Jobs page's waiting table, top to bottom."""
    start = html.index('<table class="jobs waiting"')
    return re.findall(r'<tr data-job="([^"]+)"', html[start : html.index("</table>", start)])


async def test_the_jobs_page_lists_a_queues_waiting_jobs_a_page_at_a_time(app: FastAPI) -> None:
    backend = backend_of(app)
    base = time.time() - 1000
    due = [Job.build("app.task", [i], default_queue="bulk").copy(available_at=base + i) for i in range(120)]
    later = Job.build("app.later", options=JobOptions(queue="bulk", delay_s=3600))
    other = Job.build("app.other", default_queue="another")
    await backend.enqueue([*reversed(due), later, other])
    in_order = [job.id for job in due] + [later.id]
    async with signed_in(app, "bob") as client:
        first_queue = (await client.get("/jobs")).text
        pages = [(await client.get(f"/jobs?queue=bulk&page={n}")).text for n in (1, 2, 3)]
        past_the_end = (await client.get("/jobs?queue=bulk&page=99")).text
        unknown = await client.get("/jobs?queue=no-such-queue")

    assert waiting_ids(first_queue) == [other.id]  # the first queue with waiting jobs
    assert [waiting_ids(page) for page in pages] == [in_order[0:50], in_order[50:100], in_order[100:]]
    assert "page 1 of 3" in pages[0] and 'href="/jobs?queue=bulk&amp;page=2" rel="next"' in pages[0]
    assert "state-delayed" in pages[2] and "state-delayed" not in pages[0]
    assert waiting_ids(past_the_end) == in_order[100:]
    assert unknown.status_code == 200 and waiting_ids(unknown.text) == [other.id]


async def test_the_failed_page_pages_the_store_and_groups_the_newest_by_reason(app: FastAPI) -> None:
    backend = backend_of(app)
    messages = [("ValueError", f"record {n} is locked") for n in range(110)] + [("KeyError", "'x-1'")] * 5
    ids = await make_failed(backend, "bulk", messages)
    async with signed_in(app, "bob") as client:
        first = (await client.get("/failed?queue=bulk")).text
        assert '<strong class="failed-total">115</strong>' in first
        assert first.count('<li class="card" data-job=') == 50
        assert f'data-job="{ids[-1]}"' in first  # newest first
        assert '<td class="n">110</td><td><code>ValueError: record N is locked</code>' in first
        last = (await client.get("/failed?queue=bulk&page=3")).text
        assert last.count('<li class="card" data-job=') == 15 and f'data-job="{ids[0]}"' in last
        filtered = (await client.get("/failed?queue=bulk&q=KeyError")).text
        assert filtered.count('<li class="card" data-job=') == 5


async def test_an_operator_retries_a_group_then_all_matching_then_forgets_one(app: FastAPI) -> None:
    backend = backend_of(app)
    ids = await make_failed(
        backend,
        "bulk",
        [("ValueError", f"record {n} is locked") for n in range(7)] + [("KeyError", "'a'")] * 3,
    )
    async with signed_in(app, "alice") as client:
        token = csrf_of((await client.get("/failed")).text)
        group = await client.post(
            "/actions/failed/retry-group",
            data={"csrf_token": token, "reason": "ValueError: record N is locked", "return_to": "/failed"},
        )
        assert group.status_code == 303 and group.headers["location"] == "/failed"
        assert await backend.failed_count("bulk") == 3
        notice = (await client.get("/failed")).text
        assert "Retried 7 jobs failed with ValueError: record N is locked." in notice
        forget = await client.post("/actions/failed/forget", data={"csrf_token": token, "job_id": ids[-1]})
        assert forget.status_code == 303 and await backend.failed_count("bulk") == 2
        matching = await client.post(
            "/actions/failed/retry-matching", data={"csrf_token": token, "queue": "bulk", "q": "keyerror"}
        )
        assert matching.status_code == 303 and await backend.failed_count() == 0
        stats = await backend.stats("bulk")
        assert stats.pending == 9


async def test_queue_and_worker_controls_act_on_the_backend(app: FastAPI) -> None:
    backend = backend_of(app)
    await make_failed(backend, "mail", [("ValueError", "x")])
    async with signed_in(app, "alice") as client:
        token = csrf_of((await client.get("/workers")).text)
        assert (
            await client.post("/actions/queues/pause", data={"csrf_token": token, "queue": "mail"})
        ).status_code == 303
        assert await backend.paused_queues() == {"mail"}
        await client.post("/actions/queues/continue", data={"csrf_token": token, "queue": "mail"})
        assert await backend.paused_queues() == set()
        await client.post("/actions/workers/stop", data={"csrf_token": token})
        assert await backend.get_flag("workers-stopped") is not None
        assert "Start workers" in (await client.get("/workers")).text
        await client.post("/actions/workers/start", data={"csrf_token": token})
        assert await backend.get_flag("workers-stopped") is None
        await client.post("/actions/workers/restart", data={"csrf_token": token})
        assert await backend.restart_requested_at() is not None


async def test_an_open_circuit_shows_on_money_and_an_operator_resumes_llm_calls(app: FastAPI) -> None:
    backend = backend_of(app)
    await backend.set_flag(
        "llm:circuit:-", {"kind": "spend_limit", "reason": "The spend limit was reached.", "since": 1.0}
    )
    async with signed_in(app, "alice") as client:
        money = (await client.get("/money")).text
        assert "LLM calls are stopped" in money and "The spend limit was reached." in money
        assert "LLM calls are stopped" in (await client.get("/")).text
        answer = await client.post("/actions/llm/continue", data={"csrf_token": csrf_of(money)})
        assert answer.status_code == 303
        assert await backend.get_flag("llm:circuit:-") is None
        assert "the spend-cap circuit is closed" in (await client.get("/money")).text


async def test_money_and_metrics_show_every_workers_429s_and_529s_per_model(app: FastAPI) -> None:
    backend = backend_of(app)
    # Two workers' counters, as the Claude provider records the API's answers.
    for counter in (RefusalCounter(backend), RefusalCounter(backend)):
        await counter.record("claude-haiku-4-5-20251001", 429)
        await counter.record("claude-sonnet-4-5-20250929", 529)
    await RefusalCounter(backend).record("claude-haiku-4-5-20251001", 429)
    async with signed_in(app, "bob") as client:
        money = (await client.get("/money")).text
        metrics = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text

    rows = dict(re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', money))
    cells = {model: re.findall(r'<td class="n">([^<]*)</td>', row) for model, row in rows.items()}
    assert cells == {
        "claude-haiku-4-5-20251001": ["3", "0", "3", "0"],
        "claude-sonnet-4-5-20250929": ["0", "2", "0", "2"],
    }
    assert (
        'docmill_llm_api_refusals{model="claude-haiku-4-5-20251001",status="429",window="24h"} 3.0' in metrics
    )
    assert (
        'docmill_llm_api_refusals{model="claude-sonnet-4-5-20250929",status="529",window="1h"} 2.0' in metrics
    )


async def test_money_says_when_the_api_refused_nothing(app: FastAPI) -> None:
    async with signed_in(app, "bob") as client:
        money = (await client.get("/money")).text
    assert "No 429 or 529 in the last 24 hours." in money and "<tr data-model=" not in money


# ------------------------------------------------------------------------------ security
async def test_without_a_session_pages_redirect_and_everything_else_is_401(app: FastAPI) -> None:
    async with client_of(app) as client:
        for path in PAGES:
            answer = await client.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=")
            assert answer.content == b""
        assert (await client.get("/live")).status_code == 401
        assert (await client.get("/", headers={"X-Live": "1"})).status_code == 401
        assert (await client.post("/actions/workers/restart", data={})).status_code == 401
        assert await backend_of(app).restart_requested_at() is None


async def test_a_viewer_sees_no_action_and_is_refused_one_even_with_its_token(app: FastAPI) -> None:
    async with signed_in(app, "bob") as client:
        page = (await client.get("/workers")).text
        assert 'action="/actions/' not in page
        token = csrf_of(page)  # the sign-out form carries it
        refused = await client.post("/actions/workers/stop", data={"csrf_token": token})
        assert refused.status_code == 403
        assert "bob may look but not act (role viewer)." in refused.text
        assert await backend_of(app).get_flag("workers-stopped") is None


async def test_an_action_without_the_sessions_csrf_token_is_refused(app: FastAPI) -> None:
    async with signed_in(app, "alice") as client:
        for data in ({}, {"csrf_token": "guessed"}):
            refused = await client.post("/actions/workers/stop", data=data)
            assert refused.status_code == 403
            assert "did not come from the dashboard" in refused.text
        assert (await client.get("/actions/workers/stop")).status_code == 405  # never a GET
        assert await backend_of(app).get_flag("workers-stopped") is None


async def test_sign_in_is_rate_limited_and_says_so_in_one_sentence(app: FastAPI) -> None:
    async with client_of(app) as client:
        for _ in range(5):
            wrong = await client.post("/signin", data={"username": "alice", "password": "nope"})
            assert wrong.status_code == 401 and "The user name or the password is wrong." in wrong.text
            assert "docmill_dashboard" not in wrong.cookies
        limited = await client.post("/signin", data={"username": "alice", "password": PASSWORDS["alice"]})
        assert limited.status_code == 429
        assert "Too many failed sign-ins; try again in 5 min." in limited.text


async def test_a_sign_in_posted_by_another_site_is_refused(app: FastAPI) -> None:
    async with client_of(app) as client:
        answer = await client.post(
            "/signin",
            data={"username": "alice", "password": PASSWORDS["alice"]},
            headers={"Origin": "https://evil.example"},
        )
        assert answer.status_code == 403 and "docmill_dashboard" not in answer.cookies


async def test_the_session_cookie_is_httponly_strict_and_never_opens_the_api(app: FastAPI) -> None:
    async with client_of(app) as client:
        answer = await client.post("/signin", data={"username": "alice", "password": PASSWORDS["alice"]})
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert (await client.get("/api/documents")).status_code == 401
        bearer = await client.get("/api/documents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200


async def test_the_next_page_after_sign_in_stays_on_this_site(app: FastAPI) -> None:
    async with client_of(app) as client:
        for target, expected in (
            ("/failed?queue=a", "/failed?queue=a"),
            ("//evil.example/", "/"),
            ("https://x/", "/"),
        ):
            answer = await client.post(
                "/signin", data={"username": "alice", "password": PASSWORDS["alice"], "next": target}
            )
            assert answer.headers["location"] == expected


async def test_with_no_users_only_this_host_is_served_and_the_page_says_so(open_app: FastAPI) -> None:
    async with client_of(open_app, host="10.1.2.3") as remote:
        refused = await remote.get("/")
        assert refused.status_code == 403
        assert "No dashboard users are configured, so the dashboard answers only on this host" in refused.text
    async with client_of(open_app) as local:
        page = await local.get("/")
        assert page.status_code == 200 and "answers only on this host (loopback)" in page.text
        rebinding = await local.get("/", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 403
        token = csrf_of((await local.get("/workers")).text)
        stop = await local.post("/actions/workers/stop", data={"csrf_token": token})
        assert stop.status_code == 303 and await backend_of(open_app).get_flag("workers-stopped") is not None
        assert (await local.post("/actions/workers/start", data={})).status_code == 403


async def test_a_bad_page_number_or_id_is_one_sentence_not_a_traceback(app: FastAPI) -> None:
    async with signed_in(app, "bob") as client:
        missing = await client.get("/documents/999")
        assert missing.status_code == 404 and "There is no document 999." in missing.text
        assert (await client.get("/jobs/not-a-job")).status_code == 404
        bad: Any = await client.get("/failed?page=0")
        assert bad.status_code == 422 and "Traceback" not in bad.text


async def test_document_actions_upload_cancel_retry_and_reject(app: FastAPI) -> None:
    service = app.state.service
    async with signed_in(app, "alice") as client:
        token = csrf_of((await client.get("/documents")).text)
        files = {"file": ("plan.md", b"# Plan\n\nShip it.", "text/markdown")}
        refused = await client.post("/actions/documents/upload", files=files, data={"csrf_token": "forged"})
        assert refused.status_code == 403
        assert (await service.list()).total == 0
        uploaded = await client.post("/actions/documents/upload", files=files, data={"csrf_token": token})
        assert uploaded.status_code == 303 and uploaded.headers["location"] == "/documents/1"
        assert (await service.get(1)).status == "uploaded"
        await client.post("/actions/documents/1/cancel", data={"csrf_token": token})
        assert (await service.get(1)).status == "cancelled"
        await client.post("/actions/documents/1/retry", data={"csrf_token": token})
        assert (await service.get(1)).status == "uploaded"
        await client.post("/actions/documents/1/reject", data={"csrf_token": token})
        document = await service.get(1)
        assert document.status == "cancelled" and document.error_reason is None
        again = await client.post("/actions/documents/1/cancel", data={"csrf_token": token})
        assert again.status_code == 303
        page = (await client.get("/documents/1")).text
        assert "rejected in the dashboard by alice" in page
        unknown = await client.post("/actions/documents/1/explode", data={"csrf_token": token})
        assert unknown.status_code == 303
        assert "There is no action" in (await client.get("/documents/1")).text


async def test_the_workers_page_joins_each_masters_processes_with_their_workers(app: FastAPI) -> None:
    backend = backend_of(app)
    now = time.time()
    process = ProcessHeartbeat(name="mail-1", state="running", pid=4242, started=now - 90, restarts=2)
    idle = ProcessHeartbeat(name="mail-2", state="backoff", pid=None)
    pool = PoolHeartbeat(name="mail", state="running", queues=("mail",), target=2, processes=(process, idle))
    master = MasterHeartbeat(
        member="h1:100", host="h1", pid=100, state="running", started=now - 600, pools=(pool,)
    )
    await backend.put_heartbeat("master", master.member, master.to_dict(), ttl_s=60)
    worker = WorkerHeartbeat(
        worker_id="w1", host="h1", pid=4242, queues=("mail",), state="busy",
        jobs=(RunningJob("job-1", "app.send"),), jobs_done=17, memory_mb=48.5, started_at=now - 90,
    )  # fmt: skip
    loner = WorkerHeartbeat(worker_id="w2", host="h2", pid=7, queues=("default",), jobs_done=3)
    for beat in (worker, loner):
        await backend.put_heartbeat("worker", beat.worker_id, beat.to_dict(), ttl_s=60)
    async with signed_in(app, "bob") as client:
        page = (await client.get("/workers")).text
        overview = (await client.get("/")).text
    assert '<h2>h1 · master 100 <span class="state state-running">running</span>' in page
    row = page[page.index("<td>mail-1</td>") : page.index("</tr>", page.index("<td>mail-1</td>"))]
    for shown in ("state-busy", ">4242<", ">17<", "48.5 MB", "app.send"):
        assert shown in row
    slot = '<td>mail-2</td><td><span class="state state-backoff">backoff</span></td><td class="n">\u2013</td>'
    assert slot in page
    assert "<h2>Workers without a master</h2>" in page and "<td>h2</td>" in page
    assert '<span class="value">2</span>' in overview  # processes: both workers


async def test_the_live_stream_sends_the_fingerprint_again_when_something_changes(app: FastAPI) -> None:
    app.state.dashboard_poll_s, app.state.dashboard_stream_s = 0.05, 0.5
    app.state.dashboard.live.max_age_s = 0.0
    async with signed_in(app, "bob") as client:
        page = (await client.get("/")).text
        shown = page.split('data-digest="', 1)[1].split('"', 1)[0]
        quiet = (await client.get("/live")).text
        assert quiet.startswith("retry: 1000\n\n")
        assert [line for line in quiet.splitlines() if line.startswith("data: ")] == [f"data: {shown}"]
        await make_failed(backend_of(app), "mail", [("ValueError", "x")])
        changed = (await client.get("/live")).text
        (data,) = [line for line in changed.splitlines() if line.startswith("data: ")]
        assert data != f"data: {shown}"
        assert (await client.get("/", headers={"X-Live": "1"})).headers["x-live"] == "1"
