"""``GET /api/documents/{id}/structure`` against real databases: the tree, tables, chunk map, paging.

A Markdown chapter is uploaded through the API and analysed as a worker would analyse it
(the sandbox child included); the structure then comes back from the API exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from docmill.documents.analyzing import analyze_document
from docmill.documents.context import DocumentContext
from docmill.documents.settings import DocumentSettings
from docmill.web import create_app

TOKEN = "structure-token-" + uuid.uuid4().hex

CHAPTER = b"""\
Storage Guide
=============

Read this first.

Disks
-----

<table><tr><th>Disk</th><th>Size</th></tr><tr><td>sda</td><td>1 TB</td></tr></table>

### Spares

Keep one.

Arrays
------

Build them with mdadm.
"""


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=database_url,
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
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


async def analysed(app: FastAPI, api: httpx.AsyncClient) -> int:
    response = await api.post("/api/documents", files={"file": ("storage.md", CHAPTER, "text/markdown")})
    assert response.status_code == 201, response.text
    document_id: int = response.json()["id"]
    context: DocumentContext = app.state.context
    await analyze_document(context, document_id)
    return document_id


async def test_the_structure_gives_the_tree_tables_counts_language_and_chunk_map(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    document_id = await analysed(app, api)

    response = await api.get(f"/api/documents/{document_id}/structure")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["document_id"], body["kind"], body["title"]) == (document_id, "markdown", "Storage Guide")
    assert [
        (s["index"], s["parent"], s["level"], s["heading_path"], s["subsections"]) for s in body["sections"]
    ] == [
        (0, None, 1, ["Storage Guide"], 2),
        (1, 0, 2, ["Storage Guide", "Disks"], 1),
        (2, 1, 3, ["Storage Guide", "Disks", "Spares"], 0),
        (3, 0, 2, ["Storage Guide", "Arrays"], 0),
    ]
    assert [s["page_start"] for s in body["sections"]] == [None] * 4
    assert body["tables"] == [
        {
            "index": 0,
            "heading_path": ["Storage Guide", "Disks"],
            "page": None,
            "rows": 2,
            "cols": 2,
            "preview": [["Disk", "Size"], ["sda", "1 TB"]],
        }
    ]
    assert body["counts"]["sections"] == 4 and body["counts"]["tables"] == 1
    assert body["language"]["code"] == "en"
    assert len(body["chunks"]) == body["chunks_total"] >= 1
    assert body["chunks"][0]["heading_path"] == ["Storage Guide"]
    assert "text" not in body["chunks"][0] and body["chunks"][0]["tokens"] > 0
    assert (body["sections_total"], body["tables_total"], body["next_offset"]) == (4, 1, None)


async def test_the_structure_pages_long_lists(app: FastAPI, api: httpx.AsyncClient) -> None:
    document_id = await analysed(app, api)

    first = (await api.get(f"/api/documents/{document_id}/structure", params={"limit": 3})).json()
    second = (
        await api.get(f"/api/documents/{document_id}/structure", params={"offset": 3, "limit": 3})
    ).json()

    assert [s["index"] for s in first["sections"]] == [0, 1, 2]
    assert first["next_offset"] == 3
    assert [s["heading_path"] for s in second["sections"]] == [["Storage Guide", "Arrays"]]
    assert (second["tables"], second["next_offset"], second["sections_total"]) == ([], None, 4)


async def test_an_unknown_document_is_404_and_an_unanalysed_one_409(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/documents/999/structure")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"

    response = await api.post("/api/documents", files={"file": ("storage.md", CHAPTER, "text/markdown")})
    waiting = await api.get(f"/api/documents/{response.json()['id']}/structure")
    assert waiting.status_code == 409
    assert waiting.json()["error"] == {
        "type": "structure_not_ready",
        "message": f"Document {response.json()['id']} has no structure: it is uploaded and not analysed yet; "
        "wait until it is analysed.",
    }


@pytest.mark.parametrize("params", [{"limit": "0"}, {"offset": "-1"}, {"limit": "x"}])
async def test_bad_paging_is_422(api: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await api.get("/api/documents/1/structure", params=params)
    assert response.status_code == 422


async def test_the_structure_is_in_the_openapi_schema(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    operation = spec["paths"]["/api/documents/{document_id}/structure"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StructureOut"
    }
    assert set(operation["responses"]) >= {"200", "404", "409", "422"}
    assert {"SectionOut", "TableOut", "ChunkOut"} <= set(spec["components"]["schemas"])
