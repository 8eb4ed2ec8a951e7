"""Document statuses, the moves allowed between them, and the one function that moves.

::

    uploaded ─► analyzing ─► analyzed ─► awaiting_approval ─► queued ─► processing ─► completed
                                   └──────────(auto-approved)────────┘
    any status before completed ─► failed | cancelled
    failed | cancelled ─► uploaded | analyzed | awaiting_approval | queued   (retry, at the
                                                                              stage it had reached)

``TERMINAL`` statuses end the pipeline: nothing happens to such a document until a
person retries it (failed, cancelled) or deletes it. ``change_status`` is the only
place a status changes: it checks the move against ``ALLOWED``, stamps the stage's
timestamp, and writes the ``DocumentEvent``, in the caller's transaction. The update
is conditional on the status the caller read, so two processes racing to move the
same document cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from docmill.documents.errors import InvalidTransition
from docmill.documents.models import Document, DocumentEvent, utcnow


class Status(StrEnum):
    UPLOADED = "uploaded"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})
_RESUME_AT = frozenset({Status.UPLOADED, Status.ANALYZED, Status.AWAITING_APPROVAL, Status.QUEUED})

ALLOWED: Mapping[Status, frozenset[Status]] = {
    Status.UPLOADED: frozenset({Status.ANALYZING, Status.FAILED, Status.CANCELLED}),
    Status.ANALYZING: frozenset({Status.ANALYZED, Status.FAILED, Status.CANCELLED}),
    Status.ANALYZED: frozenset({Status.AWAITING_APPROVAL, Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.AWAITING_APPROVAL: frozenset({Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.QUEUED: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: _RESUME_AT,
    Status.CANCELLED: _RESUME_AT,
}

# The timestamp column a status stamps when a document enters it.
STAMPS: Mapping[Status, str] = {
    Status.ANALYZED: "analyzed_at",
    Status.PROCESSING: "processing_started_at",
    Status.COMPLETED: "completed_at",
    Status.FAILED: "failed_at",
    Status.CANCELLED: "cancelled_at",
}

# What a refused move is called in the error message ("cannot be <action>").
_ACTIONS: Mapping[Status, str] = {
    Status.ANALYZING: "analysed",
    Status.ANALYZED: "marked analysed",
    Status.AWAITING_APPROVAL: "put up for approval",
    Status.QUEUED: "queued for processing",
    Status.PROCESSING: "processed",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


def can_move(current: Status | str, to: Status | str) -> bool:
    return Status(to) in ALLOWED[Status(current)]


def change_status(
    session: Session,
    document: Document,
    to: Status,
    message: str = "",
    *,
    values: Mapping[str, Any] | None = None,
) -> DocumentEvent:
    """Move ``document`` to ``to`` in ``session``'s transaction and record the event.

    ``values`` are further columns to set in the same UPDATE (``error_reason``,
    ``analysis``...). Raises ``InvalidTransition`` when ``ALLOWED`` forbids the move, or
    when another process changed the status since ``document`` was read. The caller
    commits (or rolls back: then neither the status nor the event are kept).
    """
    current = Status(document.status)
    if to not in ALLOWED[current]:
        raise InvalidTransition(document.id, current.value, _ACTIONS.get(to, to.value), _hint(current))
    now = utcnow()
    changes: dict[str, Any] = {"status": to.value, "updated_at": now, **(values or {})}
    stamp = STAMPS.get(to)
    if stamp is not None:
        changes[stamp] = now
    result = session.execute(
        update(Document)
        .where(Document.id == document.id, Document.status == current.value)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(
            document.id, "changing meanwhile", _ACTIONS.get(to, to.value), "read it again and retry"
        )
    for name, value in changes.items():  # keep the loaded object in step, without a second UPDATE
        set_committed_value(document, name, value)
    event = DocumentEvent(
        document_id=document.id, at=now, from_status=current.value, to_status=to.value, message=message
    )
    session.add(event)
    session.flush()
    return event


def _hint(current: Status) -> str:
    if current is Status.COMPLETED:
        return "it is finished; upload the file again to process it anew"
    if current in RETRYABLE:
        return "retry it first"
    if current is Status.AWAITING_APPROVAL:
        return "approve or cancel it"
    return "wait for its current stage to finish"
