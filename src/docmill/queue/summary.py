"""A queue's summary: what ``docmill queue monitor``, ``status`` and the dashboard show per queue.

Counts come from ``Backend.stats`` (pending, delayed, reserved, failed, paused,
oldest wait) and rates and timings from the last hour's per-minute metrics
(``Backend.metrics``). The CLI, the JSON API and the dashboard render the same
``QueueSummary``; ``to_dict`` is its JSON form (``docmill queue monitor --json``)
and ``from_dict`` reads it back.

API::

    summaries = await summarize_queues(backend)            # every queue, or summarize_queues(backend, ["a"])
    one = QueueSummary.from_metrics(stats, metrics, now)   # from data already loaded
    one.size, one.wait_s, one.runtime_s, one.to_dict(), QueueSummary.from_dict(data)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docmill.queue.backend import Backend, MinuteMetrics, QueueStats

# Rates and timings cover this many minutes of per-minute metrics.
SUMMARY_MINUTES = 60


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """One queue now: its counts, and its throughput, runtime and wait over the last hour."""

    queue: str
    pending: int
    delayed: int
    reserved: int
    failed: int
    paused: bool
    oldest_pending_age_s: float | None  # None when nothing is pending
    completed_last_hour: int = 0
    failed_last_hour: int = 0
    throughput_last_minute: int = 0  # jobs completed in the 60 s before the summary was taken
    throughput_per_minute_avg: float = 0.0
    avg_runtime_s: float | None = None  # None when no job completed in the hour
    avg_wait_s: float | None = None

    @property
    def size(self) -> int:
        """Jobs not yet finished: pending + delayed + reserved (Laravel's ``size``)."""
        return self.pending + self.delayed + self.reserved

    @classmethod
    def from_metrics(cls, stats: QueueStats, metrics: Sequence[MinuteMetrics], now: float) -> QueueSummary:
        """The summary of ``stats`` with rates and timings from ``metrics`` (oldest minute first).

        ``throughput_last_minute`` estimates the jobs completed in the 60 s before
        ``now`` from the per-minute counters: the current minute, plus the previous
        minute weighted by how much of it falls inside the window.
        """
        current = int(now // 60) * 60
        weight_previous = 1.0 - (now - current) / 60.0
        last_minute = 0.0
        for m in metrics:
            if m.minute == current:
                last_minute += m.completed
            elif m.minute == current - 60:
                last_minute += m.completed * weight_previous
        completed = sum(m.completed for m in metrics)
        runtime = sum(m.runtime_s_total for m in metrics)
        wait = sum(m.wait_s_total for m in metrics)
        minutes = min(float(SUMMARY_MINUTES), max(1.0, (now - metrics[0].minute) / 60.0)) if metrics else 1.0
        return cls(
            queue=stats.queue,
            pending=stats.pending,
            delayed=stats.delayed,
            reserved=stats.reserved,
            failed=stats.failed,
            paused=stats.paused,
            oldest_pending_age_s=stats.oldest_pending_age_s,
            completed_last_hour=completed,
            failed_last_hour=sum(m.failed for m in metrics),
            throughput_last_minute=round(last_minute),
            throughput_per_minute_avg=round(completed / minutes, 2),
            avg_runtime_s=runtime / completed if completed else None,
            avg_wait_s=wait / completed if completed else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field, plus ``size``."""
        return {
            "queue": self.queue,
            "pending": self.pending,
            "delayed": self.delayed,
            "reserved": self.reserved,
            "failed": self.failed,
            "paused": self.paused,
            "size": self.size,
            "oldest_pending_age_s": self.oldest_pending_age_s,
            "completed_last_hour": self.completed_last_hour,
            "failed_last_hour": self.failed_last_hour,
            "throughput_last_minute": self.throughput_last_minute,
            "throughput_per_minute_avg": self.throughput_per_minute_avg,
            "avg_runtime_s": self.avg_runtime_s,
            "avg_wait_s": self.avg_wait_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueSummary:
        """Read ``to_dict``'s form back; ``size`` is derived, so it is ignored."""
        return cls(
            queue=str(data["queue"]),
            pending=int(data.get("pending", 0)),
            delayed=int(data.get("delayed", 0)),
            reserved=int(data.get("reserved", 0)),
            failed=int(data.get("failed", 0)),
            paused=bool(data.get("paused", False)),
            oldest_pending_age_s=_float_or_none(data.get("oldest_pending_age_s")),
            completed_last_hour=int(data.get("completed_last_hour", 0)),
            failed_last_hour=int(data.get("failed_last_hour", 0)),
            throughput_last_minute=int(data.get("throughput_last_minute", 0)),
            throughput_per_minute_avg=float(data.get("throughput_per_minute_avg", 0.0)),
            avg_runtime_s=_float_or_none(data.get("avg_runtime_s")),
            avg_wait_s=_float_or_none(data.get("avg_wait_s")),
        )


async def summarize_queues(
    backend: Backend, queues: Iterable[str] | None = None, *, now: float | None = None
) -> list[QueueSummary]:
    """The summary of each of ``queues`` (default: every queue the backend knows), in that order."""
    names = list(queues) if queues is not None else await backend.queues()
    at = time.time() if now is None else now
    summaries = []
    for name in names:
        stats = await backend.stats(name)
        metrics = await backend.metrics(name, minutes=SUMMARY_MINUTES)
        summaries.append(QueueSummary.from_metrics(stats, metrics, at))
    return summaries


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
