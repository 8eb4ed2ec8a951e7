"""The emulator's Message Batches endpoints, as the public API reference describes them.

    POST   /v1/messages/batches                       create: ``{"requests": [{custom_id, params}]}``
    GET    /v1/messages/batches                       list, newest first (limit, after_id, before_id)
    GET    /v1/messages/batches/{id}                  retrieve (poll until ``ended``)
    POST   /v1/messages/batches/{id}/cancel           cancel (``canceling``, then ``ended``)
    DELETE /v1/messages/batches/{id}                  delete an ended batch
    GET    /v1/messages/batches/{id}/results          the results as JSONL, once ended

The body is checked as the API checks it when the batch is created: a list of 1 to
100,000 requests, each ``custom_id`` 1-64 letters, digits, ``-`` or ``_`` and unique, each
``params`` an object. The params themselves are checked when the request is answered, as
the API does, with the Messages endpoint's rules: one that endpoint would refuse ends
``errored`` with its error. Answers carry ``usage.service_tier = "batch"`` (the API bills
them at half price; the usage fields are the same). How batches end: ``_emulator_batch_store``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docmill.testing._emulator_batch_store import Batch, Resolver
from docmill.testing._emulator_protocol import ApiError, authorize, invalid, new_id, read_body

if TYPE_CHECKING:
    from docmill.testing._emulator_state import EmulatorState

MAX_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

batches_router = APIRouter(prefix="/v1/messages/batches")


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _resolver(request: Request) -> Resolver:
    resolve: Resolver = request.app.state.batch_resolver
    return resolve


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _requests(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    requests = body.get("requests")
    if requests is None:
        raise invalid("requests: Field required")
    if not isinstance(requests, list):
        raise invalid("requests: Input should be a valid list")
    if not requests:
        raise invalid("requests: List should have at least 1 item after validation, not 0")
    if len(requests) > MAX_REQUESTS:
        raise invalid(f"requests: List should have at most {MAX_REQUESTS} items after validation")
    seen: set[str] = set()
    checked: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(requests):
        if not isinstance(item, dict):
            raise invalid(f"requests.{index}: Input should be a valid dictionary")
        custom_id = item.get("custom_id")
        if custom_id is None:
            raise invalid(f"requests.{index}.custom_id: Field required")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            raise invalid(
                f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            raise invalid(f"requests: custom_id {custom_id!r} is used more than once; each must be unique")
        seen.add(custom_id)
        params = item.get("params")
        if params is None:
            raise invalid(f"requests.{index}.params: Field required")
        if not isinstance(params, dict):
            raise invalid(f"requests.{index}.params: Input should be a valid dictionary")
        extra = sorted(set(item) - {"custom_id", "params"})
        if extra:
            raise invalid(f"requests.{index}.{extra[0]}: Extra inputs are not permitted")
        checked.append((custom_id, params))
    return checked


def _found(batch: Batch | None, batch_id: str) -> Batch:
    if batch is None:
        raise ApiError(404, "not_found_error", f"message_batch: {batch_id}")
    return batch


async def create_batch(request: Request) -> Response:
    state = _state(request)
    body = await read_body(state, request)
    requests = _requests(body)
    if state.spend_limit_reached():
        raise ApiError(
            429,
            "rate_limit_error",
            "Your organization has reached its monthly spend limit (enforced_spend_limit_reached). "
            "Raise the limit in the Console to continue.",
            error_code="enforced_spend_limit_reached",
        )
    config = state.config
    batch = state.batches.create(
        new_id("msgbatch_"), requests, processing_s=config.batch_processing_s, expiry_s=config.batch_expiry_s
    )
    return JSONResponse(batch.to_json(_base_url(request)), headers=state.rate_limit_headers(None))


async def retrieve_batch(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    batch_id = request.path_params["batch_id"]
    batch = _found(state.batches.look(batch_id, _resolver(request)), batch_id)
    return JSONResponse(batch.to_json(_base_url(request)))


async def list_batches(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    params = request.query_params
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise invalid("limit: Input should be between 1 and 1000")
    batches = state.batches.newest_first(_resolver(request))
    ids = [batch.id for batch in batches]
    if params.get("after_id") in ids:
        start = ids.index(params["after_id"]) + 1
        page = batches[start : start + limit]
        has_more = start + limit < len(batches)
    elif params.get("before_id") in ids:
        end = ids.index(params["before_id"])
        page = batches[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        page, has_more = batches[:limit], len(batches) > limit
    base_url = _base_url(request)
    return JSONResponse(
        {
            "data": [batch.to_json(base_url) for batch in page],
            "has_more": has_more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
    )


async def cancel_batch(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    batch_id = request.path_params["batch_id"]
    batch = _found(state.batches.cancel(batch_id, _resolver(request)), batch_id)
    return JSONResponse(batch.to_json(_base_url(request)))


async def delete_batch(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    batch_id = request.path_params["batch_id"]
    batch = _found(state.batches.look(batch_id, _resolver(request)), batch_id)
    if batch.ended_at is None:
        raise invalid(f"Batch {batch_id} cannot be deleted while it is processing; cancel it first.")
    state.batches.delete(batch_id)
    return JSONResponse({"id": batch_id, "type": "message_batch_deleted"})


async def batch_results(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    batch_id = request.path_params["batch_id"]
    batch = _found(state.batches.look(batch_id, _resolver(request)), batch_id)
    if batch.ended_at is None:
        raise invalid(f"Batch {batch_id} has not finished processing; its results exist once it has ended.")
    lines = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in batch.results)
    return Response(lines, media_type="application/x-jsonl")


batches_router.add_api_route("", create_batch, methods=["POST"])
batches_router.add_api_route("", list_batches, methods=["GET"])
batches_router.add_api_route("/{batch_id}", retrieve_batch, methods=["GET"])
batches_router.add_api_route("/{batch_id}", delete_batch, methods=["DELETE"])
batches_router.add_api_route("/{batch_id}/cancel", cancel_batch, methods=["POST"])
batches_router.add_api_route("/{batch_id}/results", batch_results, methods=["GET"])
