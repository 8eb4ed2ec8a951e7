"""Per-model rate limits as token buckets, reported with the API's rate-limit headers.

Each model has three buckets that refill continuously (capacity per minute, so
``capacity / 60`` per second), like the API's requests / input tokens / output
tokens per minute. A request is admitted only when every bucket holds its cost and
then pays all three at once. Output tokens are charged at admission with the
reply's real length (the emulator knows it in advance); the API instead estimates
from ``max_tokens`` and corrects later. ``*-remaining`` values are exact, not rounded
to thousands as the API does, so tests can watch them fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECONDS_PER_MINUTE = 60.0
# Retry-after when a request could never fit (its cost exceeds the bucket's capacity).
UNSATISFIABLE_RETRY_AFTER_S = 60


@dataclass(frozen=True)
class RateLimits:
    """Per-minute limits of one model; the defaults are generous (a high API tier)."""

    requests_per_minute: int = 4_000
    input_tokens_per_minute: int = 2_000_000
    output_tokens_per_minute: int = 400_000


@dataclass(frozen=True)
class Denial:
    """Why a request was refused: which limit, its size, and how long until it fits."""

    limit_name: str
    limit: int
    retry_after_s: int


class TokenBucket:
    """A bucket of ``capacity`` units refilling at ``capacity`` per minute."""

    def __init__(self, capacity: int, now_s: float) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self._updated_s = now_s

    @property
    def rate_per_s(self) -> float:
        return self.capacity / SECONDS_PER_MINUTE

    def refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._updated_s)
        self.level = min(float(self.capacity), self.level + elapsed * self.rate_per_s)
        self._updated_s = now_s

    def wait_s(self, cost: int) -> float:
        """Seconds until ``cost`` fits (call after ``refill``); ``inf`` if it never can."""
        if cost <= self.level:
            return 0.0
        if cost > self.capacity or self.rate_per_s <= 0:
            return math.inf
        return (cost - self.level) / self.rate_per_s

    def seconds_to_full(self) -> float:
        return (self.capacity - self.level) / self.rate_per_s if self.rate_per_s > 0 else 0.0


class ModelLimiter:
    """The three buckets of one model."""

    def __init__(self, limits: RateLimits, now_s: float) -> None:
        self.limits = limits
        self.requests = TokenBucket(limits.requests_per_minute, now_s)
        self.input_tokens = TokenBucket(limits.input_tokens_per_minute, now_s)
        self.output_tokens = TokenBucket(limits.output_tokens_per_minute, now_s)

    def _buckets(self) -> tuple[tuple[str, TokenBucket], ...]:
        return (
            ("requests", self.requests),
            ("input tokens", self.input_tokens),
            ("output tokens", self.output_tokens),
        )

    def admit(self, input_tokens: int, output_tokens: int, now_s: float) -> Denial | None:
        """Charge one request to every bucket, or charge nothing and say why not."""
        costs = (1, input_tokens, output_tokens)
        for _, bucket in self._buckets():
            bucket.refill(now_s)
        waits = [
            (bucket.wait_s(cost), name, bucket.capacity)
            for (name, bucket), cost in zip(self._buckets(), costs, strict=True)
        ]
        wait_s, name, capacity = max(waits, key=lambda w: w[0])
        if wait_s > 0:
            retry = UNSATISFIABLE_RETRY_AFTER_S if math.isinf(wait_s) else max(1, math.ceil(wait_s))
            return Denial(name, capacity, retry)
        for (_, bucket), cost in zip(self._buckets(), costs, strict=True):
            bucket.level -= cost
        return None

    def headers(self, now_s: float) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers describing this model's buckets now."""
        wall = datetime.now(UTC)
        headers: dict[str, str] = {}

        def describe(prefix: str, bucket: TokenBucket) -> None:
            bucket.refill(now_s)
            reset = wall + timedelta(seconds=bucket.seconds_to_full())
            headers[f"anthropic-ratelimit-{prefix}-limit"] = str(bucket.capacity)
            headers[f"anthropic-ratelimit-{prefix}-remaining"] = str(max(0, math.floor(bucket.level)))
            headers[f"anthropic-ratelimit-{prefix}-reset"] = reset.strftime("%Y-%m-%dT%H:%M:%SZ")

        describe("requests", self.requests)
        describe("input-tokens", self.input_tokens)
        describe("output-tokens", self.output_tokens)
        # The tokens-* headers report whichever token limit is most restrictive right now.
        tightest = min(
            (self.input_tokens, self.output_tokens), key=lambda b: b.level / b.capacity if b.capacity else 0.0
        )
        describe("tokens", tightest)
        return headers
