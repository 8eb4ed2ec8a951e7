"""How often the API refused a call: 429 (rate limited) and 529 (overloaded), per model.

The provider counts every such answer in the shared store (the queue ``Backend``), so the
counts of every worker on every host add up: one per-minute counter, ``KEY``, with a field
``"<status> <model>"`` per status and model, kept a week. Counting never fails a call: a
store that cannot be reached in ``TIMEOUT_S`` loses the count and logs it. 429s from
docmill's own limiter (``RateLimited.from_limiter``) never reach the API and are not counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from docmill.llm.rate_store import RateStore

log = logging.getLogger("docmill.llm")

KEY = "llm:refusals"
STATUSES = (429, 529)
TIMEOUT_S = 1.0
HOUR_MINUTES = 60
DAY_MINUTES = 24 * 60


class RefusalCounter:
    """Counts the API's 429 and 529 answers in the shared store."""

    def __init__(self, store: RateStore) -> None:
        self._store = store

    async def record(self, model: str, status: int) -> None:
        """Count one answer with ``status`` for ``model``; never raises."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await self._store.counter_add(KEY, f"{status} {model}")
        except Exception as exc:  # a lost count must never fail the call it describes
            log.warning(
                "llm.refusal_not_counted model=%s status=%s error=%s", model, status, type(exc).__name__
            )


@dataclass(frozen=True)
class Refusals:
    """One model's 429 and 529 answers over the last hour and the last 24 hours."""

    model: str
    rate_limited_hour: int = 0
    overloaded_hour: int = 0
    rate_limited_day: int = 0
    overloaded_day: int = 0


async def read_refusals(store: RateStore) -> list[Refusals]:
    """Every model refused in the last 24 hours, by name."""
    hour = _by_model(await store.counter_totals(KEY, HOUR_MINUTES))
    day = _by_model(await store.counter_totals(KEY, DAY_MINUTES))
    return [
        Refusals(
            model,
            rate_limited_hour=hour.get(model, {}).get(429, 0),
            overloaded_hour=hour.get(model, {}).get(529, 0),
            rate_limited_day=counts.get(429, 0),
            overloaded_day=counts.get(529, 0),
        )
        for model, counts in sorted(day.items())
    ]


def _by_model(totals: dict[str, int]) -> dict[str, dict[int, int]]:
    models: dict[str, dict[int, int]] = {}
    for field, count in totals.items():
        status, _, model = field.partition(" ")
        if status.isdigit() and model:
            models.setdefault(model, {})[int(status)] = count
    return models
