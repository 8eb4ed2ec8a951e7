"""The shared rate limiter with the real ``anthropic`` SDK against the Messages API emulator:
limits learned once for the cluster (a new worker process starts from them), output
reserved by estimate and settled to the answer's usage, and a request that can never fit."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.llm import (
    LLMRequest,
    LLMSettings,
    MemoryRateStore,
    PriceTable,
    RateLimits,
    RequestExceedsLimit,
    SharedRateLimiter,
    build_provider,
)
from docmill.llm.limits import TIER_1_LIMITS, key_fingerprint
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.queue import backend_from_url
from docmill.testing import AnthropicEmulator, EmulatorConfig

MODEL = "claude-haiku-4-5"
MODEL_ID = "claude-haiku-4-5-20251001"
MESSAGES = "POST /v1/messages"
API_KEY = f"sk-emulator-limits-{secrets.token_hex(8)}"
EMULATOR_LIMITS = RateLimits(4_000, 2_000_000, 400_000)  # the emulator's defaults

NEW_WORKER = """
import asyncio, json, os
from dataclasses import asdict
from docmill.llm import LLMSettings, build_provider
from docmill.queue import backend_from_url

async def main():
    backend = backend_from_url(os.environ["QUEUE_URL"])
    await backend.connect()
    settings = LLMSettings(
        provider="anthropic",
        anthropic_api_key=os.environ["CLAUDE_API_KEY"],
        anthropic_base_url=os.environ["ANTHROPIC_BASE_URL"],
    )
    provider = build_provider(settings, rate_store=backend)
    print(json.dumps(asdict(await provider.limiter.current_limits("claude-haiku-4-5"))))
    await provider.aclose()
    await backend.close()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=API_KEY)) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(emulator: AnthropicEmulator) -> None:
    emulator.reset(EmulatorConfig(api_key=API_KEY))


def ask(prompt: str, *, max_tokens: int = 1_024, purpose: str = "test:map") -> LLMRequest:
    return LLMRequest(
        model=MODEL, system="You summarise documents.", prompt=prompt, max_tokens=max_tokens, purpose=purpose
    )


async def test_a_new_worker_process_starts_from_the_limits_the_cluster_learned(
    emulator: AnthropicEmulator, tmp_path: Path
) -> None:
    # Given a worker that got one answer from an API of 1,234 requests, 567,890 input and
    # 98,765 output tokens a minute, on a queue backend shared with other processes,
    emulator.set_limits(rpm=1_234, itpm=567_890, otpm=98_765)
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    backend = backend_from_url(queue_url)
    await backend.connect()
    settings = LLMSettings(provider="anthropic", anthropic_api_key=API_KEY, anthropic_base_url=emulator.url)
    provider = build_provider(settings, rate_store=backend)
    try:
        await provider.complete(ask("Summarise the harbour report."))
        # the limits are stored under a hash of the key, never the key itself.
        flag = await backend.get_flag(f"llm:limits:{key_fingerprint(API_KEY)}:{MODEL_ID}")
        assert flag is not None and API_KEY not in json.dumps(flag)
    finally:
        await provider.aclose()
        await backend.close()

    # When a new worker process starts on that backend, before it makes any call,
    env = {
        **os.environ,
        "QUEUE_URL": queue_url,
        "CLAUDE_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": emulator.url,
    }
    done = subprocess.run(
        [sys.executable, "-c", NEW_WORKER], env=env, capture_output=True, text=True, timeout=120
    )

    # Then it runs under the limits the API reported, not the built-in tier-1 defaults.
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "requests_per_min": 1_234,
        "input_tokens_per_min": 567_890,
        "output_tokens_per_min": 98_765,
    }
    # (the one call of the first process, counted by the API first; none by the new one)
    assert emulator.stats["by_endpoint"] == {MESSAGES: 1, f"{MESSAGES}/count_tokens": 1}


async def test_an_answer_settles_its_reservation_and_the_unused_output_is_given_back(
    emulator: AnthropicEmulator,
) -> None:
    # Given a limiter whose buckets do not refill (a clock that stands still), so every
    # token taken or given back shows,
    store = MemoryRateStore(clock=lambda: 1_000.0)
    limiter = SharedRateLimiter(
        store, {MODEL: EMULATOR_LIMITS}, default=EMULATOR_LIMITS, headroom=1.0, clock=lambda: 1_000.0
    )
    provider = AnthropicProvider(
        api_key=API_KEY, prices=PriceTable.default(), base_url=emulator.url, limiter=limiter
    )
    key = f"llm:rate:{MODEL_ID}"
    try:
        # When calls of one purpose reserve 1,024 output tokens each (nothing learned yet),
        outputs = []
        for n in range(3):
            response = await provider.complete(ask(f"Summarise part {n} of the harbour report."))
            outputs.append(response.usage.output_tokens)

            # Then after each answer the buckets hold exactly what the API counted as used:
            # the reservation's unused output came back, and the input is the API's count.
            output_left = EMULATOR_LIMITS.output_tokens_per_min - sum(outputs)
            input_left = EMULATOR_LIMITS.input_tokens_per_min - emulator.stats["input_tokens"]
            assert store.level(key, "output_tokens") == pytest.approx(output_left)
            assert store.level(key, "input_tokens") == pytest.approx(input_left)
    finally:
        await provider.aclose()

    # And the next call of that purpose reserves what such answers need, not max_tokens.
    assert max(outputs) < 200
    assert limiter.output_estimate(MODEL, "test:map", 1_024) == max(outputs)
    assert limiter.output_estimate(MODEL, "test:final", 2_048) == 2_048


async def test_a_request_above_the_input_limit_fails_at_its_first_429_with_the_reason(
    emulator: AnthropicEmulator,
) -> None:
    # Given an API that allows 500 input tokens a minute, and a limiter that knows only
    # the built-in defaults (30,000 a minute: it cannot tell yet),
    emulator.set_limits(itpm=500)
    limiter = SharedRateLimiter(MemoryRateStore(), {}, default=TIER_1_LIMITS)
    provider = AnthropicProvider(
        api_key=API_KEY, prices=PriceTable.default(), base_url=emulator.url, limiter=limiter
    )
    prompt = "Harbour logistics report. " * 120  # about 780 tokens
    try:
        # When a request of about 800 input tokens is sent, the API refuses it (429, retry
        # in 60 s: it never fits) and its headers teach the limit,
        with pytest.raises(RequestExceedsLimit) as first:
            await provider.complete(ask(prompt))
        # and the same request again fails before any call.
        with pytest.raises(RequestExceedsLimit) as second:
            await provider.complete(ask(prompt))
    finally:
        await provider.aclose()

    # Then each fails at once with the reason, and only the first reached the API.
    assert "input tokens; the limit is 500 per minute" in first.value.reason
    assert first.value.reason == second.value.reason
    assert first.value.needed_tokens > 500
    assert emulator.stats["by_endpoint"][MESSAGES] == 1
    assert emulator.stats["by_status"]["429"] == 1  # the rest: the API counting the input
