"""Errors the documents domain raises on purpose.

The tree::

    DocumentError                 root of everything the documents domain raises on purpose
    ├── DocumentNotFound          no document has that id (never existed, or was deleted)
    ├── InvalidTransition         the document's status does not allow the action asked for
    ├── ResultNotReady            the result was asked for before processing completed
    ├── InvalidOptions            upload options that cannot work (unknown profile, no schema...)
    ├── UploadRejected            the upload itself cannot be stored
    │   ├── UploadTooLarge        more bytes than DOCUMENT_MAX_UPLOAD_MB allows
    │   └── EmptyUpload           no bytes at all
    ├── QueueUnavailable          the job queue could not take the next job for a document
    ├── WebhookRejected           the callback URL answered a webhook with an error status
    ├── WebhookRefused            the callback URL points into a private network
    └── InvalidSetting            an environment variable holds a value that cannot work

Analysis failures are a separate tree (``docmill.documents.analysis.errors``): a document
whose file cannot be analysed is not an error of the service, it ends ``failed`` with the
analysis ``reason``.

Every message is one sentence that says what happened and what to do.
"""

from __future__ import annotations

from docmill.queue import Fail, mask_url


class DocumentError(Exception):
    """Root of every error the documents domain raises on purpose."""


class DocumentNotFound(DocumentError):
    """No document has this id."""

    def __init__(self, document_id: int) -> None:
        super().__init__(f"Document {document_id} does not exist; list documents to find its id.")
        self.document_id = document_id


class InvalidTransition(DocumentError):
    """The document's status does not allow this action (approve a completed one, ...)."""

    def __init__(self, document_id: int, status: str, action: str, hint: str = "") -> None:
        message = f"Document {document_id} is {status}, so it cannot be {action}"
        super().__init__(f"{message}; {hint}." if hint else f"{message}.")
        self.document_id = document_id
        self.status = status
        self.action = action


class ResultNotReady(DocumentError):
    """The result was asked for before the document completed."""

    def __init__(self, document_id: int, status: str, reason: str | None = None) -> None:
        if status == "failed":
            message = (
                f"Document {document_id} failed ({reason or 'no reason recorded'}); retry it or upload again."
            )
        elif status == "cancelled":
            message = f"Document {document_id} was cancelled and has no result; retry it to process it."
        else:
            message = f"Document {document_id} is {status} and has no result yet; wait until it is completed."
        super().__init__(message)
        self.document_id = document_id
        self.status = status


class InvalidOptions(DocumentError):
    """Upload options that cannot work; the message names the option and the fix."""


class UploadRejected(DocumentError):
    """The upload cannot be stored."""


class UploadTooLarge(UploadRejected):
    """The upload is larger than the configured limit."""

    def __init__(self, limit_bytes: int) -> None:
        limit_mb = limit_bytes / (1024 * 1024)
        super().__init__(
            f"The file is larger than the upload limit of {limit_mb:g} MB; "
            "upload a smaller file or raise DOCUMENT_MAX_UPLOAD_MB."
        )
        self.limit_bytes = limit_bytes


class EmptyUpload(UploadRejected):
    """The upload has no bytes."""

    def __init__(self) -> None:
        super().__init__("The file is empty; upload a file with content.")


class QueueUnavailable(DocumentError):
    """The job for the document's next stage could not be dispatched."""

    def __init__(self, document_id: int, stage: str, cause: BaseException) -> None:
        super().__init__(
            f"Document {document_id} is saved but its {stage} job could not be queued ({cause}); "
            "check the queue connection and run retry on the document."
        )
        self.document_id = document_id
        self.stage = stage


class InvalidSetting(DocumentError):
    """An environment variable holds a value that cannot work; the message names it."""


class WebhookRejected(DocumentError):
    """The callback URL answered with an error status; the webhook job is retried."""

    def __init__(self, document_id: int, url: str, status_code: int) -> None:
        super().__init__(
            f"The callback URL {mask_url(url)} answered {status_code} to the webhook of document "
            f"{document_id}; it is retried with backoff, check the receiver."
        )
        self.document_id = document_id
        self.status_code = status_code


class WebhookRefused(DocumentError, Fail):
    """The callback URL's host is on loopback or a private network; the webhook job fails for
    good at once (``Fail``), since no retry can change where the host points."""

    def __init__(self, document_id: int, url: str, address: str) -> None:
        super().__init__(
            f"The callback URL {mask_url(url)} of document {document_id} points at {address}, a loopback, "
            "private or link-local address, so the webhook was not sent; give a public URL, or "
            "set DOCMILL_WEBHOOK_ALLOW_PRIVATE=true where webhooks go to the same network."
        )
        self.document_id = document_id
        self.address = address
