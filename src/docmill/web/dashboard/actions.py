"""Every change the dashboard makes: POST only, operator role, CSRF token checked.

Each action does one thing through the backend or the documents service, then sends the
browser back (303) to the page it came from with one sentence saying what happened.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from docmill.documents.errors import DocumentError
from docmill.llm.circuit import close_circuit
from docmill.supervisor.control import BackendControlStore, start_workers, stop_workers
from docmill.web.dashboard.access import Operator, check_csrf, viewer
from docmill.web.dashboard.deps import BackendDep, ServiceDep, SettingsDep
from docmill.web.dashboard.failures import forget_where, matches, retry_all, retry_where
from docmill.web.dashboard.reads import circuit_account
from docmill.web.dashboard.rendering import back
from docmill.web.errors import ApiError
from docmill.web.uploads import receive_form

router = APIRouter(prefix="/actions", include_in_schema=False)
Text = Annotated[str, Form(max_length=500)]
ReturnTo = Annotated[str, Form(max_length=2000)]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------- failed jobs
@router.post("/failed/retry")
async def retry_failed(
    request: Request, _: Operator, backend: BackendDep, job_id: Text, return_to: ReturnTo = "/failed"
) -> Response:
    moved = await backend.retry_failed([job_id])
    text = f"Retried job {job_id}." if moved else f"Job {job_id} is no longer failed; nothing retried."
    return back(request, return_to, text)


@router.post("/failed/forget")
async def forget_failed(
    request: Request, _: Operator, backend: BackendDep, job_id: Text, return_to: ReturnTo = "/failed"
) -> Response:
    gone = await backend.forget_failed(job_id)
    return back(request, return_to, f"Forgot job {job_id}." if gone else f"Job {job_id} was not failed.")


@router.post("/failed/retry-group")
async def retry_group(
    request: Request,
    _: Operator,
    backend: BackendDep,
    reason: Text,
    queue: Text = "",
    return_to: ReturnTo = "/failed",
) -> Response:
    moved = await retry_where(backend, queue or None, lambda job: matches(job, reason=reason))
    return back(request, return_to, f"Retried {_plural(moved, 'job')} failed with {reason}.")


@router.post("/failed/forget-group")
async def forget_group(
    request: Request,
    _: Operator,
    backend: BackendDep,
    reason: Text,
    queue: Text = "",
    return_to: ReturnTo = "/failed",
) -> Response:
    gone = await forget_where(backend, queue or None, lambda job: matches(job, reason=reason))
    return back(request, return_to, f"Forgot {_plural(gone, 'job')} failed with {reason}.")


@router.post("/failed/retry-matching")
async def retry_matching(
    request: Request,
    _: Operator,
    backend: BackendDep,
    queue: Text = "",
    q: Text = "",
    return_to: ReturnTo = "/failed",
) -> Response:
    if q:
        moved = await retry_where(backend, queue or None, lambda job: matches(job, text=q))
    else:
        moved = await retry_all(backend, queue or None)
    where = f" on {queue}" if queue else ""
    return back(request, return_to, f"Retried {_plural(moved, 'failed job')}{where}.")


# ---------------------------------------------------------------------------- queues and workers
@router.post("/queues/pause")
async def pause_queue(
    request: Request, _: Operator, backend: BackendDep, queue: Text, return_to: ReturnTo = "/workers"
) -> Response:
    await backend.pause(queue)
    return back(request, return_to, f"Paused {queue}: workers take no new job from it.")


@router.post("/queues/continue")
async def continue_queue(
    request: Request, _: Operator, backend: BackendDep, queue: Text, return_to: ReturnTo = "/workers"
) -> Response:
    await backend.resume(queue)
    return back(request, return_to, f"{queue} continues.")


@router.post("/workers/restart")
async def restart_workers(
    request: Request, _: Operator, backend: BackendDep, return_to: ReturnTo = "/workers"
) -> Response:
    await backend.request_restart()
    return back(request, return_to, "Every worker restarts after its current job.")


@router.post("/workers/stop")
async def stop(
    request: Request, _: Operator, backend: BackendDep, return_to: ReturnTo = "/workers"
) -> Response:
    await stop_workers(BackendControlStore(backend))
    return back(request, return_to, "Workers are stopping on every host; masters stay up.")


@router.post("/workers/start")
async def start(
    request: Request, _: Operator, backend: BackendDep, return_to: ReturnTo = "/workers"
) -> Response:
    was = await start_workers(BackendControlStore(backend))
    return back(request, return_to, "Workers start again." if was else "Workers were not stopped.")


@router.post("/llm/continue")
async def continue_llm(
    request: Request, _: Operator, backend: BackendDep, settings: SettingsDep, return_to: ReturnTo = "/money"
) -> Response:
    was = await close_circuit(backend, circuit_account(settings.llm))
    if was is None:
        return back(request, return_to, "LLM calls were not stopped.")
    return back(request, return_to, "LLM calls resume on every worker; retry the documents that failed.")


# ---------------------------------------------------------------------------- documents
_DOCUMENT_ACTIONS = {"approve", "reject", "retry", "cancel"}
_UPLOAD_OPTIONS = {"profile", "model", "prompt", "schema"}


@router.post("/documents/upload")
async def upload(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    session = viewer(request)
    try:
        form = await receive_form(
            request, max_file_bytes=settings.max_upload_bytes, spool_dir=settings.documents_dir / "tmp"
        )
    except ApiError as exc:
        return back(request, "/documents", f"Upload refused: {exc.message}")
    except DocumentError as exc:  # over the size limit: nothing was kept
        return back(request, "/documents", f"Upload refused: {exc}")
    try:
        fields = dict(form.fields)
        check_csrf(session, fields)
        if not session.may_act:
            return back(request, "/documents", f"{session.user} may look but not act.")
        options = {
            k: v for k, v in fields.items() if k in {"profile", "model", "prompt", "schema"} and v.strip()
        }
        if fields.get("auto_approve"):
            options["auto_approve"] = "yes"
        declared = form.content_type if form.content_type != "application/octet-stream" else None
        document = await service.upload(form.file, form.filename, options, content_type=declared)
    except DocumentError as exc:
        return back(request, "/documents", f"Upload refused: {exc}")
    finally:
        form.close()
    return back(request, f"/documents/{document.id}", f"Uploaded {document.name} as document {document.id}.")


@router.post("/documents/bulk")
async def bulk(request: Request, session: Operator, service: ServiceDep) -> Response:
    form = await request.form()
    operation = str(form.get("operation", ""))
    return_to = str(form.get("return_to", "/approvals"))
    ids = [int(v) for v in form.getlist("document_id") if isinstance(v, str) and v.isdigit()]
    if operation not in {"approve", "reject"} or not ids:
        return back(request, return_to, "Select documents, then approve or reject them.")
    done, refused = 0, []
    for document_id in ids[:500]:
        try:
            await _apply(service, operation, document_id, session.user)
            done += 1
        except DocumentError as exc:
            refused.append(str(exc))
    past = "approved" if operation == "approve" else "rejected"
    text = f"{_plural(done, 'document')} {past}."
    if refused:
        text += f" {len(refused)} refused: {refused[0]}"
    return back(request, return_to, text)


@router.post("/documents/{document_id}/{operation}")
async def document_action(
    request: Request,
    document_id: int,
    operation: str,
    session: Operator,
    service: ServiceDep,
    return_to: ReturnTo = "",
) -> Response:
    target = return_to or f"/documents/{document_id}"
    if operation not in _DOCUMENT_ACTIONS:
        return back(
            request, target, f"There is no action {operation[:40]!r}; use approve, reject, retry or cancel."
        )
    try:
        await _apply(service, operation, document_id, session.user)
    except DocumentError as exc:
        return back(request, target, str(exc))
    past = {"approve": "approved", "reject": "rejected", "retry": "retried", "cancel": "cancelled"}[operation]
    return back(request, target, f"Document {document_id} {past}.")


async def _apply(service: ServiceDep, operation: str, document_id: int, user: str) -> None:
    if operation == "approve":
        await service.approve(document_id)
    elif operation == "reject":
        await service.cancel(document_id, f"rejected in the dashboard by {user}")
    elif operation == "retry":
        await service.retry(document_id)
    else:
        await service.cancel(document_id, f"cancelled in the dashboard by {user}")
