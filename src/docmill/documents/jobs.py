"""The pipeline's queue handlers: ``docmill work --app docmill.documents.jobs``.

=====================  ==========================  ====================================
handler                queue (default)             does
=====================  ==========================  ====================================
documents.analyze      document-analysis           ``analyzing.analyze_document``
documents.process      document-processing         ``processing.process_document``
documents.webhook      default                     ``webhook.deliver``
=====================  ==========================  ====================================

Queues, tries, timeouts and backoff are set where the jobs are dispatched
(``dispatch.py``), from ``DocumentSettings``. Each handler takes its dependencies from
the process's ``DocumentContext`` (built from the environment on the first job).
"""

from __future__ import annotations

from docmill.documents.analyzing import analyze_document
from docmill.documents.context import current_context
from docmill.documents.dispatch import ANALYZE, PROCESS, WEBHOOK
from docmill.documents.pipeline import fail_document
from docmill.documents.processing import process_document
from docmill.documents.webhook import deliver
from docmill.queue import ErrorInfo, Job, Registry

registry = Registry()


@registry.handler(name=ANALYZE)
async def analyze(document_id: int) -> None:
    """AnalyzeDocumentStructureJob: parse, estimate, approve (or wait for approval)."""
    await analyze_document(await current_context(), int(document_id))


@registry.handler(name=PROCESS)
async def process(document_id: int) -> None:
    """ProcessDocumentJob: the model calls, resumable; releases itself on rate limits."""
    await process_document(await current_context(), int(document_id))


@registry.handler(name=WEBHOOK)
async def webhook(document_id: int, status: str) -> None:
    """Announce a completed or failed document to its callback URL."""
    await deliver(await current_context(), int(document_id), str(status))


@registry.on_failed(ANALYZE)
@registry.on_failed(PROCESS)
async def fail_the_document(job: Job, error: ErrorInfo) -> None:
    """A stage whose job failed for good (a bug, a database away for too long, a worker that
    kept dying) fails its document, instead of leaving it "analyzing" or "processing"."""
    reason = (
        f"The {'analysis' if job.name == ANALYZE else 'processing'} stopped after an internal error "
        f"({error.type}); retry the document, or see `docmill queue failed {job.id}`."
    )
    await fail_document(await current_context(), int(job.args[0]), reason)
