"""``QueueSummary``: a queue's counts with its rates and timings over the last hour."""

from __future__ import annotations

import json

from docmill.queue import Client, JobOptions, MinuteMetrics, QueueStats
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.summary import QueueSummary, summarize_queues

MINUTE = 1_800_000_000 // 60 * 60  # the start of a wall-clock minute


def stats(queue: str = "default") -> QueueStats:
    return QueueStats(
        queue, pending=4, delayed=1, reserved=2, failed=3, paused=False, oldest_pending_age_s=9.5
    )


def test_rates_and_timings_come_from_the_minutes_of_the_hour() -> None:
    # Given 20 jobs completed in the previous minute and 10 in the current one, 15 s into it
    metrics = [
        MinuteMetrics(MINUTE - 60, completed=20, failed=1, runtime_s_total=10.0, wait_s_total=40.0),
        MinuteMetrics(MINUTE, completed=10, runtime_s_total=5.0, wait_s_total=20.0),
    ]

    summary = QueueSummary.from_metrics(stats(), metrics, now=MINUTE + 15)

    # Then the last 60 s count the current minute and 3/4 of the previous one
    assert summary.throughput_last_minute == 10 + 15
    assert (summary.completed_last_hour, summary.failed_last_hour) == (30, 1)
    assert summary.avg_runtime_s == 0.5 and summary.avg_wait_s == 2.0
    assert summary.throughput_per_minute_avg == round(30 / 1.25, 2)
    assert (summary.size, summary.pending, summary.failed) == (7, 4, 3)


def test_a_quiet_queue_has_no_timings() -> None:
    summary = QueueSummary.from_metrics(stats(), [], now=MINUTE)

    assert (summary.avg_runtime_s, summary.avg_wait_s, summary.throughput_last_minute) == (None, None, 0)


def test_the_json_form_reads_back_and_carries_the_size() -> None:
    summary = QueueSummary.from_metrics(
        stats(), [MinuteMetrics(MINUTE, completed=2, runtime_s_total=0.886)], MINUTE
    )

    data = json.loads(json.dumps(summary.to_dict()))

    assert data["size"] == 7 and data["avg_runtime_s"] == 0.443
    assert QueueSummary.from_dict(data) == summary


async def test_every_queue_the_backend_knows_is_summarized_in_order() -> None:
    backend = MemoryBackend()
    client = Client(backend)
    for queue in ("reports", "mail", "mail"):
        await client.dispatch("h", options=JobOptions(queue=queue))

    every = await summarize_queues(backend)
    one = await summarize_queues(backend, ["reports"])

    assert [(s.queue, s.pending) for s in every] == [("mail", 2), ("reports", 1)]
    assert [s.queue for s in one] == ["reports"]
