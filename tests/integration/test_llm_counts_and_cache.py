"""The API's token counts and its prompt cache, through the real ``anthropic`` SDK and the
emulator over HTTP: the limiter takes the API's count, never a guess, when the API can count;
a prefix shared by a document's calls is cached where it reaches the model's minimum."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

import pytest

from docmill.documents.calls import Calls
from docmill.llm import LLMRequest, MemoryRateStore, PriceTable, RateLimits, SharedRateLimiter
from docmill.llm.factory import build_provider
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.settings import LLMSettings
from docmill.testing import AnthropicEmulator, EmulatorConfig

SONNET = "claude-sonnet-4-5"  # caches from 1,024 tokens
HAIKU = "claude-haiku-4-5"  # caches from 4,096 tokens
MESSAGES = "POST /v1/messages"
COUNT = "POST /v1/messages/count_tokens"
LIMITS = RateLimits(1_000, 1_000_000, 200_000)
# A custom prompt of some 2,000 tokens, as a long extraction brief would be.
LONG_PROMPT = " ".join(
    f"Rule {n}: report every shipment, berth, crane and customs hold with its date and amount."
    for n in range(90)
)


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
def store() -> MemoryRateStore:
    return MemoryRateStore()


@pytest.fixture
async def claude(
    emulator: AnthropicEmulator, api_key: str, store: MemoryRateStore
) -> AsyncIterator[AnthropicProvider]:
    limiter = SharedRateLimiter(store, {}, default=LIMITS, headroom=1.0)
    provider = AnthropicProvider(
        api_key=api_key, prices=PriceTable.default(), base_url=emulator.url, limiter=limiter
    )
    yield provider
    await provider.aclose()


def maps(model: str, prompt: str, chunks: int = 3) -> list[LLMRequest]:
    calls = Calls.for_document(
        name="harbour.md",
        options={"profile": "custom", "prompt": prompt, "model": model},
        analysis={},
        default_model=model,
    )
    return [
        calls.map(
            {"index": n, "text": f"Part {n}: the harbour moved {n * 40} containers.", "heading_path": []},
            chunks,
        )
        for n in range(chunks)
    ]


def input_level(store: MemoryRateStore, model_id: str) -> float:
    level = store.level(f"llm:rate:{model_id}", "input_tokens")
    assert level is not None
    return level


# ---------------------------------------------------------------------- token counts
async def test_the_limiter_takes_the_apis_count_made_just_before_the_call(
    claude: AnthropicProvider, emulator: AnthropicEmulator, store: MemoryRateStore
) -> None:
    request = LLMRequest(
        model=SONNET, system="You summarise.", prompt="Сводка по порту за квартал. " * 40, max_tokens=64
    )

    counted = await claude.count_tokens(request)
    answer = await claude.complete(request)

    assert emulator.stats["by_endpoint"] == {COUNT: 2, MESSAGES: 1}
    # The level after the call is the capacity less what the answer used (settled to the
    # API's usage); the call took the API's count, so settling moved nothing on input.
    assert answer.usage.input_tokens == counted
    assert input_level(store, "claude-sonnet-4-5-20250929") == pytest.approx(1_000_000 - counted, abs=1)


async def test_a_count_the_estimate_kept_is_used_without_counting_again(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    request = maps(SONNET, "List the dates.", chunks=2)[0]
    known = dataclasses.replace(request, input_tokens=777)

    await claude.complete(known)

    assert emulator.stats["by_endpoint"] == {MESSAGES: 1}


# ---------------------------------------------------------------------- prompt caching
async def test_a_long_shared_prefix_is_written_once_and_then_read_from_the_cache(
    claude: AnthropicProvider, emulator: AnthropicEmulator
) -> None:
    first, second, third = maps(SONNET, LONG_PROMPT)

    written = await claude.complete(first)
    read = await claude.complete(second)
    again = await claude.complete(third)

    prefix = written.usage.cache_creation_input_tokens
    assert 1_024 <= prefix < 3_000
    assert (written.usage.cache_read_input_tokens, read.usage.cache_creation_input_tokens) == (0, 0)
    assert read.usage.cache_read_input_tokens == again.usage.cache_read_input_tokens == prefix
    # Reads cost a tenth of input, so the second call is cheaper than the first though the
    # two prompts differ only in their chunk.
    assert read.cost_usd < written.cost_usd * 0.5
    # And the input-tokens-per-minute limit counted the reads not at all.
    assert emulator.stats["input_tokens"] == sum(
        r.usage.input_tokens + r.usage.cache_creation_input_tokens for r in (written, read, again)
    )


async def test_a_prefix_below_the_models_minimum_is_not_marked_and_nothing_is_cached(
    claude: AnthropicProvider,
) -> None:
    # The same 2,000-token prefix is below Haiku 4.5's minimum of 4,096 tokens.
    answers = [await claude.complete(request) for request in maps(HAIKU, LONG_PROMPT)]

    assert all(a.usage.cache_creation_input_tokens == a.usage.cache_read_input_tokens == 0 for a in answers)


async def test_short_instructions_are_not_marked_for_the_cache(claude: AnthropicProvider) -> None:
    answers = [await claude.complete(request) for request in maps(SONNET, "List the dates.")]

    assert all(a.usage.cache_creation_input_tokens == a.usage.cache_read_input_tokens == 0 for a in answers)


# ---------------------------------------------------------------------- waiting without churn
async def test_calls_beyond_the_limit_wait_their_turn_instead_of_being_put_back(
    emulator: AnthropicEmulator, api_key: str
) -> None:
    # Given an API that allows 120 requests a minute, and a provider as a user's settings
    # build it (the default wait in line) that knows that limit
    emulator.set_limits(rpm=120)
    limits = RateLimits(120, 2_000_000, 400_000)
    settings = LLMSettings(
        provider="anthropic",
        anthropic_api_key=api_key,
        anthropic_base_url=emulator.url,
        limits={HAIKU: limits},
        default_limits=limits,
    )
    provider = build_provider(settings, rate_store=MemoryRateStore())
    request = LLMRequest(
        model=HAIKU, system="You summarise.", prompt="The harbour report.", max_tokens=64, input_tokens=20
    )
    limiter = getattr(provider, "limiter", None)
    assert isinstance(limiter, SharedRateLimiter)
    calling: ContextVar[int] = ContextVar("calling")
    order: list[int] = []  # the order in which the limiter let the calls go
    admit = limiter.admit

    async def admit_in_order(*args: Any, **kwargs: Any) -> Any:
        admitted = await admit(*args, **kwargs)
        order.append(calling.get())
        return admitted

    limiter.admit = admit_in_order  # type: ignore[method-assign]

    async def call(number: int) -> None:
        calling.set(number)
        await provider.complete(request)

    # When a minute's bucket is used up (114 calls, with the headroom) and 8 more start at
    # once, the last of which must wait 4 s for its turn
    try:
        for number in range(114):
            await call(number)
        await asyncio.gather(*(call(number) for number in range(114, 122)))
    finally:
        await provider.aclose()

    # Then every call was answered: the last ones waited in line (no RateLimited, so no job
    # would have been put back), in the order they arrived, and the API refused none
    assert order[114:] == list(range(114, 122))
    assert emulator.stats["rate_limited"] == 0
    assert emulator.stats["by_endpoint"] == {MESSAGES: 122}
