"""Numbers past what the database holds, wrong methods and malformed values get a 4xx
in the API's error shape, never a 500: on an SQLite file and on PostgreSQL.

PostgreSQL's ``integer`` ends at 2**31 - 1 and SQLite refuses numbers past 2**63 - 1;
either used to reach the database and come back as a 500 with a traceback in the log.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.settings import DocumentSettings
from docmill.web import create_app

TOKEN = "bounds-token-" + uuid.uuid4().hex
HUGE_IDS = ["2147483648", "9223372036854775808", "18446744073709551616", "0", "-1", "9" * 5000]
ID_ROUTES = [
    ("GET", "/api/documents/{id}"),
    ("DELETE", "/api/documents/{id}"),
    ("GET", "/api/documents/{id}/result"),
    ("GET", "/api/documents/{id}/events"),
    ("POST", "/api/documents/{id}/approve"),
    ("POST", "/api/documents/{id}/retry"),
    ("POST", "/api/documents/{id}/cancel"),
]


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=database_url,
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        api_tokens=(TOKEN,),
    )
    app: FastAPI = create_app(settings, development=False)
    async with app.router.lifespan_context(app):
        # A 500 must show as a 500 here, not as an exception of the transport.
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield client


async def test_ids_outside_the_databases_range_are_422_on_every_id_route(api: httpx.AsyncClient) -> None:
    answers = {}
    for method, route in ID_ROUTES:
        for document_id in HUGE_IDS:
            response = await api.request(method, route.format(id=document_id))
            answers[(method, route, document_id[:20])] = (
                response.status_code,
                response.json()["error"]["type"],
            )

    assert set(answers.values()) == {(422, "validation_error")}, answers


async def test_the_largest_id_the_database_holds_is_simply_not_found(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/documents/2147483647")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


async def test_an_offset_outside_the_range_is_422(api: httpx.AsyncClient) -> None:
    for offset in ["18446744073709551616", "9223372036854775807", "2147483648", "-1"]:
        response = await api.get(f"/api/documents?offset={offset}")

        assert response.status_code == 422, offset
        assert "offset" in response.json()["error"]["message"]


async def test_the_largest_offset_lists_an_empty_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/documents?offset=2147483647")

    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_a_last_event_id_past_the_database_or_not_plain_digits_is_422(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/documents", files={"file": ("a.txt", b"some text\n", "text/plain")})
    events = f"/api/documents/{created.json()['id']}/events"

    for cursor in ["99999999999999999999", "2147483648", "1_0", "-3", "\u00b2", "9" * 5000]:
        response = await api.get(events, headers={"Last-Event-ID": cursor.encode("latin-1")})

        assert response.status_code == 422, cursor[:20]
        assert "Last-Event-ID" in response.json()["error"]["message"]


METHOD_CASES = [
    ("PUT", "/api/documents/1", "GET, DELETE"),
    ("POST", "/api/documents/1", "GET, DELETE"),
    ("PATCH", "/api/documents", "GET, POST"),
    ("DELETE", "/api/documents/1/approve", "POST"),
    ("POST", "/api/health", "GET"),
    ("POST", "/metrics", "GET"),
    ("PUT", "/docs/assets/swagger-ui.css", "GET, HEAD"),
]


async def test_405_names_every_method_the_path_serves_in_allow(api: httpx.AsyncClient) -> None:
    for method, path, allowed in METHOD_CASES:
        response = await api.request(method, path)

        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed
        assert response.json()["error"] == {
            "type": "method_not_allowed",
            "message": f"{method} is not allowed on {path}; use {allowed}.",
        }


async def test_a_callback_url_that_is_no_http_url_is_422(api: httpx.AsyncClient) -> None:
    for url in ["http://[", "http://[::1", "http://h:99999", "ftp://h/x"]:
        response = await api.post(
            "/api/documents",
            files={"file": ("a.txt", b"some text\n", "text/plain")},
            data={"callback_url": url},
        )

        assert response.status_code == 422, url
        assert response.json()["error"]["type"] == "invalid_options"


async def test_the_schema_publishes_the_bounds_validation_enforces(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]

    document_id = paths["/api/documents/{document_id}"]["get"]["parameters"][0]["schema"]
    offset = next(p for p in paths["/api/documents"]["get"]["parameters"] if p["name"] == "offset")["schema"]
    upload = paths["/api/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert (document_id["minimum"], document_id["maximum"]) == (1, 2**31 - 1)
    assert (offset["minimum"], offset["maximum"]) == (0, 2**31 - 1)
    assert "pattern" in upload["properties"]["callback_url"]
