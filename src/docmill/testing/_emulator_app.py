"""The emulator's ASGI app: ``/v1/messages``, ``/v1/messages/count_tokens``, ``/v1/models``,
and the Message Batches endpoints (``_emulator_batches``).

Order of checks on ``POST /v1/messages`` (the API's, as far as clients can observe):
413 body size → 401 key → 400 version / JSON → 400 validation → 404 model →
429 spend limit → injected fault → 429 rate limit → latency → answer (JSON or SSE).
Token counting is refused too once the spend limit is reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from docmill.testing._emulator_admin import admin_router
from docmill.testing._emulator_batches import batches_router
from docmill.testing._emulator_cache import CacheUsage
from docmill.testing._emulator_models import ModelEntry
from docmill.testing._emulator_protocol import (
    ApiError,
    RequestIdMiddleware,
    authorize,
    error_body,
    error_response,
    invalid,
    new_id,
    read_body,
    request_id,
    sse,
)
from docmill.testing._emulator_replies import (
    Reply,
    compose_reply,
    count_input_tokens,
    estimate_tokens,
    stream_chunks,
)
from docmill.testing._emulator_state import EmulatorState, FaultKind

_FAULT_ERRORS = {
    FaultKind.RATE_LIMIT: (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit.",
    ),
    FaultKind.OVERLOADED: (529, "overloaded_error", "Overloaded"),
    FaultKind.API_ERROR: (500, "api_error", "Internal server error"),
    FaultKind.PERMISSION: (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
}


def _spend_limit(model: ModelEntry | None) -> ApiError:
    """The answer once the organization's monthly spend limit is reached: no ``retry-after``."""
    return ApiError(
        429,
        "rate_limit_error",
        "Your organization has reached its monthly spend limit (enforced_spend_limit_reached). "
        "Raise the limit in the Console to continue.",
        model=model,
        error_code="enforced_spend_limit_reached",
    )


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _validate(state: EmulatorState, body: dict[str, Any], *, needs_max_tokens: bool) -> ModelEntry:
    """Field checks with the API's messages, then the model lookup (404 when unknown or retired)."""
    if "model" not in body:
        raise invalid("model: Field required")
    if not isinstance(body["model"], str):
        raise invalid("model: Input should be a valid string")
    if needs_max_tokens:
        if "max_tokens" not in body:
            raise invalid("max_tokens: Field required")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in {"user", "assistant"}:
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise invalid(f"messages.{index}.content: Field required")
        final_assistant = index == len(messages) - 1 and message["role"] == "assistant"
        if message["content"] in ("", []) and not final_assistant:
            raise invalid(
                f"messages.{index}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )
    model = state.catalogue.servable(body["model"])
    if model is None:
        raise ApiError(404, "not_found_error", f"model: {body['model']}")
    if needs_max_tokens and body["max_tokens"] > model.max_tokens:
        raise invalid(
            f"max_tokens: {body['max_tokens']} > {model.max_tokens}, which is the maximum allowed "
            f"number of output tokens for {model.id}",
        )
    return model


def _message(
    message_id: str,
    model: ModelEntry,
    input_tokens: int,
    reply: Reply | None,
    cache: CacheUsage | None = None,
) -> dict[str, Any]:
    """A ``Message`` object; ``reply=None`` gives the empty one that opens a stream."""
    cache = cache or CacheUsage(input_tokens)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model.id,
        "content": [{"type": "text", "text": reply.text}] if reply else [],
        "stop_reason": reply.stop_reason if reply else None,
        "stop_sequence": reply.stop_sequence if reply else None,
        "usage": {
            "input_tokens": cache.input_tokens,
            "cache_creation_input_tokens": cache.creation,
            "cache_read_input_tokens": cache.read,
            "output_tokens": reply.output_tokens if reply else 1,
            "service_tier": "standard",
        },
    }


async def create_message(request: Request) -> Response:
    state = _state(request)
    body = await read_body(state, request)
    model = _validate(state, body, needs_max_tokens=True)
    config = state.config
    input_tokens = count_input_tokens(body)
    if input_tokens > model.max_input_tokens:
        raise invalid(f"prompt is too long: {input_tokens} tokens > {model.max_input_tokens} maximum")
    streaming = body.get("stream") is True
    if state.spend_limit_reached():
        raise _spend_limit(model)
    fault = state.draw_fault(streaming)
    if fault is FaultKind.SPEND_LIMIT:
        raise _spend_limit(model)
    if fault in _FAULT_ERRORS:
        status, error_type, message = _FAULT_ERRORS[fault]
        retry = {"retry-after": str(config.fault_retry_after_s)} if status == 429 else {}
        raise ApiError(status, error_type, message, model=model, headers=retry)
    reply = compose_reply(body)
    cache = state.prompt_cache.usage(model.id, body, input_tokens)
    denial = state.admit(model, cache.limited_tokens, reply.output_tokens)
    if denial is not None:
        raise ApiError(
            429,
            "rate_limit_error",
            f"This request would exceed the rate limit for your organization of {denial.limit} "
            f"{denial.limit_name} per minute. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. "
            "You can see the response headers for current usage. Please reduce the prompt length or the "
            "maximum tokens requested, or try again later.",
            model=model,
            headers={"retry-after": str(denial.retry_after_s)},
        )
    headers = state.rate_limit_headers(model)
    state.record_answered()
    await asyncio.sleep(config.latency_s + (config.slow_s if fault is FaultKind.SLOW else 0.0))
    message_id = new_id("msg_")
    if not streaming:
        await asyncio.sleep(config.latency_per_output_token_s * reply.output_tokens)
        state.record_tokens(cache.limited_tokens, reply.output_tokens)
        return JSONResponse(_message(message_id, model, input_tokens, reply, cache), headers=headers)
    events = _stream(
        state, message_id, model, input_tokens, reply, cache, fail=fault is FaultKind.STREAM_ERROR
    )
    headers["cache-control"] = "no-cache"
    return StreamingResponse(events, media_type="text/event-stream; charset=utf-8", headers=headers)


async def _stream(
    state: EmulatorState,
    message_id: str,
    model: ModelEntry,
    input_tokens: int,
    reply: Reply,
    cache: CacheUsage,
    *,
    fail: bool,
) -> AsyncIterator[bytes]:
    """The API's event sequence; with ``fail`` an overloaded ``error`` event replaces the second half."""
    per_token_s = state.config.latency_per_output_token_s
    chunks = stream_chunks(reply.text)
    sent = ""
    try:
        yield sse(
            "message_start",
            {"type": "message_start", "message": _message(message_id, model, input_tokens, None, cache)},
        )
        block = {"type": "text", "text": ""}
        yield sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        yield sse("ping", {"type": "ping"})
        for number, chunk in enumerate(chunks):
            if fail and number >= len(chunks) // 2:
                break
            await asyncio.sleep(per_token_s * estimate_tokens(chunk))
            sent += chunk
            delta = {"type": "text_delta", "text": chunk}
            yield sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        if fail:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            yield sse("error", {"type": "error", "error": error})
            return
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
        usage = {"output_tokens": reply.output_tokens}
        yield sse("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
        yield sse("message_stop", {"type": "message_stop"})
        sent = reply.text
    finally:
        state.record_tokens(cache.limited_tokens, estimate_tokens(sent), stream=True)


def answer_in_batch(state: EmulatorState, params: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of one Message Batch request: the Messages endpoint's checks, faults and
    reply, without rate limits or latency (batches have their own), as a ``succeeded`` or
    ``errored`` object."""
    try:
        model = _validate(state, params, needs_max_tokens=True)
        if params.get("stream") is True:
            raise invalid("stream: Streaming is not supported for requests within a Message Batch")
        input_tokens = count_input_tokens(params)
        if input_tokens > model.max_input_tokens:
            raise invalid(f"prompt is too long: {input_tokens} tokens > {model.max_input_tokens} maximum")
        fault = state.draw_fault(False)
        if state.spend_limit_reached() or fault is FaultKind.SPEND_LIMIT:
            raise _spend_limit(model)
        if fault in _FAULT_ERRORS:
            _, error_type, message = _FAULT_ERRORS[fault]
            raise ApiError(500, error_type, message)
    except ApiError as exc:
        return {"type": "errored", "error": error_body(exc.error_type, exc.message, None, exc.error_code)}
    reply = compose_reply(params)
    state.record_answered()
    state.record_tokens(input_tokens, reply.output_tokens)
    answer = _message(new_id("msg_"), model, input_tokens, reply)
    answer["usage"]["service_tier"] = "batch"
    return {"type": "succeeded", "message": answer}


async def count_tokens(request: Request) -> Response:
    state = _state(request)
    body = await read_body(state, request)
    model = _validate(state, body, needs_max_tokens=False)
    if state.spend_limit_reached():
        raise _spend_limit(model)
    return JSONResponse({"input_tokens": count_input_tokens(body)}, headers=state.rate_limit_headers(model))


async def list_models(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    params = request.query_params
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise invalid("limit: Input should be between 1 and 1000")
    lifecycles = frozenset(params.getlist("lifecycle[]") + params.getlist("lifecycle")) or frozenset(
        {"active", "deprecated"}
    )
    page = state.catalogue.page(
        limit=limit, after_id=params.get("after_id"), before_id=params.get("before_id"), lifecycles=lifecycles
    )
    return JSONResponse(page, headers=state.rate_limit_headers(None))


async def get_model(request: Request) -> Response:
    state = _state(request)
    authorize(state, request)
    name = request.path_params["model_id"]
    entry = state.catalogue.lookup(name)
    if entry is None:
        raise ApiError(404, "not_found_error", f"model: {name}")
    return JSONResponse(entry.info(), headers=state.rate_limit_headers(None))


def create_app(state: EmulatorState) -> FastAPI:
    """The ASGI app serving one emulator; its state lives on ``app.state.emulator``."""
    app = FastAPI(title="Anthropic Messages API emulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.emulator = state
    app.state.batch_resolver = lambda params: answer_in_batch(state, params)
    app.add_api_route("/v1/messages", create_message, methods=["POST"])
    app.add_api_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    app.add_api_route("/v1/models", list_models, methods=["GET"])
    app.add_api_route("/v1/models/{model_id}", get_model, methods=["GET"])
    app.include_router(batches_router)
    app.include_router(admin_router)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(state, request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = error_body(error_type, str(exc.detail), request_id(request) or None)
        return JSONResponse(body, status_code=exc.status_code)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_middleware(RequestIdMiddleware, state=state)
    return app
