"""Counters and histograms of finished jobs, built from the backend's per-minute metrics.

The backend keeps, per queue and wall-clock minute, how many jobs completed and failed
and the sums of their runtimes and waits (``MinuteMetrics``), for a retention period.
Prometheus wants counters that only grow, while a sum over the retained minutes shrinks
as old minutes expire. So this process folds what it reads into running totals:

* each scrape reads the last ``WINDOW_MINUTES``; a minute's counts only grow, so the
  largest value seen of each minute is kept until the minute leaves the window, and then
  added to the totals for good;
* the histograms take a minute once it has ended (``CLOSE_GRACE_S`` after, for hosts'
  clocks and late writes), each of its jobs at the minute's average, because the backend
  keeps sums, not every job's time; a minute counted is never counted again.

The totals start from the window at the first scrape and live as long as the process:
a restart is a counter reset, which Prometheus's ``rate()`` handles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from docmill.queue.backend import MinuteMetrics

WINDOW_MINUTES = 60
CLOSE_GRACE_S = 5.0
# Seconds; from sub-second jobs to the hour-long runs of big documents.
TIME_BUCKETS_S: tuple[float, ...] = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class Histogram:
    """Cumulative bucket counts (``TIME_BUCKETS_S``, then +Inf) and the sum of observations."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(TIME_BUCKETS_S) + 1))
    sum_s: float = 0.0

    def observe(self, value_s: float, times: int) -> None:
        for index, bound in enumerate((*TIME_BUCKETS_S, math.inf)):
            if value_s <= bound:
                self.counts[index] += times
        self.sum_s += value_s * times

    def buckets(self) -> list[tuple[str, float]]:
        # Written as prometheus_client writes its own histograms' bounds: 1.0, 2.5, +Inf.
        bounds = [repr(float(bound)) for bound in TIME_BUCKETS_S] + ["+Inf"]
        return [(bound, float(count)) for bound, count in zip(bounds, self.counts, strict=True)]


@dataclass
class QueueTotals:
    """One queue's finished jobs since this process first looked."""

    completed: int = 0  # of minutes that left the window
    failed: int = 0
    open_minutes: dict[int, MinuteMetrics] = field(default_factory=dict)
    histogrammed: set[int] = field(default_factory=set)
    runtime: Histogram = field(default_factory=Histogram)
    wait: Histogram = field(default_factory=Histogram)

    @property
    def completed_total(self) -> int:
        return self.completed + sum(m.completed for m in self.open_minutes.values())

    @property
    def failed_total(self) -> int:
        return self.failed + sum(m.failed for m in self.open_minutes.values())

    def take(self, metrics: Iterable[MinuteMetrics], now: float) -> None:
        for minute in metrics:
            seen = self.open_minutes.get(minute.minute)
            self.open_minutes[minute.minute] = minute if seen is None else _larger(seen, minute)
        for start, minute in self.open_minutes.items():
            if start not in self.histogrammed and start + 60 + CLOSE_GRACE_S <= now:
                self.histogrammed.add(start)
                if minute.completed:
                    self.runtime.observe(minute.runtime_s_total / minute.completed, minute.completed)
                    self.wait.observe(minute.wait_s_total / minute.completed, minute.completed)
        window_start = now - WINDOW_MINUTES * 60
        for start in [start for start in self.open_minutes if start + 60 <= window_start]:
            minute = self.open_minutes.pop(start)
            self.completed += minute.completed
            self.failed += minute.failed
            self.histogrammed.discard(start)


class JobTotals:
    """Every queue's ``QueueTotals``; one per process (``app.state.job_totals``).

    ``clock`` is the wall clock the backend's minutes are dated by (a seam for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.queues: dict[str, QueueTotals] = {}

    def take(self, queue: str, metrics: Sequence[MinuteMetrics]) -> QueueTotals:
        totals = self.queues.setdefault(queue, QueueTotals())
        totals.take(metrics, self.clock())
        return totals


def _larger(seen: MinuteMetrics, new: MinuteMetrics) -> MinuteMetrics:
    """The later reading of a minute; its counts never shrink, whatever a read returned."""
    if new.completed >= seen.completed and new.failed >= seen.failed:
        return new
    return seen
