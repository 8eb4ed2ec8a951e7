"""When gathered acknowledgements are sent: after a burst of finishing jobs, or soon enough anyway."""

from __future__ import annotations

from docmill.queue.acks import AckPolicy

POLICY = AckPolicy(gather_s=0.002, quiet_s=0.005, max_wait_s=0.05, max_batch=500)


def due(now: float, last_job_end: float, pending: int = 10, stopping: bool = False) -> bool:
    return POLICY.due(now=now, first_at=1.0, last_job_end=last_job_end, pending=pending, stopping=stopping)


def test_acks_wait_while_jobs_keep_finishing() -> None:
    assert not due(now=1.003, last_job_end=1.0025)
    assert not due(now=1.030, last_job_end=1.029)


def test_acks_go_once_no_job_has_ended_for_the_quiet_time() -> None:
    assert due(now=1.010, last_job_end=1.005)
    assert not due(now=1.009, last_job_end=1.005)


def test_a_steady_stream_of_jobs_still_sends_its_acks_within_the_longest_wait() -> None:
    assert due(now=1.050, last_job_end=1.0499)


def test_a_single_quiet_job_is_acked_after_the_gather_time_at_the_earliest() -> None:
    assert not due(now=1.001, last_job_end=0.5)
    assert due(now=1.002, last_job_end=0.5)


def test_a_full_batch_or_a_stop_sends_at_once() -> None:
    assert due(now=1.0, last_job_end=1.0, pending=500)
    assert due(now=1.0, last_job_end=1.0, stopping=True)
