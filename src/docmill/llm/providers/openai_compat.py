"""Any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, llama.cpp, Ollama, …) over httpx.

``base_url`` is the server's API root, with or without the ``/v1`` suffix
(``http://localhost:8000`` and ``http://localhost:8000/v1`` both work). The model sent
is the configured ``model`` (``OPENAI_MODEL``) when set, else the request's. Usage
comes from the response's ``usage`` (the offline estimate when a server omits it);
the cost is the price table's for that model, else 0.0 (a local server). Error
statuses map as for Claude (``providers._http``); there is no token-counting endpoint
in the protocol, so ``count_tokens`` is the offline estimate.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from docmill.llm.errors import (
    UNAVAILABLE_RETRY_AFTER_S,
    LLMError,
    MalformedOutput,
    ProviderUnavailable,
    ProviderUnreachable,
)
from docmill.llm.jsonout import extract_json_object, with_json_instruction
from docmill.llm.pricing import PriceTable
from docmill.llm.providers._http import Endpoint, error_for_status
from docmill.llm.ratelimit import MAX_SLEEP_S, Admission, SharedRateLimiter
from docmill.llm.settings import mask_url
from docmill.llm.tokens import estimate_request_tokens, estimate_tokens
from docmill.llm.types import LLMRequest, LLMResponse, Usage

OPENAI = Endpoint(
    "OpenAI-compatible endpoint",
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    claude_models=False,
    base_url_env="OPENAI_BASE_URL",
)
DEFAULT_TIMEOUT_S = 600.0


def api_root(base_url: str) -> str:
    """``base_url`` ending in ``/v1`` (added when missing), without a trailing slash."""
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else f"{root}/v1"


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """The error message and code from an OpenAI-style error body (or the raw text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return str(error.get("message") or ""), str(code) if code else None
    if isinstance(error, str):
        return error, None
    return response.text, None


class OpenAICompatProvider:
    """``Provider`` for OpenAI-compatible chat-completion servers."""

    name = "openai"
    is_offline = False

    def __init__(
        self,
        *,
        base_url: str,
        prices: PriceTable,
        api_key: str | None = None,
        model: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        limiter: SharedRateLimiter | None = None,
        max_sleep_s: float = MAX_SLEEP_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._root = api_root(base_url)
        self._shown_root = mask_url(self._root)
        self._client = httpx.AsyncClient(
            base_url=self._root, headers=headers, timeout=timeout_s, transport=transport
        )
        self._prices = prices
        self._model = model
        self._limiter = limiter
        self._max_sleep_s = max_sleep_s

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(base_url={self._shown_root!r}, model={self._model!r})"

    def _model_for(self, request: LLMRequest) -> str:
        return self._model or request.model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        model = self._model_for(request)
        system = with_json_instruction(request.system) if request.json_output else request.system
        admission = None
        if self._limiter is not None:
            admission = await self._limiter.admit(
                model,
                estimate_request_tokens(system, request.prompt),
                request.max_tokens,
                purpose=request.purpose,
                max_sleep_s=self._max_sleep_s,
            )
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": request.prompt}],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        try:
            answer = await self._client.post("/chat/completions", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ProviderUnreachable(
                f"cannot reach the {OPENAI.label} at {self._shown_root}: {exc}",
                base_url=self._shown_root,
                base_url_setting=OPENAI.base_url_env,
                retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
            ) from exc
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"the {OPENAI.label} at {self._shown_root} did not answer in time",
                retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"the connection to the {OPENAI.label} at {self._shown_root} failed: {exc}",
                retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
            ) from exc
        request_id = answer.headers.get("x-request-id")
        if answer.is_error:
            raise self._error(answer, model, request_id)
        try:
            response = self._response(request, model, system, answer, request_id)
        except MalformedOutput as exc:  # paid for all the same
            await self._settle(admission, exc.response.usage)
            raise
        await self._settle(admission, response.usage)
        return response

    async def _settle(self, admission: Admission | None, usage: Usage) -> None:
        if self._limiter is not None and admission is not None:
            await self._limiter.settle(admission, usage)

    def _error(self, answer: httpx.Response, model: str, request_id: str | None) -> LLMError:
        message, code = _error_details(answer)
        return error_for_status(
            answer.status_code,
            message=message,
            headers=answer.headers,
            model=model,
            endpoint=OPENAI,
            error_code=code,
            request_id=request_id,
        )

    def _response(
        self, request: LLMRequest, model: str, system: str, answer: httpx.Response, request_id: str | None
    ) -> LLMResponse:
        try:
            data = answer.json()
            text = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable(
                f"the {OPENAI.label} at {self._shown_root} sent an answer that is not a chat completion",
                retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
            ) from exc
        raw_usage = data.get("usage") or {}
        cached = (raw_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        prompt_tokens = raw_usage.get("prompt_tokens")
        usage = Usage(
            input_tokens=int(prompt_tokens - cached)
            if isinstance(prompt_tokens, int)
            else estimate_request_tokens(system, request.prompt),
            output_tokens=int(raw_usage.get("completion_tokens") or estimate_tokens(text)),
            cache_read_input_tokens=int(cached),
        )
        answered_by = str(data.get("model") or model)
        cost = 0.0
        for candidate in (answered_by, model):
            if self._prices.has_price(candidate) and not self._prices.price_for(candidate).provisional:
                cost = self._prices.cost_usd(candidate, usage)
                break
        response = LLMResponse(
            text=text,
            usage=usage,
            model=answered_by,
            provider=self.name,
            request_id=request_id or data.get("id"),
            cost_usd=cost,
        )
        if not request.json_output:
            return response
        found = extract_json_object(text)
        if found is None:
            raise MalformedOutput("the model's answer held no JSON object", response=response)
        return LLMResponse(
            text=json.dumps(found, ensure_ascii=False),
            usage=usage,
            model=answered_by,
            provider=self.name,
            request_id=response.request_id,
            cost_usd=cost,
        )

    async def count_tokens(self, request: LLMRequest) -> int:
        system = with_json_instruction(request.system) if request.json_output else request.system
        return estimate_request_tokens(system, request.prompt)

    async def aclose(self) -> None:
        await self._client.aclose()
