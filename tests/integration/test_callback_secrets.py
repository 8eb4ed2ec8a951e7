"""A callback URL's secrets never show: not in the failed store, the worker's log, the
document's events, the queue CLI or the API; only the webhook request carries them.

The pipeline runs in-process on an SQLite queue with the offline processor; the receiver
is httpx's mock transport, answering 503 so the webhook ends in the failed store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from docmill.cli.main import app
from docmill.documents import jobs
from docmill.documents.context import DocumentContext
from docmill.documents.dispatch import WEBHOOK
from docmill.documents.errors import InvalidOptions
from docmill.documents.options import DocumentOptions
from docmill.documents.settings import DocumentSettings
from docmill.llm.settings import LLMSettings
from docmill.queue import JobState, WorkerOptions, backend_from_url
from docmill.queue.events import CapturedEventLog
from docmill.queue.worker import Worker
from docmill.web.schemas import DocumentDetail

PASSWORD, TOKEN = "pw-9f2c1e", "tok-77ab3d"
CALLBACK = f"https://hooks:{PASSWORD}@receiver.test/in?access_token={TOKEN}&batch=7"
SHOWN = "https://hooks:***@receiver.test/in?access_token=***&batch=7"
QUEUES = ("document-analysis", "document-processing", "default")
DOCUMENT = b"# Minutes\n\nThe board met and agreed on the budget.\n"


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[DocumentContext]:
    settings = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        webhook_tries=1,
        llm=LLMSettings(provider="extractive"),
    )
    backend = backend_from_url(settings.queue_url)
    await backend.connect()
    opened = await DocumentContext.create(settings, backend=backend)
    opened.webhook_transport = httpx.MockTransport(lambda request: httpx.Response(503))
    yield opened
    await opened.aclose()
    await backend.close()


async def run_pipeline(context: DocumentContext) -> CapturedEventLog:
    """Work until the webhook job failed; returns the worker's log."""
    log = CapturedEventLog(level="debug")
    options = WorkerOptions(queues=QUEUES, concurrency=2, sleep_s=0.05, tries=3, memory_mb=0)
    backend = backend_from_url(context.backend.url)  # the worker's own, as in a worker process
    await backend.connect()
    worker = Worker(backend, jobs.registry, options, log=log)
    worker.context.state[jobs.DOCUMENTS] = context
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(60):
            while not log.events("job.failed"):
                assert not task.done(), f"the worker stopped early: {task.result()}"
                await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)
    return log


def assert_masked(text: str) -> None:
    assert PASSWORD not in text and TOKEN not in text


async def test_a_failed_webhook_shows_its_callback_url_masked_everywhere(
    context: DocumentContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document whose callback URL holds a password and a token, and a receiver that fails
    document = await context.service.upload(DOCUMENT, "minutes.md", {"callback_url": CALLBACK})

    # When the pipeline runs and the webhook fails for good
    log = await run_pipeline(context)

    # Then the failed store holds the reason with the URL masked, in message and traceback
    (failed,) = await context.backend.failed_page()
    assert failed.name == WEBHOOK and failed.state is JobState.FAILED
    assert failed.error is not None
    assert failed.error.message.startswith(f"The callback URL {SHOWN} answered 503")
    assert_masked(failed.error.message + failed.error.traceback)
    # ... the worker's log lines and the document's events hold no secret
    assert SHOWN in log.events("job.failed")[0]["error"]
    assert_masked(repr(log.events()))
    assert_masked(repr([(e.to_status, e.message) for e in await context.service.events(document.id)]))
    # ... the CLI's failed list and failed job, as a table and as JSON, hold none
    monkeypatch.chdir(tmp_path)
    connection = ["--connection", context.backend.url]
    for argv in (
        ["queue", "failed", *connection],
        ["queue", "failed", *connection, "--json"],
        ["queue", "failed", failed.id, *connection, "--json"],
        ["queue", "failed", failed.id, *connection],
    ):
        result = await asyncio.to_thread(CliRunner().invoke, app, argv, terminal_width=300)
        assert result.exit_code == 0, result.output
        assert_masked(result.output)
    assert "hooks:***@receiver.test" in result.output
    # ... and the document as the API and `documents show --json` give it masks the URL too
    stored = await context.service.get(document.id)
    assert stored.options["callback_url"] == CALLBACK  # the webhook still has what it needs
    assert stored.to_dict()["options"]["callback_url"] == SHOWN
    api = DocumentDetail.build(stored).model_dump_json()
    assert SHOWN in api
    assert_masked(api)


def test_a_refused_callback_url_is_quoted_masked() -> None:
    with pytest.raises(InvalidOptions) as raised:
        DocumentOptions.parse({"callback_url": f"ftp://hooks:{PASSWORD}@receiver.test/in"})
    assert str(raised.value) == (
        "callback_url 'ftp://hooks:***@receiver.test/in' is not an http(s) URL; give one like https://host/hook."
    )
