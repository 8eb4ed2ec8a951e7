"""Token-bucket arithmetic behind ``Backend.rate_take``, shared by the memory and SQLite
backends (the Redis backend runs the same steps in ``redis_lua/rate_take.lua``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    level: float
    updated_at: float


def take(
    buckets: Mapping[str, Bucket | None],
    costs: Mapping[str, float],
    capacities: Mapping[str, float],
    window_s: float,
    now: float,
) -> tuple[float, dict[str, Bucket]]:
    """Refill every bucket to ``now`` and take all costs, or none.

    Returns ``(wait_s, new_buckets)``: ``wait_s`` is 0.0 when the costs were taken;
    otherwise the seconds until every bucket would hold its cost. ``new_buckets``
    always holds the refilled levels (after the take, when it happened), ready to store.
    """
    refilled: dict[str, Bucket] = {}
    wait_s = 0.0
    for name, cost in costs.items():
        capacity = float(capacities[name])
        rate = capacity / window_s if window_s > 0 else float("inf")
        old = buckets.get(name)
        refill = 0.0 if old is None else max(0.0, now - old.updated_at) * rate
        level = capacity if old is None else min(capacity, old.level + refill)
        refilled[name] = Bucket(level, now)
        need = min(float(cost), capacity)
        if level < need:
            wait_s = max(wait_s, (need - level) / rate)
    if wait_s > 0:
        return wait_s, refilled
    taken = {
        name: Bucket(bucket.level - min(float(costs[name]), float(capacities[name])), now)
        for name, bucket in refilled.items()
    }
    return 0.0, taken


def settle(
    buckets: Mapping[str, Bucket | None],
    charges: Mapping[str, float],
    capacities: Mapping[str, float],
    window_s: float,
    now: float,
) -> dict[str, Bucket]:
    """Refill every bucket to ``now``, then take ``charges[name]`` from it unconditionally.

    A positive charge may leave the level below zero (later takes wait for the debt to
    refill); a negative one gives tokens back, never above the capacity. Returns the
    new buckets, ready to store.
    """
    settled: dict[str, Bucket] = {}
    for name, charge in charges.items():
        capacity = float(capacities[name])
        rate = capacity / window_s if window_s > 0 else float("inf")
        old = buckets.get(name)
        refill = 0.0 if old is None else max(0.0, now - old.updated_at) * rate
        level = capacity if old is None else min(capacity, old.level + refill)
        settled[name] = Bucket(min(capacity, level - float(charge)), now)
    return settled
