"""Where the shared rate limiter keeps its state: token buckets, counters and flags every host sees.

The queue ``Backend`` (memory, SQLite, Redis) is the ``RateStore`` of a deployment;
``MemoryRateStore`` is one for tests and a single process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from docmill.queue.buckets import Bucket, settle, take
from docmill.queue.counters import MinuteCounters


class FlagStore(Protocol):
    """Small JSON objects every host sees (the queue ``Backend``'s flags)."""

    async def get_flag(self, name: str) -> dict[str, Any] | None: ...

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None: ...


class RateStore(FlagStore, Protocol):
    """Token buckets and flags shared by every worker on every host (the queue ``Backend``).

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

    ``rate_settle(key, charges, capacities, window_s)`` corrects a take once the real cost
    is known, atomically and without waiting:

    6. Each bucket of ``charges`` is refilled as in 2 (a new or idle one starts full), then
       pays ``charges[name]`` whatever its level: a positive charge may leave the level
       below zero, so later takes wait until the debt is refilled; a negative charge gives
       tokens back, never above ``C``.
    """

    async def rate_take(
        self, key: str, costs: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> float: ...

    async def rate_settle(
        self, key: str, charges: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> None: ...

    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        """Add ``amount`` to ``field`` of counter ``key`` in the current minute (kept a week)."""

    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        """Each field of ``key`` summed over the last ``minutes`` minutes, this one included."""


class MemoryRateStore:
    """``RateStore`` in this process only: for tests and a single worker process.

    ``clock`` is a seam so tests can move time by hand.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._flags: dict[str, dict[str, Any]] = {}
        self._counters = MinuteCounters()

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
        wait_s, new = take(self._current(key, costs, now, window_s), costs, capacities, window_s, now)
        self._buckets.update({f"{key}:{name}": bucket for name, bucket in new.items()})
        return wait_s

    async def rate_settle(
        self, key: str, charges: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> None:
        now = self._clock()
        new = settle(self._current(key, charges, now, window_s), charges, capacities, window_s, now)
        self._buckets.update({f"{key}:{name}": bucket for name, bucket in new.items()})

    def _current(
        self, key: str, names: Mapping[str, float], now: float, window_s: float
    ) -> dict[str, Bucket | None]:
        current: dict[str, Bucket | None] = {}
        for name in names:
            bucket = self._buckets.get(f"{key}:{name}")
            current[name] = None if bucket is None or now - bucket.updated_at > 2 * window_s else bucket
        return current

    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        self._counters.add(key, field, amount, self._clock())

    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        return self._counters.totals(key, minutes, self._clock())

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        data = self._flags.get(name)
        return None if data is None else dict(data)

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        if data is None:
            self._flags.pop(name, None)
        else:
            self._flags[name] = dict(data)

    def level(self, key: str, name: str) -> float | None:
        """The stored level of one bucket (not refilled to now); None when never taken from."""
        bucket = self._buckets.get(f"{key}:{name}")
        return None if bucket is None else bucket.level
