"""The jobs of the pipeline and how each is dispatched: names, queues, tries, tags.

Every job names one document and carries the tag ``document:<id>``, so an operator can
find a document's jobs (``docmill queue tagged document:42``). Each has a unique key per
document, so dispatching again while one is pending or running is a no-op: re-queueing
a document (retry, a redelivered job finishing its stage) can never run its stage twice
at once.
"""

from __future__ import annotations

from docmill.documents.settings import DocumentSettings
from docmill.queue import Client, JobOptions

ANALYZE = "documents.analyze"
PROCESS = "documents.process"
WEBHOOK = "documents.webhook"


def tag(document_id: int) -> str:
    return f"document:{document_id}"


def analysis_options(settings: DocumentSettings, document_id: int) -> JobOptions:
    """The seed's analysis job: ``ANALYSIS_JOB_MAX_TRIES``, ``_TIMEOUT``, ``_RETRY_DELAY``."""
    return JobOptions(
        queue=settings.analysis_queue,
        tries=settings.analysis_tries,
        timeout_s=settings.analysis_timeout_s,
        backoff_s=settings.analysis_retry_delay_s,
        tags=(tag(document_id),),
        unique_key=f"{ANALYZE}:{document_id}",
    )


def processing_options(settings: DocumentSettings, document_id: int) -> JobOptions:
    return JobOptions(
        queue=settings.processing_queue,
        tries=settings.processing_tries,
        # An attempt that saved a call does not count toward ``tries`` (WorkerContext.progress),
        # so a document whose handler raises after each saved call is bounded by its errors.
        max_exceptions=settings.processing_tries,
        timeout_s=settings.processing_timeout_s,
        backoff_s=(30, 120, 600),
        tags=(tag(document_id),),
        unique_key=f"{PROCESS}:{document_id}",
    )


def webhook_options(settings: DocumentSettings, document_id: int, status: str) -> JobOptions:
    return JobOptions(
        queue=settings.webhook_queue,
        tries=settings.webhook_tries,
        timeout_s=settings.webhook_timeout_s * 2 + 5,
        backoff_s=settings.webhook_backoff_s,
        tags=(tag(document_id),),
        unique_key=f"{WEBHOOK}:{document_id}:{status}",
    )


async def dispatch_analysis(client: Client, settings: DocumentSettings, document_id: int) -> str:
    return await client.dispatch(ANALYZE, document_id, options=analysis_options(settings, document_id))


async def dispatch_processing(client: Client, settings: DocumentSettings, document_id: int) -> str:
    return await client.dispatch(PROCESS, document_id, options=processing_options(settings, document_id))


async def dispatch_webhook(client: Client, settings: DocumentSettings, document_id: int, status: str) -> str:
    return await client.dispatch(
        WEBHOOK, document_id, status, options=webhook_options(settings, document_id, status)
    )
