"""Per-minute counters behind ``Backend.counter_add``: the in-process version, shared by the
memory backend and ``MemoryRateStore`` (SQLite keeps them in a table, Redis in one hash a
minute).

A counter ``key`` holds, for each wall-clock minute, an integer per ``field``; minutes older
than ``COUNTER_RETENTION_S`` are dropped, so a counter never grows past a week of minutes.
"""

from __future__ import annotations

COUNTER_RETENTION_S = 7 * 86400.0


def minute_of(at: float) -> int:
    """The epoch second the minute holding ``at`` starts."""
    return int(at // 60) * 60


def first_minute(now: float, minutes: int) -> int:
    """The start of the oldest of the last ``minutes`` minutes (the current one included)."""
    return minute_of(now) - (max(1, minutes) - 1) * 60


class MinuteCounters:
    """key -> minute -> field -> count, in this process only."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[int, dict[str, int]]] = {}

    def add(self, key: str, field: str, amount: int, now: float) -> None:
        minutes = self._counts.setdefault(key, {})
        row = minutes.setdefault(minute_of(now), {})
        row[field] = row.get(field, 0) + amount
        horizon = now - COUNTER_RETENTION_S
        for minute in [m for m in minutes if m + 60 <= horizon]:
            del minutes[minute]

    def totals(self, key: str, minutes: int, now: float) -> dict[str, int]:
        since = max(first_minute(now, minutes), minute_of(now - COUNTER_RETENTION_S))
        totals: dict[str, int] = {}
        for minute, row in self._counts.get(key, {}).items():
            if minute >= since:
                for field, count in row.items():
                    totals[field] = totals.get(field, 0) + count
        return totals
