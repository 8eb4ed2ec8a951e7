"""Options: precedence (job > queue > worker, applied only by ``resolve_options``) and backoff."""

from __future__ import annotations

from typing import Any

import pytest

from docmill.queue import ConfigurationError, JobOptions, QueueConfig, WorkerOptions, resolve_options
from docmill.queue.options import backoff_delay_s, normalize_backoff

WORKER = WorkerOptions(tries=1, max_exceptions=9, timeout_s=60.0, backoff_s=0)
QUEUE = QueueConfig(tries=2, max_exceptions=8, timeout_s=120.0, backoff_s=(5, 10))
JOB: dict[str, Any] = {"tries": 3, "max_exceptions": 7, "timeout_s": 300.0, "backoff_s": 30}
UNSET: dict[str, Any] = dict.fromkeys(JOB)


def test_the_jobs_own_options_win_over_queue_and_worker() -> None:
    effective = resolve_options(**JOB, queue=QUEUE, worker=WORKER)

    assert (effective.tries, effective.max_exceptions, effective.timeout_s, effective.backoff_s) == (
        3,
        7,
        300.0,
        30,
    )


def test_the_queue_configuration_wins_over_the_worker_when_the_job_sets_nothing() -> None:
    effective = resolve_options(**UNSET, queue=QUEUE, worker=WORKER)

    assert (effective.tries, effective.max_exceptions, effective.timeout_s, effective.backoff_s) == (
        2,
        8,
        120.0,
        (5, 10),
    )


def test_the_worker_default_applies_when_neither_job_nor_queue_sets_an_option() -> None:
    effective = resolve_options(**UNSET, queue=None, worker=WORKER)

    assert (effective.tries, effective.max_exceptions, effective.timeout_s, effective.backoff_s) == (
        1,
        9,
        60.0,
        0,
    )


@pytest.mark.parametrize("option", sorted(JOB))
def test_each_option_falls_through_on_its_own(option: str) -> None:
    # Only this option is set on the job; the others come from the queue.
    effective = resolve_options(**{**UNSET, option: JOB[option]}, queue=QUEUE, worker=WORKER)

    for name in JOB:
        expected = JOB[name] if name == option else getattr(QUEUE, name)
        assert getattr(effective, name) == expected, name


def test_a_partial_queue_configuration_falls_through_to_the_worker_per_option() -> None:
    effective = resolve_options(**UNSET, queue=QueueConfig(timeout_s=900.0), worker=WORKER)

    assert (effective.tries, effective.timeout_s, effective.backoff_s) == (1, 900.0, 0)


def test_max_exceptions_stays_unlimited_when_nobody_sets_it() -> None:
    effective = resolve_options(**UNSET, queue=None, worker=WorkerOptions())

    assert effective.max_exceptions is None


def test_a_zero_job_value_is_a_value_not_a_missing_one() -> None:
    # backoff 0 on the job means "retry at once", not "use the queue's backoff".
    effective = resolve_options(**{**UNSET, "backoff_s": 0}, queue=QUEUE, worker=WORKER)

    assert effective.backoff_s == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (5, 5),
        (5.9, 5),
        (0, 0),
        ([1, 5, 30], (1, 5, 30)),
        ((1, 5), (1, 5)),
        ([7], (7,)),
        ("5", 5),
        ("1,5,30", (1, 5, 30)),
        (" 1 , 5 ,30 ", (1, 5, 30)),
        ("2.5", 2),
    ],
)
def test_backoff_is_normalised_to_seconds_or_a_tuple_of_seconds(given: Any, expected: Any) -> None:
    assert normalize_backoff(given) == expected


@pytest.mark.parametrize("given", ["", " , ", "a,b", "5s", -1, [], [1, -1]])
def test_an_invalid_backoff_is_a_configuration_error(given: Any) -> None:
    with pytest.raises(ConfigurationError):
        normalize_backoff(given)


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1), (2, 5), (3, 30), (4, 30), (50, 30)])
def test_a_backoff_lists_last_value_repeats(attempt: int, expected: int) -> None:
    assert backoff_delay_s((1, 5, 30), attempt) == expected


@pytest.mark.parametrize("attempt", [0, 1, 2, 10])
def test_a_single_backoff_value_applies_to_every_retry(attempt: int) -> None:
    assert backoff_delay_s(12, attempt) == 12


def test_attempt_zero_uses_the_first_backoff_value() -> None:
    assert backoff_delay_s((1, 5, 30), 0) == 1


@pytest.mark.parametrize(
    "options",
    [{"tries": 0}, {"max_exceptions": 0}, {"timeout_s": 0}, {"timeout_s": -1}, {"delay_s": -0.1}],
)
def test_job_options_reject_impossible_values(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JobOptions(**options)


@pytest.mark.parametrize(
    "options",
    [{"queues": ()}, {"concurrency": 0}, {"tries": 0}, {"lease_s": 0}],
)
def test_worker_options_reject_impossible_values(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        WorkerOptions(**options)


def test_options_are_frozen() -> None:
    options = JobOptions(tries=3)

    with pytest.raises(AttributeError):
        options.tries = 4  # type: ignore[misc]
