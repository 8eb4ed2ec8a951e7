"""A rate limiter shared by every worker on every host, over token buckets in a ``RateStore``.

Each model has three buckets per minute: requests, input tokens and output tokens,
as the Anthropic API counts them. ``SharedRateLimiter.acquire`` takes one request,
the input tokens and ``max_tokens`` output tokens (the most the call can produce) from
the shared store, all or nothing, and says how long to wait when they are not there.

Capacities start from configuration (``RateLimits`` per model, else ``default``) and
are replaced by what the API reports in its ``anthropic-ratelimit-*-limit`` headers
(``observe``). They are scaled by ``headroom`` (0.95): the store's clock and the API's
disagree by network latency and jitter, and a limiter that admits exactly the API's
limit would, now and then, be a few milliseconds early and get a 429.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from docmill.llm.errors import RateLimited
from docmill.llm.models import resolve_model

WINDOW_S = 60.0
DEFAULT_HEADROOM = 0.95
MAX_SLEEP_S = 2.0
"""Longest wait ``admit`` sleeps in place; a longer one releases the job instead."""
_WAKE_MARGIN_S = 0.01
KEY_PREFIX = "llm:rate:"

_HEADER_FIELDS = {
    "anthropic-ratelimit-requests-limit": "requests_per_min",
    "anthropic-ratelimit-input-tokens-limit": "input_tokens_per_min",
    "anthropic-ratelimit-output-tokens-limit": "output_tokens_per_min",
}


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute limits of one model."""

    requests_per_min: float
    input_tokens_per_min: float
    output_tokens_per_min: float


TIER_1_LIMITS = RateLimits(requests_per_min=50, input_tokens_per_min=30_000, output_tokens_per_min=8_000)
"""Anthropic's lowest tier for Sonnet/Opus: a safe start until the API's headers say more."""


class RateStore(Protocol):
    """Token buckets shared by every worker on every host (the queue ``Backend`` implements it).

    ``rate_take(key, costs, capacities, window_s)`` must behave exactly so, atomically
    for each call (``tests/integration/rate_store_contract.py`` checks an implementation):

    1. For each ``name`` in ``costs`` there is one bucket, ``f"{key}:{name}"``, holding a
       ``level`` and the time it was last updated. ``capacities`` must name every key of
       ``costs``; extra names in ``capacities`` are ignored.
    2. The bucket holds at most ``C = capacities[name]`` and refills continuously at
       ``C / window_s`` per second, using the capacity given in *this* call (a call with
       a smaller capacity than before cuts the level down to it). A bucket never seen
       before, or idle (not updated) for more than ``2 * window_s``, starts full.
    3. Each cost needs ``min(cost, C)`` in its bucket: a cost above the capacity counts
       as the capacity, so a request bigger than a whole window still passes when the
       bucket is full, instead of never.
    4. If every bucket holds what it needs, every bucket pays it at once and the result
       is exactly ``0.0``. Otherwise nothing is taken (the refill is kept) and the result
       is the largest ``(need - level) / (C / window_s)`` over the buckets that lack:
       the seconds until every bucket would suffice (at the current rate, barring other
       takers). It is always ``> 0`` in this case.
    5. The clock is the store's: ``time.monotonic`` in one process, ``time.time`` in
       SQLite, Redis ``TIME`` on Redis, so every host measures refill alike.
    """

    async def rate_take(
        self, key: str, costs: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> float: ...


@dataclass(slots=True)
class _Bucket:
    level: float
    updated_at: float


class MemoryRateStore:
    """``RateStore`` in this process only: for tests and a single worker process.

    ``clock`` is a seam so tests can move time by hand.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    async def rate_take(
        self, key: str, costs: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> float:
        # No await inside: atomic with respect to every other coroutine of this loop.
        return self.rate_take_now(key, costs, capacities, window_s)

    def rate_take_now(
        self, key: str, costs: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> float:
        """``rate_take`` without the lock, for synchronous callers (one thread)."""
        now = self._clock()
        refilled: dict[str, _Bucket] = {}
        wait_s = 0.0
        for name, cost in costs.items():
            capacity = float(capacities[name])
            rate = capacity / window_s
            old = self._buckets.get(f"{key}:{name}")
            if old is None or now - old.updated_at > 2 * window_s:
                level = capacity
            else:
                level = min(capacity, old.level + max(0.0, now - old.updated_at) * rate)
            refilled[name] = _Bucket(level, now)
            need = min(float(cost), capacity)
            if level < need:
                wait_s = max(wait_s, (need - level) / rate)
        if wait_s == 0.0:
            for name, bucket in refilled.items():
                bucket.level -= min(float(costs[name]), float(capacities[name]))
        for name, bucket in refilled.items():
            self._buckets[f"{key}:{name}"] = bucket
        return wait_s

    def level(self, key: str, name: str) -> float | None:
        """The stored level of one bucket (not refilled to now); None when never taken from."""
        bucket = self._buckets.get(f"{key}:{name}")
        return None if bucket is None else bucket.level


class SharedRateLimiter:
    """Keeps requests and tokens per minute of each model under the API's limits, across hosts."""

    def __init__(
        self,
        store: RateStore,
        limits: Mapping[str, RateLimits],
        *,
        default: RateLimits,
        headroom: float = DEFAULT_HEADROOM,
        window_s: float = WINDOW_S,
    ) -> None:
        if not 0.0 < headroom <= 1.0:
            raise ValueError(f"headroom must be in (0, 1], not {headroom}")
        self._store = store
        self._configured = {resolve_model(name): value for name, value in limits.items()}
        self._learned: dict[str, RateLimits] = {}
        self._default = default
        self._headroom = headroom
        self._window_s = window_s

    def limits_for(self, model: str) -> RateLimits:
        """The limits in force for a model: learned from the API, else configured, else the default."""
        model_id = resolve_model(model)
        return self._learned.get(model_id) or self._configured.get(model_id) or self._default

    async def acquire(self, model: str, input_tokens: int, max_output_tokens: int) -> float:
        """Take one request and its tokens for ``model``: 0.0 means go now, else wait that many seconds.

        When the answer is not 0.0 nothing was taken; call again after waiting.
        """
        limits = self.limits_for(model)
        wanted = {
            "requests": (1.0, limits.requests_per_min),
            "input_tokens": (float(input_tokens), limits.input_tokens_per_min),
            "output_tokens": (float(max_output_tokens), limits.output_tokens_per_min),
        }
        # A limit that is not positive or not finite means "no limit" for that bucket.
        usable = {
            name: (cost, capacity * self._headroom)
            for name, (cost, capacity) in wanted.items()
            if capacity > 0 and math.isfinite(capacity)
        }
        if not usable:
            return 0.0
        return await self._store.rate_take(
            KEY_PREFIX + resolve_model(model),
            {name: cost for name, (cost, _) in usable.items()},
            {name: capacity for name, (_, capacity) in usable.items()},
            self._window_s,
        )

    async def admit(
        self,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        *,
        max_sleep_s: float = MAX_SLEEP_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> float:
        """``acquire`` until granted, sleeping in place up to ``max_sleep_s`` in all; returns the sleep.

        Raises ``RateLimited(from_limiter=True)`` with the wait still needed when sleeping
        it would go past ``max_sleep_s``: nothing is taken and no API call is made.
        """
        slept = 0.0
        while True:
            wait_s = await self.acquire(model, input_tokens, max_output_tokens)
            if wait_s <= 0.0:
                return slept
            if slept + wait_s > max_sleep_s:
                raise RateLimited(retry_after_s=wait_s, from_limiter=True)
            await sleep(wait_s + _WAKE_MARGIN_S)
            slept += wait_s + _WAKE_MARGIN_S

    def observe(self, model: str, headers: Mapping[str, str]) -> None:
        """Learn a model's limits from ``anthropic-ratelimit-*-limit`` headers; used from now on.

        A header that is absent or not a positive number keeps the limit in force.
        """
        learned: dict[str, float] = {}
        lowered = {name.lower(): value for name, value in headers.items()}
        for header, field_name in _HEADER_FIELDS.items():
            try:
                value = float(lowered[header])
            except (KeyError, ValueError):
                continue
            if value > 0 and math.isfinite(value):
                learned[field_name] = value
        if not learned:
            return
        current = self.limits_for(model)
        self._learned[resolve_model(model)] = RateLimits(
            requests_per_min=learned.get("requests_per_min", current.requests_per_min),
            input_tokens_per_min=learned.get("input_tokens_per_min", current.input_tokens_per_min),
            output_tokens_per_min=learned.get("output_tokens_per_min", current.output_tokens_per_min),
        )
