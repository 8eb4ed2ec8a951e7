"""The job counters and histograms of /metrics, folded from per-minute metrics."""

from __future__ import annotations

from docmill.queue.backend import MinuteMetrics
from docmill.web.job_totals import CLOSE_GRACE_S, WINDOW_MINUTES, JobTotals

T0 = 1_767_225_600.0  # a minute's start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counters_never_shrink_when_old_minutes_leave_the_backends_window() -> None:
    clock = Clock(T0 + 30)
    totals = JobTotals(clock)
    # Given 3 jobs completed and 1 failed in the first minute
    first = MinuteMetrics(minute=int(T0), completed=3, failed=1, runtime_s_total=3.0, wait_s_total=0.3)
    queue = totals.take("default", [first])
    assert (queue.completed_total, queue.failed_total) == (3, 1)

    # When the minute grows, then leaves the window the backend is read for
    grown = MinuteMetrics(minute=int(T0), completed=5, failed=1, runtime_s_total=5.0, wait_s_total=0.5)
    totals.take("default", [grown])
    clock.now = T0 + (WINDOW_MINUTES + 2) * 60
    later = MinuteMetrics(minute=int(clock.now // 60 * 60), completed=2)
    queue = totals.take("default", [later])

    # Then the totals keep the old minute and add the new one
    assert (queue.completed_total, queue.failed_total) == (7, 1)
    assert int(T0) not in queue.open_minutes


def test_a_smaller_reading_of_a_minute_does_not_lower_the_counters() -> None:
    totals = JobTotals(Clock(T0 + 30))
    totals.take("q", [MinuteMetrics(minute=int(T0), completed=4)])

    queue = totals.take("q", [MinuteMetrics(minute=int(T0), completed=1)])

    assert queue.completed_total == 4


def test_the_histogram_takes_a_minute_once_it_has_ended_each_job_at_the_minutes_average() -> None:
    clock = Clock(T0 + 30)
    totals = JobTotals(clock)
    running = MinuteMetrics(minute=int(T0), completed=4, runtime_s_total=8.0, wait_s_total=0.4)

    # While the minute runs, nothing is observed
    queue = totals.take("q", [running])
    assert queue.runtime.counts[-1] == 0

    # Once it has ended (and the grace passed), its 4 jobs count at 2 s each, once
    clock.now = T0 + 60 + CLOSE_GRACE_S
    totals.take("q", [running])
    queue = totals.take("q", [running])
    buckets = dict(queue.runtime.buckets())
    assert (buckets["1.0"], buckets["2.5"], buckets["+Inf"]) == (0.0, 4.0, 4.0)
    assert queue.runtime.sum_s == 8.0
    assert dict(queue.wait.buckets())["0.1"] == 4.0


def test_queues_are_counted_apart() -> None:
    totals = JobTotals(Clock(T0 + 30))
    totals.take("a", [MinuteMetrics(minute=int(T0), completed=1)])
    totals.take("b", [MinuteMetrics(minute=int(T0), completed=2)])

    assert {name: q.completed_total for name, q in totals.queues.items()} == {"a": 1, "b": 2}
