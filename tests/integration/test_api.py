"""The HTTP API against real databases: every route, auth, uploads, errors and event streams.

Each test runs the app's lifespan (so the database is migrated and the queue opened as
in production) and talks to it through ``httpx.ASGITransport``. Every test runs twice:
with the documents database on an SQLite file under ``tmp_path``, and on a PostgreSQL
database created for the test and dropped afterwards (skipped on a laptop without
PostgreSQL, a failure in CI). The queue is a real SQLite queue under ``tmp_path``; no
worker runs, so documents stay where the API put them unless a test moves them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from docmill.documents.analyzing import analyze_document
from docmill.documents.context import DocumentContext
from docmill.documents.models import Document
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import Status, change_status
from docmill.llm.circuit import LLMCircuit
from docmill.llm.errors import SpendLimitReached
from docmill.llm.limits import key_fingerprint
from docmill.llm.models import DEFAULT_MODEL
from docmill.llm.settings import LLMSettings
from docmill.queue import JobState
from docmill.web import create_app

TOKEN = "test-token-" + uuid.uuid4().hex
OTHER_TOKEN = "second-token-" + uuid.uuid4().hex
PDF_LIKE = b"%PDF-1.4\n" + b"0123456789" * 50
SCHEMA = {"type": "object", "properties": {"total": {"type": "number"}}}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., DocumentSettings]:
    def make(**changes: Any) -> DocumentSettings:
        values: dict[str, Any] = {
            "storage_dir": tmp_path / "storage",
            "database_url": database_url,
            "queue_url": f"sqlite:///{tmp_path / 'queue.db'}",
            "api_tokens": (TOKEN, OTHER_TOKEN),
            "max_upload_mb": 1.0,
        }
        values.update(changes)
        return DocumentSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., DocumentSettings]) -> DocumentSettings:
    return make_settings()


@pytest.fixture
async def app(settings: DocumentSettings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running."""
    application = create_app(settings, development=False)
    application.state.sse_poll_s = 0.05
    async with application.router.lifespan_context(application):
        yield application


def client_for(
    app: FastAPI,
    *,
    token: str | None = TOKEN,
    client_host: str = "127.0.0.1",
    base_url: str = "http://127.0.0.1",
) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    transport = httpx.ASGITransport(app, client=(client_host, 51000))
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


def context_of(app: FastAPI) -> DocumentContext:
    context: DocumentContext = app.state.context
    return context


async def upload(
    api: httpx.AsyncClient,
    content: bytes = b"Quarterly report\n\nRevenue grew.\n",
    filename: str = "report.txt",
    **fields: str,
) -> httpx.Response:
    return await api.post("/api/documents", files={"file": (filename, content, "text/plain")}, data=fields)


async def uploaded_id(api: httpx.AsyncClient, content: bytes = b"some text\n", **fields: str) -> int:
    response = await upload(api, content, **fields)
    assert response.status_code == 201, response.text
    document_id: int = response.json()["id"]
    return document_id


async def move(app: FastAPI, document_id: int, *steps: Status, **values: Any) -> None:
    """Walk a document through statuses as the pipeline would; ``values`` go with the last step."""

    def walk(session: Session) -> None:
        document = session.get(Document, document_id)
        assert document is not None
        for index, step in enumerate(steps):
            change_status(
                session,
                document,
                step,
                f"test: {step.value}",
                values=values if index == len(steps) - 1 else None,
            )

    await context_of(app).db.run(walk)


async def complete(app: FastAPI, document_id: int) -> None:
    await move(
        app,
        document_id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.QUEUED,
        Status.PROCESSING,
        Status.COMPLETED,
        result={"title": "Quarterly report", "summary": "Revenue grew."},
        result_markdown="# Quarterly report\n\nRevenue grew.\n",
        cost_usd=0.0123,
    )


async def jobs_of(app: FastAPI, document_id: int) -> list[tuple[str, str, JobState]]:
    jobs = await context_of(app).backend.find_by_tag(f"document:{document_id}")
    return sorted((job.name, job.queue, job.state) for job in jobs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["message"].endswith("."), error
    return error


def sse_events(body: str) -> list[dict[str, Any]]:
    """The events of a text/event-stream body: event name, id and JSON data; comments skipped."""
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            events.append(
                {"event": fields.get("event"), "id": fields.get("id"), "data": json.loads(fields["data"])}
            )
    return events


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ----------------------------------------------------------------------------- health and docs


async def test_health_answers_without_a_token_when_database_and_queue_are_up(app: FastAPI) -> None:
    async with client_for(app, token=None) as anonymous:
        response = await anonymous.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": {"ok": True, "error": None},
        "queue": {"ok": True, "error": None},
    }


async def test_health_is_503_naming_the_component_that_fails(
    app: FastAPI, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue backend that cannot be reached
    async def unreachable() -> set[str]:
        raise ConnectionRefusedError("connection refused by 10.0.0.7")

    monkeypatch.setattr(context_of(app).backend, "paused_queues", unreachable)

    response = await api.get("/api/health")

    # Then the health check fails on the queue only, without the server's message
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": {"ok": True, "error": None},
        "queue": {"ok": False, "error": "ConnectionRefusedError"},
    }


async def test_health_says_when_llm_calls_are_stopped_and_how_to_resume(
    make_settings: Callable[..., DocumentSettings],
) -> None:
    # Given a Claude key whose calls a spend limit stopped on every worker
    key = "sk-ant-health-0123456789"
    application = create_app(make_settings(llm=LLMSettings(anthropic_api_key=key)), development=False)
    async with (
        application.router.lifespan_context(application),
        client_for(application, token=None) as anonymous,
    ):
        circuit = LLMCircuit(
            context_of(application).backend, key_fingerprint(key), wall_clock=lambda: 1767225600.0
        )
        await circuit.trip(SpendLimitReached("The Claude API refused the call (monthly cap reached)."))

        response = await anonymous.get("/api/health")

    # Then the API is up and says since when and how to resume, without the API's message
    assert response.status_code == 200
    assert response.json()["llm_calls_stopped"] == {
        "kind": "spend_limit",
        "since": "2026-01-01 00:00:00 UTC",
        "resume": "docmill queue continue-llm",
    }
    assert "monthly cap" not in response.text


async def test_openapi_documents_every_route_with_response_schemas(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()

    assert set(spec["paths"]) == {
        "/api/health",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/documents",
        "/api/documents/{document_id}",
        "/api/documents/{document_id}/result",
        "/api/documents/{document_id}/structure",
        "/api/documents/{document_id}/approve",
        "/api/documents/{document_id}/retry",
        "/api/documents/{document_id}/cancel",
        "/api/documents/{document_id}/events",
        "/api/queues",
        "/api/queues/{queue}",
        "/api/queues/{queue}/pause",
        "/api/queues/{queue}/continue",
        "/api/failed",
        "/api/failed/retry",
        "/api/failed/{job_id}",
        "/api/failed/{job_id}/retry",
        "/api/jobs/{job_id}",
        "/api/workers",
    }
    schemas = spec["components"]["schemas"]
    assert {"DocumentDetail", "DocumentPage", "ErrorBody", "ResultOut", "HealthOut"} <= set(schemas)
    assert {"QueueSummaryOut", "FailedPage", "JobDetail", "RetryOut", "ClusterOut"} <= set(schemas)
    upload_op = spec["paths"]["/api/documents"]["post"]
    assert upload_op["responses"]["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    form = upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert {
        "file",
        "profile",
        "model",
        "callback_url",
        "auto_approve",
        "schema",
        "prompt",
        "batch",
        "force",
    } == set(form["properties"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert (await api.get("/docs")).status_code == 200


# ----------------------------------------------------------------------------- auth


async def test_requests_without_a_token_are_refused_with_401(app: FastAPI) -> None:
    async with client_for(app, token=None) as anonymous:
        response = await anonymous.get("/api/documents")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response)["type"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
async def test_a_wrong_token_is_refused_and_never_echoed(app: FastAPI, header: str) -> None:
    async with client_for(app, token=None) as anonymous:
        response = await anonymous.get("/api/documents", headers={"Authorization": header})

    assert response.status_code == 401
    assert error_of(response)["type"] == "unauthorized"
    assert TOKEN not in response.text
    assert "wrong-token" not in response.text


async def test_every_configured_token_is_accepted(app: FastAPI) -> None:
    for token in (TOKEN, OTHER_TOKEN):
        async with client_for(app, token=token) as client:
            response = await client.get("/api/documents")
        assert response.status_code == 200, token


async def test_every_document_route_needs_the_token(app: FastAPI) -> None:
    routes = [
        ("GET", "/api/documents"),
        ("POST", "/api/documents"),
        ("GET", "/api/documents/1"),
        ("GET", "/api/documents/1/result"),
        ("POST", "/api/documents/1/approve"),
        ("POST", "/api/documents/1/retry"),
        ("POST", "/api/documents/1/cancel"),
        ("DELETE", "/api/documents/1"),
        ("GET", "/api/documents/1/events"),
    ]
    async with client_for(app, token=None) as anonymous:
        codes = {route: (await anonymous.request(*route)).status_code for route in routes}

    assert codes == dict.fromkeys(routes, 401)


async def _status_without_tokens(
    settings: DocumentSettings,
    *,
    development: bool,
    client_host: str = "127.0.0.1",
    base_url: str = "http://127.0.0.1:8000",
    headers: dict[str, str] | None = None,
) -> int:
    application = create_app(settings, development=development)
    client = client_for(application, token=None, client_host=client_host, base_url=base_url)
    async with application.router.lifespan_context(application), client:
        return (await client.get("/api/documents", headers=headers)).status_code


async def test_without_tokens_loopback_is_exempt_only_in_development(
    make_settings: Callable[..., DocumentSettings],
) -> None:
    no_tokens = make_settings(api_tokens=())

    assert await _status_without_tokens(no_tokens, development=True) == 200
    assert await _status_without_tokens(no_tokens, development=True, client_host="::1") == 200
    assert await _status_without_tokens(no_tokens, development=True, base_url="http://localhost:8000") == 200
    # Not in development: no token configured means nobody gets in
    assert await _status_without_tokens(no_tokens, development=False) == 401
    # In development, but from another host
    assert await _status_without_tokens(no_tokens, development=True, client_host="203.0.113.9") == 401
    # In development, from loopback, but a page of another site (DNS rebinding, cross-site POST)
    assert (
        await _status_without_tokens(no_tokens, development=True, base_url="http://evil.example:8000") == 401
    )
    assert (
        await _status_without_tokens(no_tokens, development=True, headers={"Origin": "https://evil.example"})
        == 401
    )
    assert (
        await _status_without_tokens(no_tokens, development=True, headers={"Origin": "http://127.0.0.1:8000"})
        == 200
    )


async def test_with_tokens_configured_development_exempts_nobody(
    make_settings: Callable[..., DocumentSettings],
) -> None:
    assert await _status_without_tokens(make_settings(), development=True) == 401


# ----------------------------------------------------------------------------- upload


async def test_upload_stores_the_file_and_queues_its_analysis(app: FastAPI, api: httpx.AsyncClient) -> None:
    response = await upload(
        api, b"Quarterly report\n", "report.txt", profile="summary", model="claude-haiku-4-5"
    )

    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/documents/{body['id']}"
    assert body["name"] == "report.txt"
    assert body["status"] == "uploaded"
    assert body["size_bytes"] == len(b"Quarterly report\n")
    assert body["content_type"] == "text/plain"
    assert body["options"]["model"] == "claude-haiku-4-5"
    assert body["progress"] == {"done": 0, "total": 0, "fraction": 0.0}
    assert await jobs_of(app, body["id"]) == [("documents.analyze", "document-analysis", JobState.PENDING)]
    stored = context_of(app).store.path_for(body["sha256"])
    assert stored.read_bytes() == b"Quarterly report\n"


async def test_upload_takes_every_option_of_the_form(api: httpx.AsyncClient) -> None:
    extract = await upload(
        api,
        PDF_LIKE,
        "invoice.pdf",
        profile="extract",
        schema=json.dumps(SCHEMA),
        auto_approve="true",
        callback_url="https://hooks.example/docmill",
        batch="yes",
    )
    custom = await upload(api, PDF_LIKE, "invoice.pdf", profile="custom", prompt="List every date.")

    assert extract.status_code == 201, extract.text
    assert extract.json()["options"] == {
        "profile": "extract",
        "model": None,
        "callback_url": "https://hooks.example/docmill",
        "auto_approve": True,
        "schema": SCHEMA,
        "prompt": None,
        "batch": True,
    }
    assert extract.json()["batch"] is None  # not sent yet
    assert custom.status_code == 201, custom.text
    assert custom.json()["options"]["prompt"] == "List every date."
    assert custom.json()["options"]["batch"] is None  # the profile's default
    assert custom.json()["id"] != extract.json()["id"]


async def test_the_same_bytes_and_options_return_the_existing_document(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    first = await upload(api, b"same bytes", "a.txt")
    again = await upload(api, b"same bytes", "b.txt")
    other_options = await upload(api, b"same bytes", "a.txt", profile="custom", prompt="Translate it.")
    forced = await upload(api, b"same bytes", "a.txt", force="true")

    assert first.status_code == 201
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert again.headers["location"] == f"/api/documents/{first.json()['id']}"
    assert other_options.status_code == 201
    assert other_options.json()["id"] != first.json()["id"]
    assert forced.status_code == 201
    assert forced.json()["id"] not in {first.json()["id"], other_options.json()["id"]}
    # One file on disk for all of them: storage is content-addressed
    stored = [p for p in files_under(context_of(app).store.root) if p.parent.name != "tmp"]
    assert len(stored) == 1


async def test_no_model_and_the_default_or_an_alias_and_its_dated_id_are_one_document(
    api: httpx.AsyncClient,
) -> None:
    # Given the same file uploaded without a model, then with the default model named
    plain = await upload(api, b"one file", "a.txt")
    default = await upload(api, b"one file", "a.txt", model=DEFAULT_MODEL)
    # and with an alias, then with the dated id it stands for
    alias = await upload(api, b"one file", "a.txt", model="claude-sonnet-4-5")
    dated = await upload(api, b"one file", "a.txt", model=" claude-sonnet-4-5-20250929")

    # Then each second upload returns the first document, stored with the options first given
    assert (plain.status_code, default.status_code) == (201, 200)
    assert default.json()["id"] == plain.json()["id"]
    assert default.json()["options"]["model"] is None
    assert (alias.status_code, dated.status_code) == (201, 200)
    assert dated.json()["id"] == alias.json()["id"] != plain.json()["id"]
    assert dated.json()["options"]["model"] == "claude-sonnet-4-5"


async def test_a_path_in_the_file_name_is_stripped_and_nothing_is_written_outside_storage(
    app: FastAPI, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    for name in ("../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", ".hidden"):
        response = await upload(api, f"content of {name}".encode(), name)
        assert response.status_code == 201, response.text
        assert "/" not in response.json()["name"] and "\\" not in response.json()["name"]

    names = [item["name"] for item in (await api.get("/api/documents")).json()["items"]]
    assert sorted(names) == ["hidden", "passwd", "shadow", "win.ini"]
    root = context_of(app).store.root
    for path in files_under(tmp_path):
        assert path.is_relative_to(tmp_path / "storage") or path.name.startswith("queue.db"), path
    for path in files_under(root):
        assert len(path.name) == 64 and path.parent.parent.parent == root, path


async def test_an_upload_over_the_limit_is_413_and_leaves_nothing_behind(
    make_settings: Callable[..., DocumentSettings], tmp_path: Path
) -> None:
    # Given a server with a 64 KB upload limit
    application = create_app(make_settings(max_upload_mb=1 / 16), development=False)
    async with application.router.lifespan_context(application), client_for(application) as client:
        # When a file of 64 KB + 1 byte, and one far over (refused by Content-Length), are sent
        just_over = await upload(client, b"x" * (64 * 1024 + 1), "big.txt")
        far_over = await upload(client, b"y" * (3 * 1024 * 1024), "huge.txt")
        at_limit = await upload(client, b"z" * (64 * 1024), "fits.txt")
        listing = (await client.get("/api/documents")).json()

    # Then both are refused with a clear error, and only the file at the limit was kept
    for response in (just_over, far_over):
        assert response.status_code == 413
        error = error_of(response)
        assert error["type"] == "upload_too_large"
        assert "DOCUMENT_MAX_UPLOAD_MB" in error["message"]
    assert at_limit.status_code == 201
    assert listing["total"] == 1
    documents = tmp_path / "storage" / "documents"
    assert [p.name for p in files_under(documents)] == [at_limit.json()["sha256"]]


async def test_an_upload_that_cannot_work_is_422_and_keeps_nothing(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    cases = {
        "invalid_options": await upload(api, profile="poem"),
        "invalid_options-extract": await upload(api, profile="extract"),
        "invalid_options-schema": await upload(api, profile="extract", schema="{not json"),
        "invalid_options-custom": await upload(api, profile="custom"),
        "invalid_options-callback": await upload(api, callback_url="ftp://example.com/x"),
        "invalid_options-unknown": await upload(api, colour="blue"),
        "invalid_options-force": await upload(api, force="maybe"),
        "empty_upload": await upload(api, b""),
        "bad_upload-no-file": await api.post(
            "/api/documents", data={"profile": "summary"}, files={"x": ("", b"")}
        ),
        "bad_upload-two-files": await api.post(
            "/api/documents", files=[("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))]
        ),
        "bad_upload-other-field": await api.post("/api/documents", files={"document": ("a.txt", b"a")}),
    }

    for case, response in cases.items():
        assert response.status_code == 422, (case, response.text)
        assert error_of(response)["type"] == case.split("-")[0], case
    assert "summary, extract, custom" in error_of(cases["invalid_options"])["message"]
    assert (await api.get("/api/documents")).json()["total"] == 0
    assert files_under(tmp_path / "storage" / "documents") == []


async def test_an_upload_that_is_not_a_form_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/documents", json={"file": "text"})

    assert response.status_code == 415
    assert error_of(response)["type"] == "unsupported_media_type"


async def test_an_upload_whose_analysis_cannot_be_queued_is_503_and_kept_for_retry(
    app: FastAPI, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def queue_down(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("queue down")

    monkeypatch.setattr(context_of(app).client, "dispatch", queue_down)

    response = await upload(api)

    assert response.status_code == 503
    error = error_of(response)
    assert error["type"] == "queue_unavailable"
    document = (await api.get(f"/api/documents/{error['document_id']}")).json()
    assert document["status"] == "uploaded"


# ----------------------------------------------------------------------------- reading


async def test_list_filters_by_status_and_pages_newest_first(app: FastAPI, api: httpx.AsyncClient) -> None:
    ids = [await uploaded_id(api, f"document {n}".encode()) for n in range(5)]
    await api.post(f"/api/documents/{ids[1]}/cancel")
    await api.post(f"/api/documents/{ids[3]}/cancel")

    first_page = (await api.get("/api/documents", params={"limit": 2})).json()
    last_page = (await api.get("/api/documents", params={"limit": 2, "offset": 4})).json()
    cancelled = (await api.get("/api/documents", params={"status": "cancelled"})).json()

    assert [item["id"] for item in first_page["items"]] == [ids[4], ids[3]]
    assert (first_page["total"], first_page["offset"], first_page["limit"]) == (5, 0, 2)
    assert [item["id"] for item in last_page["items"]] == [ids[0]]
    assert [item["id"] for item in cancelled["items"]] == [ids[3], ids[1]]
    assert cancelled["total"] == 2


@pytest.mark.parametrize(
    "params", [{"status": "sleeping"}, {"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"limit": "x"}]
)
async def test_list_rejects_bad_parameters_with_422(api: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await api.get("/api/documents", params=params)

    assert response.status_code == 422
    assert error_of(response)["type"] == "validation_error"


async def test_show_gives_status_analysis_estimate_progress_cost_and_error(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await uploaded_id(api)
    analysis = {
        "kind": "text",
        "title": "Quarterly report",
        "sections": [],
        "tables": [],
        "counts": {"pages": None, "words": 1200, "characters": 7000, "sections": 4, "tables": 1},
        "language": {"code": "en", "confidence": 0.97},
        "chunks": [{"index": 0}, {"index": 1}, {"index": 2}],
        "chunk_tokens": 2000,
        "encoding": "utf-8",
        "warnings": [],
    }
    estimate = {
        "provider": "anthropic",
        "offline": False,
        "model": "claude-haiku-4-5",
        "calls": {"map": 3, "reduce": 1, "total": 4},
        "input_tokens": 6000,
        "output_tokens": 1500,
        "cost_usd": 0.75,
        "price_known": True,
        "eta_s": 42,
    }
    await move(app, document_id, Status.ANALYZING, Status.ANALYZED, analysis=analysis)
    await move(app, document_id, Status.AWAITING_APPROVAL, estimate=estimate, progress_total=4)

    body = (await api.get(f"/api/documents/{document_id}")).json()

    assert body["status"] == "awaiting_approval"
    assert body["analysis"] == {
        "kind": "text",
        "title": "Quarterly report",
        "language": "en",
        "language_confidence": 0.97,
        "counts": {"pages": None, "words": 1200, "characters": 7000, "sections": 4, "tables": 1},
        "chunks": 3,
        "chunk_tokens": 2000,
        "warnings": [],
    }
    assert body["estimate"]["cost_usd"] == 0.75
    assert body["estimate"]["calls"] == {"map": 3, "reduce": 1, "total": 4}
    assert body["estimated_cost_usd"] == 0.75
    assert body["eta_s"] == 42
    assert body["progress"] == {"done": 0, "total": 4, "fraction": 0.0}
    assert body["cost_usd"] == 0.0
    assert body["error"] is None
    assert body["analyzed_at"] is not None

    await move(app, document_id, Status.FAILED, error_reason="The model was retired; pick another.")
    failed = (await api.get(f"/api/documents/{document_id}")).json()
    assert (failed["status"], failed["error"]) == ("failed", "The model was retired; pick another.")


async def estimated(
    make_settings: Callable[..., DocumentSettings], llm: LLMSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Upload a report with ``llm`` configured, run its analysis stage (analysis, estimate,
    approval) as a worker would, and return the document and its events from the API."""
    application = create_app(make_settings(llm=llm), development=False)
    async with application.router.lifespan_context(application), client_for(application) as api:
        document_id = await uploaded_id(api, b"Quarterly report\n\nRevenue grew by twelve percent.\n")
        await analyze_document(context_of(application), document_id)
        document = (await api.get(f"/api/documents/{document_id}")).json()
        events = await context_of(application).service.events(document_id)
        return document, [{"to_status": e.to_status, "message": e.message} for e in events]


async def test_a_local_server_model_without_a_configured_price_waits_for_approval_and_says_why(
    make_settings: Callable[..., DocumentSettings],
) -> None:
    # Given an OpenAI-compatible server whose model has no price (nothing listens: the
    # estimate counts offline and makes no call)
    llm = LLMSettings(provider="openai", openai_base_url="http://127.0.0.1:9", openai_model="llama-3.1-8b")

    document, events = await estimated(make_settings, llm)

    # Then its cost is unknown, never $0, and it waits for approval with the reason
    assert document["status"] == "awaiting_approval"
    estimate = document["estimate"]
    assert (estimate["model"], estimate["cost_usd"], estimate["price_known"]) == ("llama-3.1-8b", None, False)
    assert document["estimated_cost_usd"] is None
    assert estimate["price_note"].startswith(
        "no price is configured for 'llama-3.1-8b' on the OpenAI-compatible server, so the cost cannot be"
    )
    assert "cost_usd_batch" not in estimate and estimate["cost_usd_cached"] is None
    assert events[-1]["message"] == f"awaiting approval: {estimate['price_note']}"


async def test_a_local_server_model_configured_free_is_approved_within_the_budget(
    make_settings: Callable[..., DocumentSettings],
) -> None:
    llm = LLMSettings.from_env(
        {
            "DOCMILL_LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": "http://127.0.0.1:9",
            "OPENAI_MODEL": "llama-3.1-8b",
            "DOCMILL_LLM_PRICES": '{"llama-3.1-8b": {"input_per_mtok": 0, "output_per_mtok": 0}}',
        }
    )

    document, events = await estimated(make_settings, llm)

    assert document["status"] == "queued"
    assert (document["estimate"]["cost_usd"], document["estimate"]["price_known"]) == (0.0, True)
    assert events[-1]["message"] == "auto-approved: estimated $0.0000 is within the $0.50 budget"


async def test_an_unknown_document_is_404_on_every_route(api: httpx.AsyncClient) -> None:
    routes = [
        ("GET", "/api/documents/999"),
        ("GET", "/api/documents/999/result"),
        ("GET", "/api/documents/999/structure"),
        ("POST", "/api/documents/999/approve"),
        ("POST", "/api/documents/999/retry"),
        ("POST", "/api/documents/999/cancel"),
        ("DELETE", "/api/documents/999"),
        ("GET", "/api/documents/999/events"),
    ]
    for route in routes:
        response = await api.request(*route)
        assert response.status_code == 404, route
        error = error_of(response)
        assert (error["type"], error["document_id"]) == ("not_found", 999), route


async def test_result_is_409_until_completed_then_json_or_markdown(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await uploaded_id(api)

    early = await api.get(f"/api/documents/{document_id}/result")
    assert early.status_code == 409
    assert error_of(early)["type"] == "result_not_ready"

    await complete(app, document_id)
    as_json = await api.get(f"/api/documents/{document_id}/result")
    by_query = await api.get(f"/api/documents/{document_id}/result", params={"format": "markdown"})
    by_accept = await api.get(f"/api/documents/{document_id}/result", headers={"Accept": "text/markdown"})
    json_preferred = await api.get(
        f"/api/documents/{document_id}/result", headers={"Accept": "application/json, text/markdown;q=0.5"}
    )

    assert as_json.status_code == 200
    assert as_json.json() == {
        "document_id": document_id,
        "result": {"title": "Quarterly report", "summary": "Revenue grew."},
    }
    for response in (by_query, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/markdown; charset=utf-8"
        assert response.text == "# Quarterly report\n\nRevenue grew.\n"
    assert json_preferred.headers["content-type"] == "application/json"
    detail = (await api.get(f"/api/documents/{document_id}")).json()
    assert (detail["status"], detail["cost_usd"], detail["progress"]["fraction"]) == (
        "completed",
        0.0123,
        1.0,
    )


# ----------------------------------------------------------------------------- steering


async def test_approve_queues_the_processing_of_a_document_awaiting_approval(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await uploaded_id(api)
    refused = await api.post(f"/api/documents/{document_id}/approve")
    await move(
        app,
        document_id,
        Status.ANALYZING,
        Status.ANALYZED,
        Status.AWAITING_APPROVAL,
        estimate={"cost_usd": 2.5},
    )

    approved = await api.post(f"/api/documents/{document_id}/approve")

    assert refused.status_code == 409
    assert error_of(refused)["type"] == "invalid_transition"
    assert approved.status_code == 200
    assert approved.json()["status"] == "queued"
    assert approved.json()["approved_at"] is not None
    assert ("documents.process", "document-processing", JobState.PENDING) in await jobs_of(app, document_id)


async def test_cancel_then_retry_puts_the_document_back_where_it_stopped(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await uploaded_id(api)

    cancelled = await api.post(f"/api/documents/{document_id}/cancel")
    cancelled_again = await api.post(f"/api/documents/{document_id}/cancel")
    retried = await api.post(f"/api/documents/{document_id}/retry")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert cancelled.json()["cancelled_at"] is not None
    assert cancelled_again.status_code == 409
    assert "retry it first" in error_of(cancelled_again)["message"]
    assert (retried.status_code, retried.json()["status"]) == (200, "uploaded")


async def test_a_completed_document_can_be_neither_retried_nor_cancelled_nor_approved(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await uploaded_id(api)
    await complete(app, document_id)

    for action in ("retry", "cancel", "approve"):
        response = await api.post(f"/api/documents/{document_id}/{action}")
        assert response.status_code == 409, action
        error = error_of(response)
        assert (error["type"], error["document_id"]) == ("invalid_transition", document_id)


async def test_delete_removes_the_document_and_its_unshared_file(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    kept = await uploaded_id(api, b"shared bytes")
    twin = await uploaded_id(api, b"shared bytes", force="true")
    alone = await uploaded_id(api, b"only mine")
    store = context_of(app).store
    shared_sha = (await api.get(f"/api/documents/{kept}")).json()["sha256"]
    alone_sha = (await api.get(f"/api/documents/{alone}")).json()["sha256"]

    assert (await api.delete(f"/api/documents/{twin}")).status_code == 204
    assert (await api.delete(f"/api/documents/{alone}")).status_code == 204

    assert (await api.get(f"/api/documents/{twin}")).status_code == 404
    assert (await api.delete(f"/api/documents/{alone}")).status_code == 404
    assert store.exists(shared_sha)
    assert not store.exists(alone_sha)
    assert [item["id"] for item in (await api.get("/api/documents")).json()["items"]] == [kept]


# ----------------------------------------------------------------------------- events


async def test_events_replay_the_history_and_end_at_a_terminal_status(api: httpx.AsyncClient) -> None:
    document_id = await uploaded_id(api)
    await api.post(f"/api/documents/{document_id}/cancel")

    response = await api.get(f"/api/documents/{document_id}/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [(e["event"], e["data"].get("to_status")) for e in events] == [
        ("status", "uploaded"),
        ("status", "cancelled"),
        ("end", None),
    ]
    assert events[1]["data"]["from_status"] == "uploaded"
    assert events[1]["id"] == str(events[1]["data"]["id"])
    assert events[2]["data"] == {"document_id": document_id, "status": "cancelled"}


async def test_events_resume_after_last_event_id(api: httpx.AsyncClient) -> None:
    document_id = await uploaded_id(api)
    await api.post(f"/api/documents/{document_id}/cancel")
    first = sse_events((await api.get(f"/api/documents/{document_id}/events")).text)[0]

    resumed = await api.get(f"/api/documents/{document_id}/events", headers={"Last-Event-ID": first["id"]})
    bad = await api.get(f"/api/documents/{document_id}/events", headers={"Last-Event-ID": "yesterday"})

    assert [(e["event"], e["data"].get("to_status")) for e in sse_events(resumed.text)] == [
        ("status", "cancelled"),
        ("end", None),
    ]
    assert bad.status_code == 422
    assert error_of(bad)["type"] == "validation_error"


async def test_events_stream_status_changes_as_they_happen(app: FastAPI, api: httpx.AsyncClient) -> None:
    # Given a stream opened on a document that is still in the pipeline
    document_id = await uploaded_id(api)
    stream = asyncio.create_task(api.get(f"/api/documents/{document_id}/events"))
    await asyncio.sleep(0.3)
    assert not stream.done()

    # When the pipeline moves it on, and it is then cancelled
    await move(app, document_id, Status.ANALYZING)
    await asyncio.sleep(0.2)
    await api.post(f"/api/documents/{document_id}/cancel")

    # Then the stream carried every change and ended with the terminal one
    response = await asyncio.wait_for(stream, 10)
    assert [(e["event"], e["data"].get("to_status")) for e in sse_events(response.text)] == [
        ("status", "uploaded"),
        ("status", "analyzing"),
        ("status", "cancelled"),
        ("end", None),
    ]
