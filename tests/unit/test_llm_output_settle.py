"""Output reserved honestly: the estimate of a call's output, and the settle that replaces
the reservation by the answer's usage, on the memory backend with a clock moved by hand."""

from __future__ import annotations

import pytest

from docmill.llm import RateLimits, SharedRateLimiter, Usage
from docmill.llm.output_estimate import OutputEstimator
from docmill.queue.backends.memory import MemoryBackend

MODEL = "claude-haiku-4-5"
KEY = "llm:rate:claude-haiku-4-5-20251001"
LIMITS = RateLimits(1_000, 400_000, 80_000)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> MemoryBackend:
    backend = MemoryBackend()
    backend.clock = clock
    return backend


@pytest.fixture
def limiter(backend: MemoryBackend, clock: FakeClock) -> SharedRateLimiter:
    return SharedRateLimiter(backend, {MODEL: LIMITS}, default=LIMITS, headroom=1.0, clock=clock)


def level(backend: MemoryBackend, name: str) -> float:
    return backend._buckets[f"{KEY}:{name}"].level


# ------------------------------------------------------------------ the estimate


def test_the_estimate_is_max_tokens_until_the_purpose_has_answers() -> None:
    estimator = OutputEstimator(min_samples=3)
    estimator.record("summary:map", 200)
    estimator.record("summary:map", 220)

    assert estimator.estimate("summary:map", 1_024) == 1_024

    estimator.record("summary:map", 210)
    assert estimator.estimate("summary:map", 1_024) == 220
    assert estimator.estimate("summary:final", 2_048) == 2_048


def test_the_estimate_is_a_high_quantile_that_one_long_answer_moves_little() -> None:
    estimator = OutputEstimator(quantile=0.9, decay=1.0, window=128)
    for tokens in range(100, 200):  # 100 answers of 100 to 199 tokens
        estimator.record("p", tokens)

    assert estimator.estimate("p", 4_096) == 189

    estimator.record("p", 4_000)
    assert estimator.estimate("p", 4_096) == 190


def test_recent_answers_weigh_more_so_the_estimate_follows_a_change_of_length() -> None:
    estimator = OutputEstimator(decay=0.8)
    for _ in range(40):
        estimator.record("p", 800)
    for _ in range(12):
        estimator.record("p", 100)

    assert estimator.estimate("p", 1_024) == 100


def test_the_estimate_never_exceeds_the_requests_max_tokens() -> None:
    estimator = OutputEstimator(min_samples=1)
    estimator.record("p", 900)

    assert estimator.estimate("p", 256) == 256


# ------------------------------------------------------------------ reserve and settle


async def test_admit_reserves_the_learned_estimate_per_model_and_purpose(limiter: SharedRateLimiter) -> None:
    first = await limiter.admit(MODEL, 1_000, 1_024, purpose="summary:map")
    assert first.output_tokens == 1_024  # nothing learned yet: the most the call can produce

    for tokens in (180, 240, 210):
        admission = await limiter.admit(MODEL, 1_000, 1_024, purpose="summary:map")
        await limiter.settle(admission, Usage(input_tokens=1_000, output_tokens=tokens))

    assert (await limiter.admit(MODEL, 1_000, 1_024, purpose="summary:map")).output_tokens == 240
    assert (await limiter.admit(MODEL, 1_000, 2_048, purpose="summary:final")).output_tokens == 2_048
    other_model = await limiter.admit("claude-sonnet-4-6", 1_000, 1_024, purpose="summary:map")
    assert other_model.output_tokens == 1_024


async def test_settle_refunds_the_output_not_used(limiter: SharedRateLimiter, backend: MemoryBackend) -> None:
    admission = await limiter.admit(MODEL, 1_000, 4_000, purpose="custom:final")
    assert level(backend, "output_tokens") == pytest.approx(76_000)

    await limiter.settle(admission, Usage(input_tokens=1_000, output_tokens=500))

    assert level(backend, "output_tokens") == pytest.approx(79_500)
    assert level(backend, "input_tokens") == pytest.approx(399_000)


async def test_a_refund_never_raises_a_bucket_above_its_capacity(
    limiter: SharedRateLimiter, backend: MemoryBackend, clock: FakeClock
) -> None:
    admission = await limiter.admit(MODEL, 1_000, 4_000)
    clock.now += 30.0  # the bucket has refilled meanwhile

    await limiter.settle(admission, Usage(input_tokens=10, output_tokens=10))

    assert level(backend, "output_tokens") == pytest.approx(80_000)
    assert level(backend, "input_tokens") == pytest.approx(400_000)


async def test_settle_charges_an_underestimate_so_later_calls_wait(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    small = RateLimits(1_000, 400_000, 8_000)
    limiter = SharedRateLimiter(backend, {MODEL: small}, default=small, headroom=1.0, clock=clock)
    for _ in range(3):
        admission = await limiter.admit(MODEL, 100, 4_000, purpose="p")
        await limiter.settle(admission, Usage(input_tokens=100, output_tokens=100))
        clock.now += 60.0
    admission = await limiter.admit(MODEL, 100, 4_000, purpose="p")
    assert admission.output_tokens == 100

    # The answer was far longer than the estimate: the difference is owed.
    await limiter.settle(admission, Usage(input_tokens=100, output_tokens=4_000))
    assert level(backend, "output_tokens") == pytest.approx(4_000)
    await limiter.settle(admission, Usage(input_tokens=100, output_tokens=8_000))
    assert level(backend, "output_tokens") == pytest.approx(-3_900)

    # 100 more output tokens need the debt and themselves refilled: 4,000 / (8,000 / 60 s).
    assert await limiter.acquire(MODEL, 100, 100) == pytest.approx(30.0)


async def test_settle_charges_the_input_the_api_counted(
    limiter: SharedRateLimiter, backend: MemoryBackend
) -> None:
    admission = await limiter.admit(MODEL, 1_000, 100)

    usage = Usage(
        input_tokens=1_100, output_tokens=100, cache_read_input_tokens=5_000, cache_creation_input_tokens=30
    )
    await limiter.settle(admission, usage)

    # Cache reads do not count against the input limit; cache writes do.
    assert level(backend, "input_tokens") == pytest.approx(400_000 - 1_130)


async def test_settle_does_not_raise_when_the_backend_fails(limiter: SharedRateLimiter) -> None:
    class Broken(MemoryBackend):
        async def rate_settle(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("redis is down")

    broken = SharedRateLimiter(Broken(), {MODEL: LIMITS}, default=LIMITS)
    admission = await broken.admit(MODEL, 10, 100)

    await broken.settle(admission, Usage(input_tokens=10, output_tokens=10))
