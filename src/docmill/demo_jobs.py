"""The handlers `docmill demo` dispatches: stand-ins for the document pipeline's jobs.

Workers load them with ``--app docmill.demo_jobs:registry``. They sleep
instead of working, so the demo needs no files, no LLM key and no network.
Two kinds misbehave on purpose: ``demo.send_webhook`` with ``failures > 0``
fails that many attempts and then succeeds (retries with backoff), and
``demo.parse_scanned_pdf`` always fails (it ends in the failed store).
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

from docmill.queue import Dispatch, JobOptions, Registry

registry = Registry()

ANALYSIS_QUEUE = "document-analysis"
PROCESSING_QUEUE = "document-processing"
DEFAULT_QUEUE = "default"


class WebhookUnavailable(ConnectionError):
    """The (simulated) customer endpoint did not accept the delivery."""


class UnreadableDocument(ValueError):
    """The (simulated) document cannot be parsed; retrying will not help."""


def _pause_s(document_id: int, low_ms: int, high_ms: int) -> float:
    # Seeded by the document so a run's timings are repeatable.
    return random.Random(document_id).randint(low_ms, high_ms) / 1000.0


async def analyze_structure(document_id: int, pages: int) -> None:
    """Read the document's sections and tables."""
    await asyncio.sleep(_pause_s(document_id, 10, 40))


async def process_chunks(document_id: int, chunks: int) -> None:
    """Send each chunk to the model and combine the answers."""
    await asyncio.sleep(_pause_s(document_id, 20, 80))


async def send_webhook(document_id: int, failures: int = 0, attempt_log: str | None = None) -> None:
    """Tell the customer the document is done; the first ``failures`` deliveries are refused.

    Attempts are counted in a file under ``attempt_log`` because each attempt
    may run in a different worker process.
    """
    await asyncio.sleep(_pause_s(document_id, 5, 20))
    if failures and attempt_log:
        attempt = _count_attempt(Path(attempt_log) / f"webhook-{document_id}")
        if attempt <= failures:
            raise WebhookUnavailable(f"endpoint answered 503 for document {document_id} (attempt {attempt})")


async def parse_scanned_pdf(document_id: int) -> None:
    """A scanned PDF without a text layer: fails on every attempt."""
    await asyncio.sleep(0.01)
    raise UnreadableDocument(f"document {document_id} is a scanned PDF without a text layer")


# Registered with ``register`` rather than the decorator so the functions keep their types.
for _func, _options in (
    (analyze_structure, JobOptions(queue=ANALYSIS_QUEUE, tries=3, backoff_s=1)),
    (process_chunks, JobOptions(queue=PROCESSING_QUEUE, tries=3, backoff_s=1)),
    (send_webhook, JobOptions(queue=DEFAULT_QUEUE, tries=4, backoff_s=1)),
    (parse_scanned_pdf, JobOptions(queue=ANALYSIS_QUEUE, tries=2, backoff_s=1)),
):
    registry.register(_func, name=f"demo.{_func.__name__}", options=_options)


def _count_attempt(path: Path) -> int:
    """Append one byte and return how many attempts the file has seen (process-safe append)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return path.stat().st_size


def demo_dispatches(total: int, attempt_log: str) -> list[Dispatch]:
    """About ``total`` jobs: per document one analysis, one processing and one webhook job.

    Every tenth webhook fails once or twice before it succeeds; exactly one
    document is a scanned PDF whose analysis fails for good.
    """
    documents = max(1, total // 3)
    broken = min(documents, 37)
    items: list[Dispatch] = []
    for doc in range(1, documents + 1):
        tags = JobOptions(tags=(f"document:{doc}",))
        if doc == broken:
            items.append(Dispatch(parse_scanned_pdf, (doc,), options=tags))
        else:
            items.append(Dispatch(analyze_structure, (doc,), {"pages": doc % 40 + 1}, options=tags))
        items.append(Dispatch(process_chunks, (doc,), {"chunks": doc % 12 + 1}, options=tags))
        failures = (1 + doc // 10 % 2) if doc % 10 == 3 else 0
        kwargs: dict[str, Any] = {"failures": failures, "attempt_log": attempt_log} if failures else {}
        items.append(Dispatch(send_webhook, (doc,), kwargs, options=tags))
    return items
