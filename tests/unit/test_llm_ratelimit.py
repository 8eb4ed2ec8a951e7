"""Token-bucket maths of ``MemoryRateStore`` and ``SharedRateLimiter``, on a clock moved by hand."""

from __future__ import annotations

import pytest

from docmill.llm import MemoryRateStore, RateLimited, RateLimits, SharedRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryRateStore:
    return MemoryRateStore(clock=clock)


async def test_a_new_bucket_starts_full_and_then_refills_at_capacity_per_window(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    caps = {"requests": 60.0}

    results = [await store.rate_take("k", {"requests": 1}, caps, 60.0) for _ in range(60)]
    assert results == [0.0] * 60
    assert await store.rate_take("k", {"requests": 1}, caps, 60.0) == pytest.approx(1.0)

    clock.now += 1.0
    assert await store.rate_take("k", {"requests": 1}, caps, 60.0) == 0.0


async def test_take_is_all_or_nothing_and_reports_the_longest_wait(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    caps = {"a": 10.0, "b": 100.0, "c": 60.0}
    assert await store.rate_take("k", {"a": 10, "b": 10, "c": 0}, caps, 60.0) == 0.0

    # a is empty (needs 5 at 10/60 per s = 30 s), c lacks nothing, b lacks nothing.
    wait = await store.rate_take("k", {"a": 5, "b": 90, "c": 60}, caps, 60.0)

    assert wait == pytest.approx(30.0)
    assert store.level("k", "b") == pytest.approx(90.0)  # nothing was taken from b
    assert store.level("k", "c") == pytest.approx(60.0)


async def test_a_cost_above_capacity_counts_as_the_whole_capacity(store: MemoryRateStore) -> None:
    caps = {"input_tokens": 1_000.0}

    assert await store.rate_take("k", {"input_tokens": 5_000}, caps, 60.0) == 0.0
    assert await store.rate_take("k", {"input_tokens": 5_000}, caps, 60.0) == pytest.approx(60.0)


async def test_a_smaller_capacity_cuts_the_level_down(store: MemoryRateStore) -> None:
    assert await store.rate_take("k", {"r": 0}, {"r": 100.0}, 60.0) == 0.0
    assert await store.rate_take("k", {"r": 2}, {"r": 2.0}, 60.0) == 0.0
    assert await store.rate_take("k", {"r": 1}, {"r": 2.0}, 60.0) == pytest.approx(30.0)


async def test_a_bucket_idle_for_two_windows_starts_full_again(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    assert await store.rate_take("k", {"r": 10}, {"r": 10.0}, 60.0) == 0.0
    clock.now += 121.0
    assert await store.rate_take("k", {"r": 10}, {"r": 10.0}, 60.0) == 0.0


def limiter_for(store: MemoryRateStore, limits: RateLimits, headroom: float = 1.0) -> SharedRateLimiter:
    return SharedRateLimiter(store, {"claude-haiku-4-5": limits}, default=limits, headroom=headroom)


async def test_acquire_charges_one_request_its_input_and_the_output_given(store: MemoryRateStore) -> None:
    limiter = limiter_for(store, RateLimits(50, 30_000, 8_000))

    assert await limiter.acquire("claude-haiku-4-5", 10_000, 4_000) == 0.0
    assert await limiter.acquire("claude-haiku-4-5", 10_000, 4_000) == 0.0
    # Output tokens are exhausted: 4,000 more need 4,000 / (8,000 / 60) = 30 s.
    assert await limiter.acquire("claude-haiku-4-5-20251001", 10, 4_000) == pytest.approx(30.0)
    key = "llm:rate:claude-haiku-4-5-20251001"
    assert store.level(key, "requests") == pytest.approx(48)
    assert store.level(key, "input_tokens") == pytest.approx(10_000)


async def test_headroom_keeps_the_limiter_a_little_under_the_api_limit(store: MemoryRateStore) -> None:
    limiter = limiter_for(store, RateLimits(20, 1e9, 1e9), headroom=0.95)

    granted = [await limiter.acquire("claude-haiku-4-5", 1, 1) for _ in range(20)]

    assert granted.count(0.0) == 19


async def test_admit_sleeps_short_waits_in_place(store: MemoryRateStore, clock: FakeClock) -> None:
    limiter = limiter_for(store, RateLimits(60, 1e9, 1e9))
    for _ in range(60):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    admission = await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    assert admission.slept_s == pytest.approx(1.0, abs=0.02)
    assert clock.slept == [pytest.approx(1.0, abs=0.02)]


async def test_admit_raises_rate_limited_without_taking_when_the_wait_is_long(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    limiter = limiter_for(store, RateLimits(10, 1e9, 1e9))
    for _ in range(10):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    with pytest.raises(RateLimited) as raised:
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    assert raised.value.from_limiter
    assert raised.value.retry_after_s == pytest.approx(6.0)
    assert clock.slept == []


async def test_observe_learns_the_limits_the_api_reports(store: MemoryRateStore) -> None:
    limiter = limiter_for(store, RateLimits(50, 30_000, 8_000))
    headers = {
        "anthropic-ratelimit-requests-limit": "4000",
        "Anthropic-RateLimit-Input-Tokens-Limit": "2000000",
        "anthropic-ratelimit-output-tokens-limit": "not a number",
        "anthropic-ratelimit-requests-remaining": "3999",
    }

    limiter.observe("claude-haiku-4-5-20251001", headers)

    assert limiter.limits_for("claude-haiku-4-5") == RateLimits(4000, 2_000_000, 8_000)
    assert limiter.limits_for("claude-sonnet-4-6") == RateLimits(50, 30_000, 8_000)


async def test_observe_without_limit_headers_changes_nothing(store: MemoryRateStore) -> None:
    limiter = limiter_for(store, RateLimits(50, 30_000, 8_000))
    limiter.observe("claude-haiku-4-5", {"request-id": "req_1"})
    assert limiter.limits_for("claude-haiku-4-5") == RateLimits(50, 30_000, 8_000)


async def test_calls_that_find_the_buckets_short_wait_in_line_and_go_in_arrival_order(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    import asyncio

    limiter = limiter_for(store, RateLimits(60, 1e9, 1e9))
    for _ in range(60):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)
    admitted: list[int] = []

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        await asyncio.sleep(0)  # let the other callers run meanwhile, as a real sleep does

    async def call(number: int) -> None:
        await limiter.admit("claude-haiku-4-5", 1, 1, max_sleep_s=300, sleep=sleep)
        admitted.append(number)

    await asyncio.gather(*(call(n) for n in range(5)))

    assert admitted == [0, 1, 2, 3, 4]
    # Only the head of the line asked and slept, once per request refilled: no call went
    # round, and none was refused.
    assert clock.slept == [pytest.approx(1.0, abs=0.02)] * 5


async def test_a_wait_longer_than_allowed_takes_nothing_and_releases(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    limiter = limiter_for(store, RateLimits(60, 1e9, 1e9))
    for _ in range(60):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    with pytest.raises(RateLimited) as raised:
        await limiter.admit("claude-haiku-4-5", 1, 1, max_sleep_s=0.5, sleep=clock.sleep)

    assert raised.value.retry_after_s == pytest.approx(1.0)
    assert clock.slept == []
    assert store.level("llm:rate:claude-haiku-4-5-20251001", "requests") == pytest.approx(0.0)


async def test_no_call_waits_past_the_moment_its_job_must_have_started_its_calls(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    import time

    from docmill.llm.ratelimit import start_calls_by

    limiter = limiter_for(store, RateLimits(60, 1e9, 1e9))
    for _ in range(60):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    with start_calls_by(time.monotonic() + 0.5), pytest.raises(RateLimited):
        await limiter.admit("claude-haiku-4-5", 1, 1, max_sleep_s=300, sleep=clock.sleep)
    with start_calls_by(time.monotonic() + 30):
        admitted = await limiter.admit("claude-haiku-4-5", 1, 1, max_sleep_s=300, sleep=clock.sleep)

    assert admitted.slept_s == pytest.approx(1.0, abs=0.02)


async def test_knowing_only_the_builtin_defaults_the_head_asks_again_every_half_second(
    store: MemoryRateStore, clock: FakeClock
) -> None:
    from docmill.llm.ratelimit import POLL_S, TIER_1_LIMITS

    limiter = SharedRateLimiter(store, {}, default=TIER_1_LIMITS, headroom=1.0)
    for _ in range(int(TIER_1_LIMITS.requests_per_min)):
        await limiter.admit("claude-haiku-4-5", 1, 1, sleep=clock.sleep)

    await limiter.admit("claude-haiku-4-5", 1, 1, max_sleep_s=300, sleep=clock.sleep)

    # 1.2 s at 50 requests per minute, asked for in slices: an answer may teach more meanwhile.
    assert clock.slept == [pytest.approx(POLL_S, abs=0.02)] * 2 + [pytest.approx(0.2, abs=0.02)]
