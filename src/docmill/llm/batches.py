"""Claude's Message Batches API through the ``anthropic`` SDK: many calls at half price, answered later.

``BatchClient`` sends ``LLMRequest``s in the very form ``AnthropicProvider`` sends them
(the dated model id, the JSON instruction when JSON is asked, one user turn), each under a
``custom_id`` of the caller's choosing, and reads the answers back:

    submit(items)      POST /v1/messages/batches; the batch starts ``in_progress``
    retrieve(id)       its ``processing_status`` and ``request_counts`` (poll this)
    wait(id)           retrieve until ``ended``, the pause growing (``poll_delay_s``)
    results(id)        one ``BatchResult`` per request, as the JSONL stream delivers them
    cancel(id)         ``canceling``, then ``ended``: answers already made are still results
    recent(since)      the batches created since then, newest first (to find one whose
                       creation was answered but whose id was never kept)
    first_custom_id    the ``custom_id`` of an ended batch's first result: whose batch it is

A succeeded request is an ``LLMResponse`` priced at the Batch API's discount
(``PriceTable.batch_discount``); an errored one carries the ``LLMError`` the same answer
would have raised from the Messages endpoint; a canceled or expired one carries neither.
Errors of the calls themselves are the ``docmill.llm.errors`` tree, as for the provider.
With an ``LLMCircuit`` a spend-limit or credential error stops the key's calls cluster-wide.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import anthropic
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from docmill.llm.circuit import LLMCircuit, trips_circuit
from docmill.llm.errors import LLMError, ModelUnavailable, PermanentLLMError
from docmill.llm.jsonout import extract_json_object, with_json_instruction
from docmill.llm.limits import key_fingerprint
from docmill.llm.models import resolve_model, retirement_message
from docmill.llm.pricing import PriceTable
from docmill.llm.providers._http import error_for_status
from docmill.llm.providers.anthropic import DEFAULT_TIMEOUT_S, map_anthropic_error
from docmill.llm.rate_store import RateStore
from docmill.llm.settings import LLMSettings, mask_url
from docmill.llm.types import LLMRequest, LLMResponse, Usage

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
ResultKind = Literal["succeeded", "errored", "canceled", "expired"]

MIN_POLL_S = 30.0
MAX_POLL_S = 600.0

# The HTTP status each error type of an errored batch request would have had as an answer.
_STATUS_OF_ERROR = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def poll_delay_s(elapsed_s: float, *, min_s: float = MIN_POLL_S, max_s: float = MAX_POLL_S) -> float:
    """The pause before looking at a batch again, ``elapsed_s`` after it was sent: a quarter of
    the time it has run so far, between ``min_s`` and ``max_s`` (a batch that has taken an hour
    will not end in the next second, and each look is a request)."""
    return max(min_s, min(max_s, elapsed_s / 4.0))


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch and the id its answer comes back under."""

    custom_id: str
    request: LLMRequest


@dataclass(frozen=True)
class BatchState:
    """A batch as the API described it last."""

    id: str
    status: ProcessingStatus
    counts: dict[str, int]
    created_at: datetime
    expires_at: datetime

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def of(cls, batch: MessageBatch) -> BatchState:
        return cls(
            id=batch.id,
            status=batch.processing_status,
            counts=batch.request_counts.model_dump(),
            created_at=batch.created_at,
            expires_at=batch.expires_at,
        )


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one request: an answer (``succeeded``), an error, or neither."""

    custom_id: str
    kind: ResultKind
    response: LLMResponse | None = None
    error: LLMError | None = field(default=None)


class BatchClient:
    """Message Batches of one API key; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str,
        prices: PriceTable,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        circuit: LLMCircuit | None = None,
    ) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self._base_url = mask_url(str(self._client.base_url).rstrip("/"))
        self._prices = prices
        self._circuit = circuit

    def __repr__(self) -> str:
        return f"BatchClient(base_url={self._base_url!r})"

    async def submit(self, items: Sequence[BatchItem]) -> BatchState:
        """Create one batch of ``items`` (at least one); raises ``LLMError``."""
        if not items:
            raise ValueError("a batch holds at least one request")
        requests: list[Any] = [{"custom_id": i.custom_id, "params": self._params(i.request)} for i in items]
        model = items[0].request.model
        batch = await self._call(model, lambda: self._client.messages.batches.create(requests=requests))
        return BatchState.of(batch)

    async def retrieve(self, batch_id: str) -> BatchState:
        return BatchState.of(await self._call("", lambda: self._client.messages.batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchState:
        return BatchState.of(await self._call("", lambda: self._client.messages.batches.cancel(batch_id)))

    async def wait(
        self,
        batch_id: str,
        *,
        min_poll_s: float = MIN_POLL_S,
        max_poll_s: float = MAX_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> BatchState:
        """Retrieve the batch until it has ended, pausing ``poll_delay_s`` between looks."""
        started = clock()
        while not (state := await self.retrieve(batch_id)).ended:
            await asyncio.sleep(poll_delay_s(clock() - started, min_s=min_poll_s, max_s=max_poll_s))
        return state

    async def results(
        self, batch_id: str, request_for: Callable[[str], LLMRequest | None]
    ) -> AsyncIterator[BatchResult]:
        """The result of each request of an ended batch, in the order the API streams them;
        ``request_for(custom_id)`` says how each answer is priced and read (None: skip it)."""
        decoder = await self._call("", lambda: self._client.messages.batches.results(batch_id))
        try:
            async for line in decoder:
                request = request_for(line.custom_id)
                if request is not None:
                    yield self._result(line, request)
        finally:
            await decoder.close()

    async def recent(self, since: datetime) -> list[BatchState]:
        """Batches created at or after ``since``, newest first."""
        found: list[BatchState] = []
        page = await self._call("", lambda: self._client.messages.batches.list(limit=100))
        async for batch in page:
            if batch.created_at < since:
                break
            found.append(BatchState.of(batch))
        return found

    async def first_custom_id(self, batch_id: str) -> str | None:
        """The ``custom_id`` of the first result of an ended batch (None when it has none)."""
        decoder = await self._call("", lambda: self._client.messages.batches.results(batch_id))
        try:
            async for line in decoder:
                first: str = line.custom_id
                return first
            return None
        finally:
            await decoder.close()

    async def aclose(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ helpers
    def _params(self, request: LLMRequest) -> dict[str, Any]:
        retired = retirement_message(request.model)
        if retired is not None:
            raise ModelUnavailable(retired, model=request.model, retired=True)
        system = with_json_instruction(request.system) if request.json_output else request.system
        return {
            "model": resolve_model(request.model),
            "max_tokens": request.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": request.prompt}],
        }

    async def _call(self, model: str, call: Callable[[], Any]) -> Any:
        if self._circuit is not None:
            await self._circuit.check()
        try:
            return await call()
        except anthropic.APIError as exc:
            error = map_anthropic_error(exc, model, base_url=self._base_url)
            if self._circuit is not None and isinstance(error, PermanentLLMError) and trips_circuit(error):
                raise await self._circuit.trip(error) from exc
            raise error from exc

    def _result(self, line: MessageBatchIndividualResponse, request: LLMRequest) -> BatchResult:
        result = line.result
        if result.type == "succeeded":
            message = result.message
            text = "".join(block.text for block in message.content if block.type == "text")
            if request.json_output:
                found = extract_json_object(text)
                # An answer without JSON is paid for: kept as it is, as the provider keeps it.
                text = text if found is None else json.dumps(found, ensure_ascii=False)
            usage = Usage(
                input_tokens=message.usage.input_tokens,
                output_tokens=message.usage.output_tokens,
                cache_read_input_tokens=message.usage.cache_read_input_tokens or 0,
                cache_creation_input_tokens=message.usage.cache_creation_input_tokens or 0,
            )
            response = LLMResponse(
                text=text,
                usage=usage,
                model=message.model,
                provider="anthropic",
                request_id=message.id,
                cost_usd=self._cost(message.model, request.model, usage),
            )
            return BatchResult(line.custom_id, "succeeded", response=response)
        if result.type == "errored":
            error = result.error.error
            status = _STATUS_OF_ERROR.get(error.type, 500)
            mapped = error_for_status(status, message=error.message, headers={}, model=request.model)
            return BatchResult(line.custom_id, "errored", error=mapped)
        return BatchResult(line.custom_id, result.type)

    def _cost(self, answered_by: str, requested: str, usage: Usage) -> float:
        for model in (answered_by, resolve_model(requested)):
            if self._prices.has_price(model):
                return self._prices.cost_usd(model, usage, batch=True)
        return 0.0


def build_batch_client(settings: LLMSettings, *, rate_store: RateStore | None = None) -> BatchClient | None:
    """The batch client of the settings' Claude key, or None when calls do not go to Claude
    (the Message Batches API is Claude's alone)."""
    if settings.resolved_provider() != "anthropic" or not settings.anthropic_api_key:
        return None
    circuit = (
        LLMCircuit(rate_store, key_fingerprint(settings.anthropic_api_key))
        if rate_store is not None
        else None
    )
    return BatchClient(
        api_key=settings.anthropic_api_key,
        prices=settings.prices,
        base_url=settings.anthropic_base_url,
        timeout_s=settings.request_timeout_s,
        circuit=circuit,
    )
