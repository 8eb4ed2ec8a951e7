"""The behaviour every ``RateStore`` must show (see ``docmill.llm.ratelimit.RateStore``).

Run any implementation through it (memory, SQLite, Redis backends alike)::

    from rate_store_contract import check_rate_store

    async def test_sqlite_backend_meets_the_rate_store_contract(backend):
        await check_rate_store(backend)

It uses real time (windows of about a second, about 2 s in all) and fresh random
keys, so it can run against a shared server; waits are compared with a tolerance
for the time the calls themselves take.
"""

from __future__ import annotations

import asyncio
import uuid

from docmill.llm.ratelimit import RateStore

WINDOW_S = 1.0
TOLERANCE_S = 0.06


def _key(label: str) -> str:
    return f"contract:{label}:{uuid.uuid4().hex[:10]}"


def _near(actual: float, expected: float, what: str) -> None:
    assert expected - TOLERANCE_S <= actual <= expected + 1e-9, (
        f"{what}: waited {actual}, expected ≈{expected}"
    )


async def check_rate_store(store: RateStore) -> None:
    """Assert the whole ``rate_take`` contract on ``store``; an AssertionError names the rule broken."""
    await _new_buckets_start_full_and_say_how_long_to_wait(store)
    await _take_is_all_or_nothing_with_the_longest_wait(store)
    await _a_cost_above_capacity_counts_as_the_capacity(store)
    await _a_smaller_capacity_cuts_the_level(store)
    await _keys_are_independent(store)
    await _concurrent_takes_never_overdraw(store)
    await _buckets_refill_continuously(store)
    await _a_refund_gives_back_but_never_above_capacity(store)
    await _a_charge_may_take_a_bucket_below_zero(store)
    await _a_settle_on_an_unknown_bucket_starts_from_full(store)
    await _flags_round_trip(store)
    await _counters_add_up(store)


async def _new_buckets_start_full_and_say_how_long_to_wait(store: RateStore) -> None:
    key = _key("full")
    taken = await store.rate_take(key, {"r": 10}, {"r": 10}, WINDOW_S)
    assert taken == 0.0 and isinstance(taken, float), "a new bucket starts full and returns exactly 0.0"
    wait = await store.rate_take(key, {"r": 5}, {"r": 10}, WINDOW_S)
    _near(wait, 0.5, "5 missing of 10 per second")


async def _take_is_all_or_nothing_with_the_longest_wait(store: RateStore) -> None:
    key = _key("all-or-nothing")
    caps = {"a": 10.0, "b": 100.0, "c": 20.0}
    assert await store.rate_take(key, {"a": 10, "b": 0, "c": 10}, caps, WINDOW_S) == 0.0
    # a lacks 4 of 10/s (0.4 s), c lacks 5 of 20/s (0.25 s), b lacks nothing: the longest wins.
    wait = await store.rate_take(key, {"a": 4, "b": 100, "c": 15}, caps, WINDOW_S)
    _near(wait, 0.4, "the largest wait over the buckets that lack")
    assert await store.rate_take(key, {"b": 100}, caps, WINDOW_S) == 0.0, "a refused take took nothing"


async def _a_cost_above_capacity_counts_as_the_capacity(store: RateStore) -> None:
    key = _key("oversized")
    assert await store.rate_take(key, {"t": 1_000}, {"t": 100}, WINDOW_S) == 0.0, "full bucket pays capacity"
    wait = await store.rate_take(key, {"t": 1_000}, {"t": 100}, WINDOW_S)
    _near(wait, WINDOW_S, "an oversized cost waits for a full bucket")


async def _a_smaller_capacity_cuts_the_level(store: RateStore) -> None:
    key = _key("shrink")
    assert await store.rate_take(key, {"r": 0}, {"r": 100}, WINDOW_S) == 0.0
    assert await store.rate_take(key, {"r": 2}, {"r": 2}, WINDOW_S) == 0.0, "level cut to 2, both taken"
    wait = await store.rate_take(key, {"r": 1}, {"r": 2}, WINDOW_S)
    _near(wait, 0.5, "nothing left after the cut")


async def _keys_are_independent(store: RateStore) -> None:
    first, second = _key("first"), _key("second")
    assert await store.rate_take(first, {"r": 3}, {"r": 3}, WINDOW_S) == 0.0
    assert await store.rate_take(second, {"r": 3}, {"r": 3}, WINDOW_S) == 0.0, (
        "another key has its own bucket"
    )


async def _concurrent_takes_never_overdraw(store: RateStore) -> None:
    key = _key("concurrent")
    results = await asyncio.gather(*(store.rate_take(key, {"r": 1}, {"r": 5}, 60.0) for _ in range(12)))
    assert sum(1 for r in results if r == 0.0) == 5, f"exactly the capacity is granted: {results}"
    assert all(r > 0.0 for r in results if r != 0.0)


async def _buckets_refill_continuously(store: RateStore) -> None:
    key = _key("refill")
    assert await store.rate_take(key, {"r": 10}, {"r": 10}, WINDOW_S) == 0.0
    wait = await store.rate_take(key, {"r": 3}, {"r": 10}, WINDOW_S)
    assert wait > 0.0
    await asyncio.sleep(wait + 0.02)
    assert await store.rate_take(key, {"r": 3}, {"r": 10}, WINDOW_S) == 0.0, "refilled after the wait given"


async def _a_refund_gives_back_but_never_above_capacity(store: RateStore) -> None:
    key = _key("refund")
    assert await store.rate_take(key, {"r": 10}, {"r": 10}, WINDOW_S) == 0.0
    await store.rate_settle(key, {"r": -4}, {"r": 10}, WINDOW_S)
    assert await store.rate_take(key, {"r": 4}, {"r": 10}, WINDOW_S) == 0.0, "the refund can be taken again"
    await store.rate_settle(key, {"r": -1_000}, {"r": 10}, WINDOW_S)
    assert await store.rate_take(key, {"r": 10}, {"r": 10}, WINDOW_S) == 0.0
    wait = await store.rate_take(key, {"r": 5}, {"r": 10}, WINDOW_S)
    _near(wait, 0.5, "a refund of 1,000 filled the bucket to its capacity of 10, not beyond")


async def _a_charge_may_take_a_bucket_below_zero(store: RateStore) -> None:
    key = _key("debt")
    assert await store.rate_take(key, {"r": 10}, {"r": 10}, WINDOW_S) == 0.0
    await store.rate_settle(key, {"r": 5}, {"r": 10}, WINDOW_S)
    wait = await store.rate_take(key, {"r": 5}, {"r": 10}, WINDOW_S)
    _near(wait, 1.0, "a debt of 5 and a need of 5 at 10 per second")


async def _a_settle_on_an_unknown_bucket_starts_from_full(store: RateStore) -> None:
    key = _key("settle-new")
    await store.rate_settle(key, {"r": 3}, {"r": 10}, WINDOW_S)
    wait = await store.rate_take(key, {"r": 8}, {"r": 10}, WINDOW_S)
    _near(wait, 0.1, "full (10) less the charge (3) lacks 1 of 8")


async def _flags_round_trip(store: RateStore) -> None:
    name = _key("flag")
    assert await store.get_flag(name) is None
    await store.set_flag(name, {"requests_per_min": 50.0, "observed_at": 1.5})
    assert await store.get_flag(name) == {"requests_per_min": 50.0, "observed_at": 1.5}
    await store.set_flag(name, None)
    assert await store.get_flag(name) is None


async def _counters_add_up(store: RateStore) -> None:
    key, other = _key("counter"), _key("counter-other")
    assert await store.counter_totals(key, 60) == {}, "a counter never added to has no fields"
    await store.counter_add(key, "429 m")
    await store.counter_add(key, "429 m", 2)
    await store.counter_add(other, "529 m")
    await asyncio.gather(*(store.counter_add(key, "529 m") for _ in range(20)))
    assert await store.counter_totals(key, 60) == {"429 m": 3, "529 m": 20}, "additions add up, per field"
    assert await store.counter_totals(key, 1) in ({"429 m": 3, "529 m": 20}, {"529 m": 20}, {}), (
        "the current minute only"
    )
    assert await store.counter_totals(other, 1440) == {"529 m": 1}, "keys are independent"
