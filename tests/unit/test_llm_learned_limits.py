"""Limits the API reported, learned once for the cluster: the memory backend as the shared
store, several limiters as several worker processes, and a clock moved by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from docmill.llm import RateLimits, RequestExceedsLimit, SharedRateLimiter
from docmill.llm.limits import TIER_1_LIMITS, key_fingerprint
from docmill.queue.backends.memory import MemoryBackend

MODEL = "claude-haiku-4-5"
MODEL_ID = "claude-haiku-4-5-20251001"
API_KEY = "sk-ant-test-0123456789abcdef"
ACCOUNT = key_fingerprint(API_KEY)
TIER_4 = {
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-input-tokens-limit": "2000000",
    "anthropic-ratelimit-output-tokens-limit": "400000",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class CountingBackend(MemoryBackend):
    """The memory backend, counting the flag reads and writes of the limiters."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes: list[str] = []

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return await super().get_flag(name)

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        self.writes.append(name)
        await super().set_flag(name, data)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> CountingBackend:
    backend = CountingBackend()
    backend.clock = clock
    return backend


def worker(backend: MemoryBackend, clock: FakeClock, **kwargs: Any) -> SharedRateLimiter:
    """One worker process's limiter, as ``build_provider`` makes it (built-in defaults)."""
    options: dict[str, Any] = {"default": TIER_1_LIMITS, "account": ACCOUNT, "clock": clock, **kwargs}
    return SharedRateLimiter(backend, {}, **options)


async def test_a_new_worker_starts_from_the_limits_the_cluster_learned(
    backend: CountingBackend, clock: FakeClock
) -> None:
    # Given one worker got an answer reporting tier-4 limits,
    first = worker(backend, clock)
    await first.learn(MODEL, TIER_4)

    # when a worker process starts later (on any host sharing the backend),
    second = worker(backend, clock)

    # then its first call already runs under those limits, not the built-in defaults:
    # it takes 100 requests at once where tier 1 would allow 47.
    assert [await second.acquire(MODEL, 1, 1) for _ in range(100)] == [0.0] * 100
    assert second.limits_for(MODEL) == RateLimits(4000, 2_000_000, 400_000)


async def test_learned_limits_are_keyed_by_a_hash_of_the_api_key_and_the_model_id(
    backend: CountingBackend, clock: FakeClock
) -> None:
    await worker(backend, clock).learn(MODEL, TIER_4)

    assert backend.writes == [f"llm:limits:{ACCOUNT}:{MODEL_ID}"]
    assert API_KEY not in repr(backend._flags)
    other_key = SharedRateLimiter(
        backend, {}, default=TIER_1_LIMITS, account=key_fingerprint("sk-ant-another-key"), clock=clock
    )
    assert await other_key.current_limits(MODEL) == TIER_1_LIMITS
    assert await worker(backend, clock).current_limits("claude-sonnet-4-6") == TIER_1_LIMITS


async def test_a_worker_knowing_only_the_defaults_never_cuts_a_capacity_the_cluster_learned(
    backend: CountingBackend, clock: FakeClock
) -> None:
    # Given a worker that looked for learned limits before there were any (defaults only),
    late = worker(backend, clock)
    assert await late.current_limits(MODEL) == TIER_1_LIMITS
    # and another worker that learns tier 4 a second later and uses the bucket,
    clock.now += 1.0
    early = worker(backend, clock)
    await early.learn(MODEL, TIER_4)
    for _ in range(3):
        assert await early.acquire(MODEL, 1, 1) == 0.0

    # when the first worker calls again within its refresh interval,
    assert await late.acquire(MODEL, 1, 1) == 0.0

    # then it read the learned limits first and left the bucket at tier 4's capacity,
    # instead of cutting it to tier 1's 47.5 requests.
    key = f"llm:rate:{ACCOUNT}:{MODEL_ID}"
    level = backend._buckets[f"{key}:requests"].level
    assert level > 3000
    assert late.limits_for(MODEL).requests_per_min == 4000


async def test_known_limits_are_read_from_the_backend_at_most_every_refresh_interval(
    backend: CountingBackend, clock: FakeClock
) -> None:
    await worker(backend, clock).learn(MODEL, TIER_4)
    limiter = worker(backend, clock, refresh_s=5.0)

    for _ in range(20):
        await limiter.acquire(MODEL, 1, 1)
        clock.now += 0.1
    assert backend.reads == 1

    clock.now += 3.0
    await limiter.acquire(MODEL, 1, 1)
    assert backend.reads == 2


async def test_configured_limits_are_not_reread_before_every_call_while_nothing_is_learned(
    backend: CountingBackend, clock: FakeClock
) -> None:
    limits = RateLimits(100, 100_000, 20_000)
    limiter = SharedRateLimiter(backend, {MODEL: limits}, default=limits, account=ACCOUNT, clock=clock)

    for _ in range(10):
        await limiter.acquire(MODEL, 1, 1)

    assert backend.reads == 1


async def test_limits_are_written_only_when_an_answer_shows_them_changed(
    backend: CountingBackend, clock: FakeClock
) -> None:
    first, second = worker(backend, clock), worker(backend, clock)
    await first.learn(MODEL, TIER_4)
    await first.learn(MODEL, {**TIER_4, "anthropic-ratelimit-requests-remaining": "3998"})
    await second.current_limits(MODEL)
    await second.learn(MODEL, TIER_4)
    assert len(backend.writes) == 1

    # A lower tier reported later (a downgrade) is written and reaches the others.
    clock.now += 1.0
    await second.learn(MODEL, {**TIER_4, "anthropic-ratelimit-requests-limit": "1000"})
    clock.now += 5.0
    assert (await first.current_limits(MODEL)).requests_per_min == 1000
    assert len(backend.writes) == 2


async def test_a_flag_that_cannot_be_read_as_limits_is_ignored(
    backend: CountingBackend, clock: FakeClock
) -> None:
    await backend.set_flag(f"llm:limits:{ACCOUNT}:{MODEL_ID}", {"requests_per_min": "many"})

    assert await worker(backend, clock).current_limits(MODEL) == TIER_1_LIMITS


# ------------------------------------------------------------------ requests that never fit


async def test_a_request_above_the_learned_input_limit_fails_at_once_with_the_reason(
    backend: CountingBackend, clock: FakeClock
) -> None:
    limiter = worker(backend, clock)
    await limiter.learn(MODEL, {**TIER_4, "anthropic-ratelimit-input-tokens-limit": "30000"})

    with pytest.raises(RequestExceedsLimit) as raised:
        await limiter.admit(MODEL, 41_000, 1_024)

    assert raised.value.reason == (
        f"A call to {MODEL_ID} needs 41,000 input tokens; the limit is 30,000 per minute, so the "
        "API would refuse it for ever; choose a model or an API tier with a higher input-token limit."
    )
    assert backend._buckets == {}  # nothing was taken


async def test_a_request_above_a_configured_input_limit_fails_at_once(
    backend: CountingBackend, clock: FakeClock
) -> None:
    limits = RateLimits(100, 20_000, 8_000)
    limiter = SharedRateLimiter(backend, {MODEL: limits}, default=TIER_1_LIMITS, clock=clock)

    sentence = "needs 20,001 input tokens; the limit is 20,000 per minute"
    with pytest.raises(RequestExceedsLimit, match=sentence):
        await limiter.admit(MODEL, 20_001, 1_024)
    assert (await limiter.admit(MODEL, 20_000, 1_024)).taken["input_tokens"] == pytest.approx(19_000)


async def test_the_builtin_defaults_alone_never_fail_a_request_as_too_large(
    backend: CountingBackend, clock: FakeClock
) -> None:
    # Tier 1 allows 30,000 input tokens a minute, but the account may well allow more:
    # the call goes out when the bucket is full, and the API's answer tells.
    limiter = worker(backend, clock)

    admission = await limiter.admit(MODEL, 41_000, 1_024)

    assert admission.taken["input_tokens"] == pytest.approx(30_000 * 0.95)
    assert limiter.never_fits(MODEL, 41_000) is None
