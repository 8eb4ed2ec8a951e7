"""Reading the API's 429 and 529 counts back per model, over the last hour and the last day."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from docmill.llm.rate_store import MemoryRateStore
from docmill.llm.refusals import KEY, RefusalCounter, Refusals, read_refusals

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 60


async def test_counts_split_by_model_status_and_window() -> None:
    now = [T0 - 25 * 3600]
    store = MemoryRateStore(clock=lambda: now[0])
    counter = RefusalCounter(store)
    await counter.record("haiku", 529)  # 25 hours ago: in neither window
    now[0] = T0 - 3 * 3600  # three hours ago: the day's counts only
    await counter.record("haiku", 429)
    await counter.record("haiku", 529)
    now[0] = T0 - 22 * 3600
    await counter.record("sonnet", 529)
    now[0] = T0
    for _ in range(2):
        await counter.record("haiku", 429)
    await counter.record("sonnet", 529)
    now[0] = T0 + 30

    assert await read_refusals(store) == [
        Refusals("haiku", rate_limited_hour=2, overloaded_hour=0, rate_limited_day=3, overloaded_day=1),
        Refusals("sonnet", rate_limited_hour=0, overloaded_hour=1, rate_limited_day=0, overloaded_day=2),
    ]


async def test_a_field_of_another_shape_is_ignored() -> None:
    store = MemoryRateStore()
    await store.counter_add(KEY, "not-a-status haiku")
    await store.counter_add(KEY, "429")
    assert await read_refusals(store) == []


class Unreachable(MemoryRateStore):
    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        raise ConnectionError("the store is down")

    async def rate_take(
        self, key: str, costs: Mapping[str, float], capacities: Mapping[str, float], window_s: float
    ) -> float:
        raise AssertionError("not used")


async def test_a_count_the_store_refuses_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="docmill.llm"):
        await RefusalCounter(Unreachable()).record("haiku", 429)
    assert "llm.refusal_not_counted model=haiku status=429 error=ConnectionError" in caplog.text
