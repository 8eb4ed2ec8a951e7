"""Failed jobs grouped by the shape of their reason, and bulk retries that walk the store."""

from __future__ import annotations

from docmill.queue import ErrorInfo, Job, JobState
from docmill.web.dashboard.charts import line_chart
from docmill.web.dashboard.failures import group_failures, matches, reason_of
from docmill.web.dashboard.formatting import duration, usd


def failed(job_id: str, error_type: str, message: str, *, queue: str = "default", at: float = 0.0) -> Job:
    return Job(
        id=job_id,
        name="app.handler",
        queue=queue,
        state=JobState.FAILED,
        finished_at=at,
        error=ErrorInfo(error_type, message, "Traceback ..."),
    )


def test_the_varying_parts_of_a_message_are_masked() -> None:
    assert reason_of(failed("1", "KeyError", "'doc-17'")) == "KeyError: '…'"
    assert reason_of(failed("2", "ValueError", "record 942 is locked")) == "ValueError: record N is locked"
    assert (
        reason_of(failed("3", "OSError", "cannot open /srv/data/a1.pdf after 3.5 s"))
        == "OSError: cannot open <path> after N s"
    )
    assert (
        reason_of(failed("4", "JobTimeout", "job 0f8e2c1a9b7d4e6f8a0b timed out\nmore"))
        == "JobTimeout: job <id> timed out"
    )
    assert reason_of(failed("5", "RuntimeError", "")) == "RuntimeError"


def test_failures_are_grouped_by_reason_biggest_group_first_newest_example() -> None:
    jobs = [
        failed("c", "ValueError", "record 3 is locked", queue="b", at=30.0),
        failed("x", "KeyError", "'k'", at=20.0),
        failed("b", "ValueError", "record 2 is locked", at=10.0),
        failed("a", "ValueError", "record 1 is locked", at=5.0),
    ]
    groups = group_failures(jobs)
    assert [(g.reason, g.count, sorted(g.queues)) for g in groups] == [
        ("ValueError: record N is locked", 3, ["b", "default"]),
        ("KeyError: '…'", 1, ["default"]),
    ]
    assert groups[0].example is not None and groups[0].example.id == "c"
    assert groups[0].latest_at == 30.0


def test_a_filter_matches_the_reason_the_error_text_and_the_job_name() -> None:
    job = failed("1", "ValueError", "record 7 is locked")
    assert matches(job, reason="ValueError: record N is locked")
    assert not matches(job, reason="KeyError: '…'")
    assert matches(job, text="LOCKED") and matches(job, text="app.hand")
    assert not matches(job, text="timeout")
    assert not matches(job, name="other.handler")


def test_durations_and_money_read_whole() -> None:
    assert [duration(s) for s in (0.443, 12.5, 242, 11_100, 200_000)] == [
        "443 ms",
        "12.5 s",
        "4 min 2 s",
        "3 h 5 min",
        "2 d 7 h",
    ]
    assert [usd(v) for v in (0, 0.0123, 12.5, None)] == ["$0.00", "$0.0123", "$12.50", "\u2013"]


def test_a_chart_scales_its_series_to_the_box_from_zero() -> None:
    chart = line_chart("Jobs", "jobs", {"a": [0, 5, 10], "b": [None, 10, 0]})
    assert chart.peak == 10
    assert chart.lines == [("a", "4.0,156.0 300.0,80.0 596.0,4.0"), ("b", "4.0,156.0 300.0,4.0 596.0,156.0")]
    assert line_chart("Empty", "jobs", {"a": [None, None]}).lines == [("a", "4.0,156.0 596.0,156.0")]
