"""/healthz, /readyz and /docs: the probes orchestrators call without credentials, and API
documentation that works on a machine without internet."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.settings import DocumentSettings
from docmill.web import create_app

TOKEN = "probe-token-" + uuid.uuid4().hex
BASE_URL = "http://docmill.internal:8000"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        api_tokens=(TOKEN,),
    )
    application = create_app(settings, development=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, client=("10.0.0.9", 51000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def test_healthz_and_readyz_answer_without_credentials(anonymous: httpx.AsyncClient) -> None:
    live = await anonymous.get("/healthz")
    ready = await anonymous.get("/readyz")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "failed": []})


async def test_readyz_is_503_naming_what_does_not_answer_and_nothing_more(
    app: FastAPI, anonymous: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue backend and a database that refuse connections
    async def refused(*_: object) -> None:
        raise ConnectionRefusedError("connection refused by 10.0.0.7:6379")

    context = app.state.context
    monkeypatch.setattr(context.backend, "paused_queues", refused)
    queue_down = await anonymous.get("/readyz")
    monkeypatch.setattr(context.db, "run", refused)
    both_down = await anonymous.get("/readyz")
    live = await anonymous.get("/healthz")

    # Then readiness fails naming each, and liveness, which reads nothing, still holds
    assert (queue_down.status_code, queue_down.json()) == (
        503,
        {"status": "unavailable", "failed": ["queue"]},
    )
    assert both_down.json() == {"status": "unavailable", "failed": ["database", "queue"]}
    assert "10.0.0.7" not in queue_down.text + both_down.text
    assert live.status_code == 200


async def test_the_docs_page_loads_everything_from_this_server(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/docs")

    assert page.status_code == 200
    references = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert {"/openapi.json", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(
        references
    )
    for reference in references:
        absolute = urljoin(f"{BASE_URL}/docs", reference)
        assert urlsplit(absolute).netloc == urlsplit(BASE_URL).netloc, reference
        assert (await anonymous.get(absolute)).status_code == 200, reference
    hosts = set(re.findall(r"https?://([^/'\"\s)]+)", page.text))
    assert hosts <= {"docmill.internal:8000"}, hosts
    assert '"validatorUrl": null' in page.text  # no badge from validator.swagger.io


async def test_the_swagger_bundle_is_a_version_that_reads_openapi_3_1(anonymous: httpx.AsyncClient) -> None:
    schema = (await anonymous.get("/openapi.json")).json()
    bundle = (await anonymous.get("/docs/assets/swagger-ui-bundle.js")).text

    assert schema["openapi"].startswith("3.1")
    versions = re.findall(r'"(5\.\d+\.\d+)"', bundle)  # Swagger UI 4 shows 3.1 as "no valid version"
    assert versions, "Swagger UI 5 is needed for OpenAPI 3.1"
