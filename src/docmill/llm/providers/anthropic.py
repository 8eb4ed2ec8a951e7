"""Claude through the ``anthropic`` SDK (``AsyncAnthropic``), with the SDK's retries off.

Retrying is the queue's job: a 429/529 becomes ``RateLimited`` / ``Overloaded`` with
the API's ``retry-after`` and the job is released for that long without spending an
attempt. Every call passes the shared limiter: ``admit`` before it, ``learn`` from every
answer's ``anthropic-ratelimit-*`` headers (errors included), and ``settle`` to the usage
of an answer; a request the limits show can never fit fails with ``RequestExceedsLimit``.
``count_tokens`` asks the API's counting endpoint and falls back to the offline estimate
when that fails for any reason but the key or the account's spend limit. The limiter takes
the API's count: the one the estimate kept (``LLMRequest.input_tokens``), else a count made
just before the call; the offline estimate only when the API cannot count. A prefix shared
by a document's calls is marked for the prompt cache where it pays (``llm.prompt_cache``).

With an ``LLMCircuit`` a spend-limit, billing or credential error opens the key's circuit for
the whole cluster, and every later Messages call or token count of any process raises that
error without calling, until ``docmill queue continue-llm`` (see ``docmill.llm.circuit``).
With a ``RefusalCounter`` every 429 and 529 a Messages call receives is counted per model
in the shared store, for the dashboard and ``/metrics`` (``docmill.llm.refusals``).

``LLMRequest.temperature`` is not sent: the Messages API as the SDK (2.14) describes
it has no such parameter any more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import anthropic
from anthropic.types import Message

from docmill.llm.circuit import LLMCircuit, trips_circuit
from docmill.llm.errors import (
    UNAVAILABLE_RETRY_AFTER_S,
    LLMError,
    MalformedOutput,
    ModelUnavailable,
    Overloaded,
    PermanentLLMError,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
)
from docmill.llm.jsonout import extract_json_object, with_json_instruction
from docmill.llm.models import deprecation_date, resolve_model, retirement_message
from docmill.llm.pricing import PriceTable
from docmill.llm.prompt_cache import message_params
from docmill.llm.providers._http import CLAUDE, error_for_status, is_connect_failure
from docmill.llm.ratelimit import MAX_SLEEP_S, SharedRateLimiter
from docmill.llm.refusals import RefusalCounter
from docmill.llm.settings import mask_url
from docmill.llm.tokens import estimate_request_tokens
from docmill.llm.types import LLMRequest, LLMResponse, Usage

log = logging.getLogger("docmill.llm")

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_BASE_URL = "https://api.anthropic.com"


def map_anthropic_error(exc: Exception, model: str, *, base_url: str = DEFAULT_BASE_URL) -> LLMError:
    """The ``LLMError`` for an exception the SDK raised (see ``providers._http`` for statuses).

    ``base_url`` (secrets masked) is where the API was looked for: a connection that could
    not be made is ``ProviderUnreachable`` there.
    """
    if isinstance(exc, anthropic.APIStatusError):
        return error_for_status(
            exc.status_code,
            message=exc.api_message or exc.message,
            headers=exc.response.headers,
            model=model,
            endpoint=CLAUDE,
            error_code=exc.error_code,
            request_id=exc.request_id,
        )
    # APITimeoutError is an APIConnectionError too: a connect timeout is unreachable, a read
    # timeout (connected, then no answer in time) is not.
    if isinstance(exc, anthropic.APIConnectionError) and is_connect_failure(exc):
        return ProviderUnreachable(
            f"cannot reach the Claude API: {exc.message}",
            base_url=base_url,
            base_url_setting=CLAUDE.base_url_env,
            retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
        )
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderUnavailable(
            "the Claude API did not answer in time", retry_after_s=UNAVAILABLE_RETRY_AFTER_S
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailable(
            f"the connection to the Claude API failed: {exc.message}", retry_after_s=UNAVAILABLE_RETRY_AFTER_S
        )
    return ProviderUnavailable(f"the Claude API call failed: {exc}", retry_after_s=UNAVAILABLE_RETRY_AFTER_S)


def _usage(message: Message) -> Usage:
    usage = message.usage
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
    )


class AnthropicProvider:
    """``Provider`` for the Claude Messages API."""

    name = "anthropic"
    is_offline = False
    caches_prompts = True
    """Marks a shared prefix with ``cache_control`` where it reaches the model's minimum."""

    def __init__(
        self,
        *,
        api_key: str,
        prices: PriceTable,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        limiter: SharedRateLimiter | None = None,
        max_sleep_s: float = MAX_SLEEP_S,
        circuit: LLMCircuit | None = None,
        refusals: RefusalCounter | None = None,
    ) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self._base_url = mask_url(str(self._client.base_url).rstrip("/"))
        self._prices = prices
        self._limiter = limiter
        self._max_sleep_s = max_sleep_s
        self._circuit = circuit
        self._refusals = refusals
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"AnthropicProvider(base_url={self._base_url!r}, limiter={self._limiter is not None})"

    @property
    def limiter(self) -> SharedRateLimiter | None:
        return self._limiter

    def _check_model(self, model: str) -> str:
        """The dated id to send; a retired model fails here, before any call."""
        retired = retirement_message(model)
        if retired is not None:
            raise ModelUnavailable(retired, model=model, retired=True)
        resolved = resolve_model(model)
        retires_on = deprecation_date(resolved)
        if retires_on is not None and resolved not in self._warned:
            self._warned.add(resolved)
            log.warning("llm.model_deprecated model=%s retires_on=%r", resolved, retires_on)
        return resolved

    async def _check_circuit(self) -> None:
        if self._circuit is not None:
            await self._circuit.check()

    async def _refused(self, error: LLMError) -> LLMError:
        """``error``, or, when it stops every call of the key, the circuit's error once tripped."""
        if self._circuit is not None and isinstance(error, PermanentLLMError) and trips_circuit(error):
            return await self._circuit.trip(error)
        return error

    async def _learn(self, model: str, headers: Mapping[str, str]) -> None:
        if self._limiter is not None:
            await self._limiter.learn(model, headers)

    def _cost(self, answered_by: str, requested: str, usage: Usage) -> float:
        for model in (answered_by, requested):
            if self._prices.has_price(model):
                return self._prices.cost_usd(model, usage)
        if answered_by not in self._warned:
            self._warned.add(answered_by)
            log.warning("llm.price_unknown model=%s cost_usd=0", answered_by)
        return 0.0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        model = self._check_model(request.model)
        system = with_json_instruction(request.system) if request.json_output else request.system
        await self._check_circuit()
        admission = None
        input_tokens = request.input_tokens
        if self._limiter is not None:
            if input_tokens is None:  # the limiter takes the API's count, not a guess
                input_tokens = await self.count_tokens(request)
            admission = await self._limiter.admit(
                model,
                input_tokens,
                request.max_tokens,
                purpose=request.purpose,
                max_sleep_s=self._max_sleep_s,
            )
        sent_system, messages = message_params(model, system, request.prompt, request.cache_prefix_chars)
        try:
            raw = await self._client.messages.with_raw_response.create(
                model=model,
                max_tokens=request.max_tokens,
                system=sent_system,  # type: ignore[arg-type]
                messages=messages,  # type: ignore[arg-type]
            )
        except anthropic.APIStatusError as exc:
            await self._learn(model, exc.response.headers)
            error = map_anthropic_error(exc, request.model, base_url=self._base_url)
            if self._refusals is not None and isinstance(error, RateLimited | Overloaded):
                await self._refusals.record(model, exc.status_code)
            if isinstance(error, RateLimited) and self._limiter is not None and input_tokens is not None:
                # The 429 taught the limits: a request bigger than a whole minute fails now.
                error = self._limiter.never_fits(model, input_tokens) or error
            raise await self._refused(error) from exc
        except anthropic.APIError as exc:
            raise map_anthropic_error(exc, request.model, base_url=self._base_url) from exc
        await self._learn(model, raw.headers)
        message = await raw.parse()
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = _usage(message)
        if self._limiter is not None and admission is not None:
            await self._limiter.settle(admission, usage)
        response = LLMResponse(
            text=text,
            usage=usage,
            model=message.model,
            provider=self.name,
            request_id=raw.request_id or message._request_id,
            cost_usd=self._cost(message.model, model, usage),
        )
        if not request.json_output:
            return response
        found = extract_json_object(text)
        if found is None:
            raise MalformedOutput(
                f"the model's answer held no JSON object (stop_reason={message.stop_reason})",
                response=response,
            )
        return LLMResponse(
            text=json.dumps(found, ensure_ascii=False),
            usage=usage,
            model=response.model,
            provider=self.name,
            request_id=response.request_id,
            cost_usd=response.cost_usd,
        )

    async def count_tokens(self, request: LLMRequest) -> int:
        model = self._check_model(request.model)
        system = with_json_instruction(request.system) if request.json_output else request.system
        await self._check_circuit()
        try:
            counted = await self._client.messages.count_tokens(
                model=model, system=system, messages=[{"role": "user", "content": request.prompt}]
            )
        except anthropic.APIError as exc:
            error = map_anthropic_error(exc, request.model, base_url=self._base_url)
            if trips_circuit(error):
                raise await self._refused(error) from exc
            log.info("llm.count_tokens_fallback model=%s error=%s", model, type(exc).__name__)
            return estimate_request_tokens(system, request.prompt)
        return counted.input_tokens

    async def aclose(self) -> None:
        await self._client.close()
