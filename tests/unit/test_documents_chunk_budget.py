"""Chunks sized so that every map fits the smallest input limit known for the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docmill.documents.analyzing import chunk_budget
from docmill.llm import MemoryRateStore, RateLimits, SharedRateLimiter
from docmill.llm.limits import TIER_1_LIMITS

MODEL = "claude-haiku-4-5"


@dataclass
class _Provider:
    limiter: SharedRateLimiter | None


class _Context:
    def __init__(self, limiter: SharedRateLimiter | None) -> None:
        self._provider = _Provider(limiter)

    async def provider(self) -> Any:
        return self._provider


def limiter(limits: dict[str, RateLimits], default: RateLimits = TIER_1_LIMITS) -> SharedRateLimiter:
    return SharedRateLimiter(MemoryRateStore(), limits, default=default)


async def test_a_small_known_input_limit_makes_chunks_half_of_it() -> None:
    small = RateLimits(50, 4_000, 8_000)

    assert await chunk_budget(_Context(limiter({MODEL: small})), MODEL) == 1_900  # 4,000 x 0.95 / 2


async def test_a_limit_learned_from_the_api_counts_as_known() -> None:
    learning = limiter({})
    learning.observe(MODEL, {"anthropic-ratelimit-input-tokens-limit": "6000"})

    assert await chunk_budget(_Context(learning), MODEL) == 2_850


async def test_the_context_windows_size_stands_when_the_limit_allows_it() -> None:
    generous = RateLimits(4_000, 2_000_000, 400_000)

    assert await chunk_budget(_Context(limiter({MODEL: generous})), MODEL) is None


async def test_a_configured_default_limit_counts_as_known() -> None:
    assert await chunk_budget(_Context(limiter({}, default=RateLimits(50, 3_000, 8_000))), MODEL) == 1_425


async def test_a_provider_without_a_limiter_keeps_the_windows_size() -> None:
    assert await chunk_budget(_Context(None), MODEL) is None
