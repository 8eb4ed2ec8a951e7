"""The in-process per-minute counters: windows by wall-clock minute, a week kept at most."""

from __future__ import annotations

from docmill.queue.counters import COUNTER_RETENTION_S, MinuteCounters, first_minute, minute_of

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 60  # a minute's start


def test_totals_sum_the_minutes_of_the_window_only() -> None:
    counters = MinuteCounters()
    counters.add("k", "429 m", 1, T0 - 3600)  # 61 minutes before the last addition's minute
    counters.add("k", "429 m", 2, T0 - 59 * 60)  # the first minute of the last hour
    counters.add("k", "529 m", 4, T0 + 59)
    counters.add("other", "429 m", 8, T0)

    assert counters.totals("k", 60, T0 + 59) == {"429 m": 2, "529 m": 4}
    assert counters.totals("k", 24 * 60, T0 + 59) == {"429 m": 3, "529 m": 4}
    assert counters.totals("k", 1, T0 + 59) == {"529 m": 4}
    assert counters.totals("nothing", 60, T0) == {}


def test_minutes_older_than_a_week_are_dropped_and_never_counted() -> None:
    counters = MinuteCounters()
    counters.add("k", "f", 5, T0)
    a_week_later = T0 + COUNTER_RETENTION_S + 60

    assert counters.totals("k", 8 * 24 * 60, a_week_later) == {}
    counters.add("k", "f", 1, a_week_later)
    assert counters.totals("k", 8 * 24 * 60, a_week_later) == {"f": 1}


def test_minutes_start_on_the_minute() -> None:
    assert minute_of(T0 + 59.9) == T0
    assert first_minute(T0 + 30, 60) == T0 - 59 * 60
    assert first_minute(T0 + 30, 0) == T0
