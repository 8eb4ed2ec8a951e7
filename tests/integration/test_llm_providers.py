"""The providers against real HTTP: Claude through the real ``anthropic`` SDK and the emulator,
an OpenAI-compatible server through a local FastAPI stub, and the shared rate limiter."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from rate_store_contract import check_rate_store

from docmill.llm import (
    AuthenticationFailed,
    InvalidRequest,
    LLMRequest,
    MemoryRateStore,
    ModelUnavailable,
    Overloaded,
    PriceTable,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    RateLimits,
    SharedRateLimiter,
    estimate_request_tokens,
)
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.providers.openai_compat import OpenAICompatProvider
from docmill.testing import AnthropicEmulator, EmulatorConfig, FaultKind

MODEL = "claude-haiku-4-5"
PRICES = PriceTable.default()
UNLIMITED = RateLimits(1e9, 1e12, 1e12)
SCHEMA = json.dumps(
    {"type": "object", "properties": {"title": {"type": "string"}, "key_points": {"type": "array"}}}
)


def ask(prompt: str = "Summarise the quarterly report on harbour logistics.", **kwargs: Any) -> LLMRequest:
    fields: dict[str, Any] = {"model": MODEL, "system": "You summarise documents.", "max_tokens": 256}
    return LLMRequest(prompt=prompt, **{**fields, **kwargs})


@pytest.fixture(scope="module")
def api_key() -> str:
    return f"sk-emulator-test-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def shared_emulator(api_key: str) -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=api_key)) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: AnthropicEmulator, api_key: str) -> AnthropicEmulator:
    shared_emulator.reset(EmulatorConfig(api_key=api_key))
    return shared_emulator


@pytest.fixture
def limiter() -> SharedRateLimiter:
    return SharedRateLimiter(MemoryRateStore(), {}, default=UNLIMITED)


@pytest.fixture
async def claude(
    emulator: AnthropicEmulator, api_key: str, limiter: SharedRateLimiter
) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key=api_key, prices=PRICES, base_url=emulator.url, limiter=limiter)
    yield provider
    await provider.aclose()


# ------------------------------------------------------------------ Claude through the SDK


async def test_completion_reports_text_usage_cost_and_request_id(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    response = await claude.complete(ask())

    assert response.text.startswith("Echo: Summarise the quarterly report on harbour logistics.")
    assert response.model == "claude-haiku-4-5-20251001"
    assert response.provider == "anthropic"
    assert response.request_id is not None and response.request_id.startswith("req_")
    assert response.usage.input_tokens == emulator.stats["input_tokens"]
    assert response.usage.output_tokens == emulator.stats["output_tokens"]
    expected = (response.usage.input_tokens * 1.0 + response.usage.output_tokens * 5.0) / 1_000_000
    assert response.cost_usd == pytest.approx(expected)


async def test_json_output_returns_the_json_object_the_schema_asks_for(claude: AnthropicProvider) -> None:
    response = await claude.complete(ask(f"Extract this schema: {SCHEMA}", json_output=True))

    assert set(json.loads(response.text)) == {"title", "key_points"}


async def test_count_tokens_uses_the_api_and_matches_the_offline_estimate_for_latin_text(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    request = ask()

    counted = await claude.count_tokens(request)

    assert counted == estimate_request_tokens(request.system, request.prompt)
    assert emulator.stats["by_endpoint"] == {"POST /v1/messages/count_tokens": 1}


async def test_count_tokens_falls_back_to_the_estimate_when_the_api_cannot_count(
    claude: AnthropicProvider,
) -> None:
    request = ask(model="claude-nope-1")

    assert await claude.count_tokens(request) == estimate_request_tokens(request.system, request.prompt)


async def test_a_bad_key_fails_with_the_setting_to_check(emulator: AnthropicEmulator) -> None:
    provider = AnthropicProvider(api_key="sk-wrong-key-000000", prices=PRICES, base_url=emulator.url)
    try:
        with pytest.raises(AuthenticationFailed) as raised:
            await provider.complete(ask())
        with pytest.raises(AuthenticationFailed):
            await provider.count_tokens(ask())
    finally:
        await provider.aclose()

    assert raised.value.reason == "The Claude API key was rejected; check CLAUDE_API_KEY."


async def test_the_seeds_retired_default_model_is_named_as_retired_without_a_call(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    with pytest.raises(ModelUnavailable) as raised:
        await claude.complete(ask(model="claude-3-5-sonnet-20241022"))

    assert raised.value.retired
    assert "claude-3-5-sonnet-20241022" in raised.value.reason and "retired" in raised.value.reason
    assert emulator.stats["requests"] == 0


async def test_an_unknown_model_gets_the_apis_404_as_model_unavailable(claude: AnthropicProvider) -> None:
    with pytest.raises(ModelUnavailable) as raised:
        await claude.complete(ask(model="claude-nope-1"))

    assert not raised.value.retired and "'claude-nope-1'" in raised.value.reason


async def test_an_injected_429_is_rate_limited_for_the_emulators_retry_after(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    emulator.configure(fault_retry_after_s=7)
    emulator.inject(FaultKind.RATE_LIMIT)

    with pytest.raises(RateLimited) as raised:
        await claude.complete(ask())

    assert raised.value.retry_after_s == 7.0 and not raised.value.from_limiter
    assert raised.value.request_id is not None


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (FaultKind.OVERLOADED, Overloaded),
        (FaultKind.API_ERROR, ProviderUnavailable),
        (FaultKind.PERMISSION, AuthenticationFailed),
    ],
)
async def test_faults_map_to_the_error_tree(
    claude: AnthropicProvider, emulator: AnthropicEmulator, fault: FaultKind, expected: type[Exception]
) -> None:
    emulator.inject(fault)

    with pytest.raises(expected):
        await claude.complete(ask())


def free_port() -> int:
    """A port nothing listens on (bound once, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_api_nothing_listens_for_is_unreachable_at_its_masked_base_url() -> None:
    port = free_port()
    provider = AnthropicProvider(
        api_key="sk-x-000000000000", prices=PRICES, base_url=f"http://relay:s3cret-pass@127.0.0.1:{port}"
    )
    try:
        with pytest.raises(ProviderUnreachable) as raised:
            await provider.complete(ask())
    finally:
        await provider.aclose()

    error = raised.value
    assert (error.base_url, error.base_url_setting) == (
        f"http://relay:***@127.0.0.1:{port}",
        "ANTHROPIC_BASE_URL",
    )
    assert error.retry_after_s == 10.0 and "s3cret" not in str(error)


async def test_an_openai_server_nothing_listens_for_is_unreachable_at_its_masked_api_root() -> None:
    port = free_port()
    provider = OpenAICompatProvider(base_url=f"http://relay:s3cret-pass@127.0.0.1:{port}", prices=PRICES)
    try:
        with pytest.raises(ProviderUnreachable) as raised:
            await provider.complete(ask())
    finally:
        await provider.aclose()

    error = raised.value
    assert (error.base_url, error.base_url_setting) == (
        f"http://relay:***@127.0.0.1:{port}/v1",
        "OPENAI_BASE_URL",
    )
    assert "s3cret" not in str(error)


async def test_an_emulator_that_stops_makes_the_api_unreachable_and_back_when_it_restarts(
    api_key: str,
) -> None:
    # Given Claude's API answering on a port
    emulator = AnthropicEmulator(EmulatorConfig(api_key=api_key)).start()
    provider = AnthropicProvider(api_key=api_key, prices=PRICES, base_url=emulator.url)
    try:
        assert (await provider.complete(ask())).text

        # When it stops, the next call finds no one to connect to
        emulator.stop()
        with pytest.raises(ProviderUnreachable):
            await provider.complete(ask())

        # And once it is back on the same port, the same client is answered again
        emulator.start()
        assert (await provider.complete(ask())).text
    finally:
        emulator.stop()
        await provider.aclose()


async def test_observe_learns_the_emulators_header_limits(
    claude: AnthropicProvider, emulator: AnthropicEmulator, limiter: SharedRateLimiter
) -> None:
    emulator.set_limits(rpm=123, itpm=45_678, otpm=9_876)

    await claude.complete(ask())

    assert limiter.limits_for(MODEL) == RateLimits(123, 45_678, 9_876)


async def test_a_429_teaches_the_limiter_too(
    claude: AnthropicProvider, emulator: AnthropicEmulator, limiter: SharedRateLimiter
) -> None:
    emulator.set_limits(rpm=77)
    emulator.inject(FaultKind.RATE_LIMIT)

    with pytest.raises(RateLimited):
        await claude.complete(ask())

    assert limiter.limits_for(MODEL).requests_per_min == 77


async def test_a_burst_under_the_shared_limiter_never_meets_a_429(
    emulator: AnthropicEmulator, api_key: str
) -> None:
    # Given the API allows 30 requests a minute and the limiter is configured the same,
    emulator.set_limits(rpm=30)
    limits = RateLimits(30, 2_000_000, 400_000)
    limiter = SharedRateLimiter(MemoryRateStore(), {MODEL: limits}, default=limits)
    provider = AnthropicProvider(api_key=api_key, prices=PRICES, base_url=emulator.url, limiter=limiter)

    # when 36 documents call at once,
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(provider.complete(ask(f"Document number {n} about harbours.")) for n in range(36)),
            return_exceptions=True,
        )
    finally:
        await provider.aclose()

    # then the limiter held back what the API would refuse: no 429 reached the API, the
    # calls it let through all succeeded, and the rest were released without a call.
    released = [r for r in results if isinstance(r, RateLimited)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert emulator.stats["rate_limited"] == 0
    assert len(answered) + len(released) == 36
    assert all(r.from_limiter and r.retry_after_s > 0 for r in released)
    assert 28 <= len(answered) <= 31
    assert emulator.stats["by_status"] == {"200": len(answered) + 36}
    # Every call was counted by the API before the limiter took it.
    assert emulator.stats["by_endpoint"] == {
        "POST /v1/messages/count_tokens": 36,
        "POST /v1/messages": len(answered),
    }
    assert time.monotonic() - started < 6


async def test_the_memory_rate_store_meets_the_rate_store_contract() -> None:
    await check_rate_store(MemoryRateStore())


# ------------------------------------------------------------------ OpenAI-compatible server


class ChatStub:
    """A tiny OpenAI-compatible server: answers from a queue of scripted responses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        app = FastAPI()
        app.add_api_route("/v1/chat/completions", self._chat, methods=["POST"])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.script:
            status, payload, headers = self.script.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        content = json.dumps({"title": "T"}) if body.get("response_format") else "A short answer."
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
            }
        )

    def __enter__(self) -> ChatStub:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def chat_stub() -> Iterator[ChatStub]:
    with ChatStub() as stub:
        yield stub


@pytest.fixture
async def local(chat_stub: ChatStub) -> AsyncIterator[OpenAICompatProvider]:
    chat_stub.requests.clear()
    chat_stub.headers.clear()
    chat_stub.script.clear()
    provider = OpenAICompatProvider(
        base_url=chat_stub.url, prices=PRICES, api_key="local-secret-key", model="llama-3.1-8b"
    )
    yield provider
    await provider.aclose()


async def test_openai_completion_reads_text_and_usage_from_the_server(
    local: OpenAICompatProvider, chat_stub: ChatStub
) -> None:
    response = await local.complete(ask())

    assert (response.text, response.model, response.provider) == ("A short answer.", "llama-3.1-8b", "openai")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (42, 7)
    assert response.cost_usd == 0.0  # a local model has no price
    sent = chat_stub.requests[0]
    assert sent["model"] == "llama-3.1-8b" and sent["max_tokens"] == 256
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert chat_stub.headers[0]["authorization"] == "Bearer local-secret-key"


async def test_openai_answers_settle_the_shared_limiters_reservation_to_their_usage(
    chat_stub: ChatStub,
) -> None:
    # Given a local server limited by configured limits, on buckets that do not refill
    limits = RateLimits(100, 100_000, 10_000)
    store = MemoryRateStore(clock=lambda: 1_000.0)
    limiter = SharedRateLimiter(store, {"llama-3.1-8b": limits}, default=limits, headroom=1.0)
    provider = OpenAICompatProvider(
        base_url=chat_stub.url, prices=PRICES, model="llama-3.1-8b", limiter=limiter
    )
    chat_stub.script.clear()
    try:
        # When one call reserving max_tokens (256) is answered with 42 input and 7 output tokens
        await provider.complete(ask())
    finally:
        await provider.aclose()

    # Then the buckets hold what the server counted, the rest of the reservation given back
    assert store.level("llm:rate:llama-3.1-8b", "output_tokens") == pytest.approx(10_000 - 7)
    assert store.level("llm:rate:llama-3.1-8b", "input_tokens") == pytest.approx(100_000 - 42)


async def test_openai_json_output_asks_for_a_json_object(
    local: OpenAICompatProvider, chat_stub: ChatStub
) -> None:
    response = await local.complete(ask(json_output=True))

    assert json.loads(response.text) == {"title": "T"}
    assert chat_stub.requests[0]["response_format"] == {"type": "json_object"}
    assert "Respond with JSON only" in chat_stub.requests[0]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("status", "payload", "headers", "expected"),
    [
        (401, {"error": {"message": "bad key"}}, {}, AuthenticationFailed),
        (404, {"error": {"message": "model not found"}}, {}, ModelUnavailable),
        (429, {"error": {"message": "slow down"}}, {"retry-after": "3"}, RateLimited),
        (500, {"error": "boom"}, {}, ProviderUnavailable),
        (400, {"error": {"message": "context length exceeded"}}, {}, InvalidRequest),
    ],
)
async def test_openai_errors_map_by_status(
    local: OpenAICompatProvider,
    chat_stub: ChatStub,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str],
    expected: type[Exception],
) -> None:
    chat_stub.script.append((status, payload, headers))

    with pytest.raises(expected) as raised:
        await local.complete(ask())

    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after_s == 3.0
    assert "local-secret-key" not in str(raised.value)


async def test_openai_base_url_works_with_or_without_v1(chat_stub: ChatStub) -> None:
    provider = OpenAICompatProvider(base_url=f"{chat_stub.url}/v1/", prices=PRICES)
    try:
        response = await provider.complete(ask())
    finally:
        await provider.aclose()

    assert response.model == MODEL  # no configured model: the request's is sent
