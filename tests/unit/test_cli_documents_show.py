"""`docmill documents show`: the estimate's cost, its cached price and why a price is unknown."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from docmill.cli.documents import render_document
from docmill.documents.models import Document

NOTE = (
    "no price is configured for 'llama-3.1-8b' on the OpenAI-compatible server, so the cost cannot be "
    "estimated; approve the document to process it"
)


def shown(estimate: dict[str, Any]) -> list[str]:
    """The rendered lines of a document awaiting approval with ``estimate``, at 160 columns."""
    now = datetime.now(UTC)
    document = Document(
        id=7,
        name="report.txt",
        content_type="text/plain",
        size_bytes=120,
        sha256="0" * 64,
        options={"profile": "summary", "model": None},
        status="awaiting_approval",
        estimate=estimate,
        progress_done=0,
        progress_total=4,
        cost_usd=0.0,
        uploaded_at=now,
        updated_at=now,
    )
    console = Console(width=160, record=True, color_system=None, file=io.StringIO())
    render_document(console, document)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_an_unknown_price_shows_no_cost_and_the_reason() -> None:
    lines = shown(
        {"model": "llama-3.1-8b", "calls": {"total": 4}, "cost_usd": None, "price_note": NOTE, "eta_s": 12}
    )

    assert "Estimate  cost unknown for 4 calls to llama-3.1-8b, about 12s" in lines
    assert f"Price     {NOTE}" in lines


def test_a_cached_price_is_shown_beside_the_cost_only_when_there_is_one() -> None:
    cached = shown(
        {"model": "claude-sonnet-4-5-20250929", "calls": {"total": 7}, "cost_usd": 0.0512,
         "cost_usd_cached": 0.0321, "eta_s": 30}
    )  # fmt: skip
    plain = shown({"model": "claude-sonnet-4-6", "calls": {"total": 4}, "cost_usd": 0.0123, "eta_s": 9})

    assert (
        "Estimate  $0.0512 ($0.0321 with prompt caching) for 7 calls to claude-sonnet-4-5-20250929, "
        "about 30s" in cached
    )
    assert "Estimate  $0.0123 for 4 calls to claude-sonnet-4-6, about 9s" in plain
    assert not any(line.startswith("Price") for line in plain)
