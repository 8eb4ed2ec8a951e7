"""The API's 429 and 529 answers counted per model in the shared queue backend (SQLite, Redis),
through the real ``anthropic`` SDK against the emulator."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from docmill.llm import LLMRequest, Overloaded, PriceTable, RateLimited, RateLimits, SharedRateLimiter
from docmill.llm.factory import build_provider
from docmill.llm.models import resolve_model
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.refusals import RefusalCounter, Refusals, read_refusals
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, backend_from_url
from docmill.testing import AnthropicEmulator, EmulatorConfig, FaultKind

MODEL = "claude-haiku-4-5"


def ask() -> LLMRequest:
    return LLMRequest(
        prompt="Summarise the harbour report.", model=MODEL, system="You summarise.", max_tokens=64
    )


@pytest.fixture(scope="module")
def api_key() -> str:
    return f"sk-emulator-test-{secrets.token_hex(8)}"


@pytest.fixture
def emulator(api_key: str) -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=api_key)) as running:
        yield running


@pytest.fixture
async def backend(queue_url: str) -> AsyncIterator[Backend]:
    opened = backend_from_url(queue_url)
    await opened.connect()
    yield opened
    await opened.close()


def claude_for(api_key: str, emulator: AnthropicEmulator, backend: Backend) -> AnthropicProvider:
    """The provider a worker builds: its limiter, circuit and counters in ``backend``."""
    settings = LLMSettings.from_env(
        {"DOCMILL_LLM_PROVIDER": "anthropic", "CLAUDE_API_KEY": api_key, "ANTHROPIC_BASE_URL": emulator.url}
    )
    provider = build_provider(settings, rate_store=backend)
    assert isinstance(provider, AnthropicProvider)
    return provider


async def test_every_hosts_429s_and_529s_add_up_per_model(
    api_key: str, emulator: AnthropicEmulator, backend: Backend
) -> None:
    first, second = claude_for(api_key, emulator, backend), claude_for(api_key, emulator, backend)
    emulator.inject(FaultKind.RATE_LIMIT, 2)
    for provider in (first, second):
        with pytest.raises(RateLimited):
            await provider.complete(ask())
    emulator.inject(FaultKind.OVERLOADED)
    with pytest.raises(Overloaded):
        await second.complete(ask())
    await first.complete(ask())  # an answer counts nothing
    emulator.inject(FaultKind.API_ERROR)
    with pytest.raises(Exception):  # noqa: B017 - a 500 is neither a 429 nor a 529
        await first.complete(ask())

    refusals = await read_refusals(backend)

    assert refusals == [Refusals(resolve_model(MODEL), 2, 1, 2, 1)]
    await first.aclose()
    await second.aclose()


async def test_docmills_own_limiter_counts_no_429(
    api_key: str, emulator: AnthropicEmulator, backend: Backend
) -> None:
    emulator.set_limits(rpm=1)  # and its answers say so: the limiter keeps one call a minute
    one_call_a_minute = RateLimits(requests_per_min=1, input_tokens_per_min=1e9, output_tokens_per_min=1e9)
    limiter = SharedRateLimiter(backend, {MODEL: one_call_a_minute}, default=one_call_a_minute, account="t")
    provider = AnthropicProvider(
        api_key=api_key,
        prices=PriceTable.default(),
        base_url=emulator.url,
        limiter=limiter,
        max_sleep_s=0.0,
        refusals=RefusalCounter(backend),
    )
    await provider.complete(ask())
    with pytest.raises(RateLimited) as raised:
        await provider.complete(ask())

    assert raised.value.from_limiter
    assert await read_refusals(backend) == []
    await provider.aclose()


async def test_a_count_that_cannot_be_stored_is_logged_and_the_call_fails_as_the_api_said(
    api_key: str, emulator: AnthropicEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = backend_from_url(f"sqlite:///{tmp_path / 'never-connected.db'}")
    provider = AnthropicProvider(
        api_key=api_key,
        prices=PriceTable.default(),
        base_url=emulator.url,
        refusals=RefusalCounter(unreachable),
    )
    emulator.inject(FaultKind.OVERLOADED)

    with caplog.at_level(logging.WARNING, logger="docmill.llm"), pytest.raises(Overloaded):
        await provider.complete(ask())

    assert "llm.refusal_not_counted" in caplog.text and "status=529" in caplog.text
    await provider.aclose()
