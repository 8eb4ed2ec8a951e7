"""The pipeline's queue handlers: ``docmill queue work --app docmill.documents.jobs:registry``.

=====================  ==========================  ====================================
handler                queue (default)             does
=====================  ==========================  ====================================
documents.analyze      document-analysis           ``analyzing.analyze_document``
documents.process      document-processing         ``processing.process_document``
documents.webhook      default                     ``webhook.deliver``
=====================  ==========================  ====================================

Queues, tries, timeouts and backoff are set where the jobs are dispatched
(``dispatch.py``), from ``DocumentSettings``. Each handler takes its dependencies from
the ``DocumentContext`` that the registry's start-up hook opens over the worker's own
backend, with the settings of ``docmill.config.load`` (``docmill.toml`` and the
environment), so a worker that knows its backend only from ``--connection`` dispatches
the next stage to that backend and shares its rate limiter. An application that embeds
a worker (a test, the demo) may put its own context in ``WorkerContext.state`` under
``DOCUMENTS`` before the worker starts; it is used as it is and not closed.
"""

from __future__ import annotations

import dataclasses
import os

from docmill.documents.analyzing import analyze_document
from docmill.documents.context import DocumentContext
from docmill.documents.dispatch import ANALYZE, PROCESS, WEBHOOK
from docmill.documents.pipeline import fail_document
from docmill.documents.processing import process_document
from docmill.documents.webhook import deliver
from docmill.queue import ErrorInfo, Job, Registry, WorkerContext, mask_url

DOCUMENTS = "documents"
_OPENED_HERE = "documents.opened_here"

registry = Registry()


@registry.on_startup
async def open_documents(worker: WorkerContext) -> None:
    """Open the database, the files and the LLM provider over the worker's backend."""
    if DOCUMENTS in worker.state:
        return
    # Imported here: the loader reads the whole configuration, which only a worker's start needs.
    from docmill.config import load

    settings = load(env=os.environ).documents
    settings = dataclasses.replace(settings, queue_url=getattr(worker.backend, "url", settings.queue_url))
    context = await DocumentContext.create(settings, backend=worker.backend)
    worker.state[DOCUMENTS] = context
    worker.state[_OPENED_HERE] = True
    worker.log.info(
        "documents.opened", database=mask_url(settings.database_url), storage=str(settings.storage_dir)
    )


@registry.on_shutdown
async def close_documents(worker: WorkerContext) -> None:
    if worker.state.pop(_OPENED_HERE, False):
        context: DocumentContext = worker.state.pop(DOCUMENTS)
        await context.aclose()


def documents_of(worker: WorkerContext) -> DocumentContext:
    context: DocumentContext = worker.state[DOCUMENTS]
    return context


@registry.handler(name=ANALYZE, context=True)
async def analyze(worker: WorkerContext, document_id: int) -> None:
    """AnalyzeDocumentStructureJob: parse, estimate, approve (or wait for approval)."""
    await analyze_document(documents_of(worker), int(document_id))


@registry.handler(name=PROCESS, context=True)
async def process(worker: WorkerContext, document_id: int) -> None:
    """ProcessDocumentJob: the model calls, resumable; releases itself on rate limits."""
    await process_document(documents_of(worker), int(document_id), on_progress=worker.progress)


@registry.handler(name=WEBHOOK, context=True)
async def webhook(worker: WorkerContext, document_id: int, status: str) -> None:
    """Announce a completed or failed document to its callback URL."""
    await deliver(documents_of(worker), int(document_id), str(status))


@registry.on_failed(ANALYZE, context=True)
@registry.on_failed(PROCESS, context=True)
async def fail_the_document(worker: WorkerContext, job: Job, error: ErrorInfo) -> None:
    """A stage whose job failed for good (a bug, a database away for too long, a worker that
    kept dying) fails its document, instead of leaving it "analyzing" or "processing"."""
    reason = (
        f"The {'analysis' if job.name == ANALYZE else 'processing'} stopped after an internal error "
        f"({error.type}); retry the document, or see `docmill queue failed {job.id}`."
    )
    await fail_document(documents_of(worker), int(job.args[0]), reason)
