"""``/api/documents``: upload, list, inspect, steer and follow documents.

Every route calls one ``DocumentService`` method and renders its answer with the
models of ``schemas.py``; failures become JSON errors in ``errors.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from docmill.documents.errors import InvalidOptions
from docmill.documents.models import Document, utcnow
from docmill.documents.options import parse_yes_no
from docmill.documents.service import MAX_PAGE
from docmill.documents.status import Status
from docmill.web.deps import ServiceDep, SettingsDep, authorize
from docmill.web.errors import ApiError, InvalidRequest
from docmill.web.params import MAX_OFFSET, MAX_ROW_ID
from docmill.web.schemas import (
    DocumentDetail,
    DocumentEventOut,
    DocumentPage,
    ErrorBody,
    ResultOut,
    StructureOut,
)
from docmill.web.uploads import FILE_FIELD, receive_form

router = APIRouter(
    prefix="/api/documents",
    tags=["documents"],
    dependencies=[Depends(authorize)],
    responses={
        401: {"model": ErrorBody, "description": "No valid bearer token."},
        503: {"model": ErrorBody, "description": "The database or the job queue cannot be reached."},
    },
)

DocumentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The document's id.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such document."}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The document's status does not allow this."}
}
MARKDOWN = "text/markdown; charset=utf-8"
MAX_STRUCTURE_PAGE = 5000

# What DocumentOptions.parse accepts as a callback URL, for the schema: http or https, a
# host, a port from 1 to 65535 if any (a little stricter than the parser, never looser).
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
CALLBACK_URL_PATTERN = (
    r"^\s*$|^\s*[Hh][Tt][Tt][Pp][Ss]?://([^\s/?#@\[\]]*@)?[A-Za-z0-9._~%!$&'()*+,;=-]+"
    rf"(:{_PORT})?([/?#]\S*)?\s*$"
)

# A form's flag is text: what parse_yes_no reads (any case, spaces around; empty is no).
FLAG: dict[str, Any] = {
    "type": "string",
    "pattern": (
        r"^\s*(1|0|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])?\s*$"
    ),
    "description": "true or false (also yes/no, on/off, 1/0; empty: the default).",
}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary", "description": "The document."},
                        "profile": {
                            "type": "string",
                            "enum": ["summary", "extract", "custom"],
                            "default": "summary",
                        },
                        "model": {"type": "string", "description": "Default: the configured model."},
                        "callback_url": {
                            "type": "string",
                            "pattern": CALLBACK_URL_PATTERN,
                            "description": "http(s) URL told of the end (empty: none).",
                        },
                        "auto_approve": {**FLAG, "default": "false"},
                        "batch": {
                            **FLAG,
                            "description": "Send the calls by Claude's Message Batches API (half "
                            "price, answered within hours). Default: the profile's.",
                        },
                        "schema": {"type": "string", "description": "JSON Schema object (extract)."},
                        "prompt": {"type": "string", "description": "What to do (custom)."},
                        "force": {
                            **FLAG,
                            "default": "false",
                            "description": "A new document even when these bytes and options exist.",
                        },
                    },
                }
            }
        },
    }
}


async def existing_document(document_id: DocumentId, service: ServiceDep) -> Document:
    """The document, or 404 before a response starts (the event stream needs that)."""
    return await service.get(document_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentDetail,
    summary="Upload a document",
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": DocumentDetail, "description": "The same bytes and options exist: that document."},
        413: {"model": ErrorBody, "description": "The file is over the upload limit; nothing is kept."},
        415: {"model": ErrorBody, "description": "The body is not multipart/form-data."},
        422: {"model": ErrorBody, "description": "Options that cannot work, an empty file, a bad form."},
    },
)
async def upload_document(
    request: Request, response: Response, service: ServiceDep, settings: SettingsDep
) -> DocumentDetail:
    """Store the file and queue its analysis. The same bytes with the same options return
    the existing document (200) unless ``force``; a new document answers 201."""
    received_at = utcnow()
    form = await receive_form(
        request, max_file_bytes=settings.max_upload_bytes, spool_dir=settings.documents_dir / "tmp"
    )
    try:
        options = dict(form.fields)
        force = _flag(options.pop("force", ""), "force")
        declared = form.content_type if form.content_type != "application/octet-stream" else None
        document = await service.upload(form.file, form.filename, options, content_type=declared, force=force)
    finally:
        form.close()
    if document.uploaded_at < received_at:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/documents/{document.id}"
    return DocumentDetail.build(document)


@router.get("", response_model=DocumentPage, summary="List documents")
async def list_documents(
    service: ServiceDep,
    status_: Annotated[
        Status | None, Query(alias="status", description="Only documents in this status.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> DocumentPage:
    """Documents newest first, a page at a time; ``total`` counts every page."""
    return DocumentPage.build(await service.list(status_, offset=offset, limit=limit))


@router.get("/{document_id}", response_model=DocumentDetail, responses=_NOT_FOUND, summary="Show a document")
async def get_document(document_id: DocumentId, service: ServiceDep) -> DocumentDetail:
    """Status, analysis summary, estimate, progress, cost and error of one document."""
    return DocumentDetail.build(await service.get(document_id))


class StructureNotReady(ApiError):
    """The document has no structure yet (not analysed), or its analysis failed."""

    status_code = 409
    type = "structure_not_ready"


@router.get(
    "/{document_id}/structure",
    response_model=StructureOut,
    summary="Get a document's structure",
    responses={**_NOT_FOUND, 409: {"model": ErrorBody, "description": "The document is not analysed."}},
)
async def get_structure(
    document_id: DocumentId,
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many of each list.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_STRUCTURE_PAGE, description="At most this many of each.")] = 500,
) -> StructureOut:
    """The section tree (flattened, with heading paths, page ranges and parents), tables,
    counts, language and chunk map that analysis found; long lists come a page at a time."""
    document = await service.get(document_id)
    if not document.analysis:
        if document.status == Status.FAILED:
            why = f"its analysis failed ({document.error_reason or 'no reason recorded'})"
        else:
            why = f"it is {document.status} and not analysed yet; wait until it is analysed"
        raise StructureNotReady(f"Document {document_id} has no structure: {why}.")
    return StructureOut.build(document_id, document.analysis, offset=offset, limit=limit)


@router.get(
    "/{document_id}/result",
    response_model=ResultOut,
    summary="Get a document's result",
    responses={
        200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
        **_NOT_FOUND,
        409: {"model": ErrorBody, "description": "The document has not completed."},
    },
)
async def get_result(
    document_id: DocumentId,
    service: ServiceDep,
    format_: Annotated[
        Literal["json", "markdown"] | None,
        Query(alias="format", description="Default: JSON, or Markdown when Accept prefers text/markdown."),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The result as JSON, or as Markdown with ``?format=markdown`` or ``Accept: text/markdown``."""
    result, markdown = await service.result(document_id)
    if format_ == "markdown" or (format_ is None and prefers_markdown(accept)):
        return PlainTextResponse(markdown, media_type=MARKDOWN, headers={"Vary": "Accept"})
    return ResultOut(document_id=document_id, result=result)


@router.post(
    "/{document_id}/approve",
    response_model=DocumentDetail,
    responses={**_NOT_FOUND, **_CONFLICT},
    summary="Approve the estimate",
)
async def approve_document(document_id: DocumentId, service: ServiceDep) -> DocumentDetail:
    """awaiting_approval -> queued, and queue the processing."""
    return DocumentDetail.build(await service.approve(document_id))


@router.post(
    "/{document_id}/retry",
    response_model=DocumentDetail,
    responses={**_NOT_FOUND, **_CONFLICT},
    summary="Retry a failed or cancelled document",
)
async def retry_document(document_id: DocumentId, service: ServiceDep) -> DocumentDetail:
    """Back to the first stage the document had not finished, and queue that stage."""
    return DocumentDetail.build(await service.retry(document_id))


@router.post(
    "/{document_id}/cancel",
    response_model=DocumentDetail,
    responses={**_NOT_FOUND, **_CONFLICT},
    summary="Cancel a document",
)
async def cancel_document(document_id: DocumentId, service: ServiceDep) -> DocumentDetail:
    """Any status before the end -> cancelled; a running job stops at its next chunk."""
    return DocumentDetail.build(await service.cancel(document_id))


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_NOT_FOUND,
    summary="Delete a document",
)
async def delete_document(document_id: DocumentId, service: ServiceDep) -> Response:
    """The document, its events and saved calls; its file unless another document shares it."""
    await service.delete(document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{document_id}/events",
    response_class=EventSourceResponse,
    responses=_NOT_FOUND,
    summary="Follow a document's status changes (server-sent events)",
)
async def follow_document(
    request: Request,
    document: Annotated[Document, Depends(existing_document)],
    after: Annotated[int | None, Depends(event_cursor)],
    service: ServiceDep,
) -> AsyncIterable[ServerSentEvent]:
    """Every status change as an ``event: status`` with a ``DocumentEventOut`` as data, from
    the first (or after ``Last-Event-ID``), until the document reaches a terminal status;
    then one ``event: end``, after which a client should close (not reconnect)."""
    final = document.status
    async for event in service.follow(document.id, after=after, poll_s=request.app.state.sse_poll_s):
        final = event.to_status
        yield ServerSentEvent(data=DocumentEventOut.build(event), event="status", id=str(event.id))
    yield ServerSentEvent(data={"document_id": document.id, "status": final}, event="end")


def prefers_markdown(accept: str | None) -> bool:
    """Whether ``Accept`` names ``text/markdown`` with no lower preference than JSON."""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = weight
    markdown = weights.get("text/markdown", 0.0)
    return markdown > 0 and markdown >= weights.get("application/json", 0.0)


def event_cursor(
    last_event_id: Annotated[str | None, Header(description="Resume after this event id.")] = None,
) -> int | None:
    """The ``Last-Event-ID`` a reconnecting client sends, checked before the stream starts."""
    if last_event_id is None or not last_event_id.strip():
        return None
    cursor = last_event_id.strip()
    # Plain digits only (int() would take "1_0" and other scripts' digits), and no number
    # past the database's ids, which the query could not bind.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 10 or int(cursor) > MAX_ROW_ID:
        raise InvalidRequest(
            f"Last-Event-ID {last_event_id!r} is not an event id; send the id of the last event received."
        )
    return int(cursor)


def _flag(value: str, name: str) -> bool:
    parsed = parse_yes_no(value)
    if parsed is not None:
        return parsed
    raise InvalidOptions(f"{name} must be true or false, not {value!r}.")
