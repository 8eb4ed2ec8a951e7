"""The job record: spec round trip, JSON-only arguments, sortable ids, errors and releases."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from docmill.queue import ErrorInfo, Job, JobOptions, JobState, Release, SerializationError
from docmill.queue.job import TERMINAL, WAITING, new_job_id


def full_job() -> Job:
    options = JobOptions(
        queue="document-analysis",
        tries=3,
        max_exceptions=2,
        timeout_s=12.5,
        backoff_s=(1, 5, 30),
        retry_until=1_900_000_000.0,
        unique_key="document:42",
        tags=("document:42", "tenant:7"),
    )
    return Job.build(
        "docmill.documents.jobs.analyze",
        [42, "two", {"nested": [1.5, None, True]}],
        {"model": "claude", "chunks": [1, 2]},
        options,
        now=1_700_000_000.0,
    )


def test_a_spec_survives_a_json_round_trip() -> None:
    job = full_job()

    again = Job.from_spec(job.spec_json())

    assert again.spec() == job.spec()
    assert again.backoff_s == (1, 5, 30)
    assert again.tags == ("document:42", "tenant:7")


def test_a_spec_survives_a_dict_round_trip() -> None:
    job = full_job()

    assert Job.from_spec(job.spec()).spec() == job.spec()


def test_a_job_rebuilt_from_its_spec_starts_pending_and_fresh() -> None:
    again = Job.from_spec(full_job().spec_json())

    assert again.state is JobState.PENDING
    assert (again.attempts, again.exceptions, again.error, again.reservation) == (0, 0, None, None)
    assert again.available_at == again.created_at


def test_a_spec_with_an_integer_backoff_round_trips() -> None:
    job = Job.build("h", options=JobOptions(backoff_s=7))

    assert Job.from_spec(job.spec_json()).backoff_s == 7


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([object()], {}),
        ([{1, 2}], {}),
        ([], {"when": time}),
        ([math.nan], {}),
        ([math.inf], {}),
        ([b"bytes"], {}),
    ],
)
def test_arguments_that_are_not_json_raise_at_dispatch(args: list[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="cannot be stored as JSON"):
        Job.build("docmill.jobs.h", args, kwargs)


def test_the_serialization_error_names_the_job() -> None:
    with pytest.raises(SerializationError, match=r"'docmill\.jobs\.h'"):
        Job.build("docmill.jobs.h", [object()])


def test_a_job_is_delayed_when_dispatched_with_a_delay() -> None:
    job = Job.build("h", options=JobOptions(delay_s=30), now=1000.0)

    assert job.state is JobState.DELAYED
    assert (job.created_at, job.available_at) == (1000.0, 1030.0)


def test_a_job_without_a_delay_is_pending_and_available_at_once() -> None:
    job = Job.build("h", now=1000.0)

    assert job.state is JobState.PENDING
    assert job.available_at == 1000.0


def test_a_job_goes_to_the_default_queue_unless_its_options_name_one() -> None:
    assert Job.build("h", default_queue="mail").queue == "mail"
    assert Job.build("h", options=JobOptions(queue="fast"), default_queue="mail").queue == "fast"


def test_job_ids_sort_in_creation_order() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_job_id())
        time.sleep(0.002)

    assert ids == sorted(ids)


def test_job_ids_are_unique_and_fixed_width_hex() -> None:
    ids = {new_job_id() for _ in range(10_000)}

    assert len(ids) == 10_000
    assert all(len(job_id) == 22 and int(job_id, 16) >= 0 for job_id in ids)


def test_a_job_id_starts_with_its_creation_milliseconds() -> None:
    before = int(time.time() * 1000)
    job_id = new_job_id()
    after = int(time.time() * 1000)

    assert before <= int(job_id[:12], 16) <= after


def test_to_dict_is_json_ready_and_carries_the_state() -> None:
    job = full_job().copy(state=JobState.FAILED, attempts=3, error=ErrorInfo("ValueError", "bad", "tb"))

    data = json.loads(json.dumps(job.to_dict()))

    assert data["state"] == "failed"
    assert data["attempts"] == 3
    assert data["error"] == {"type": "ValueError", "message": "bad", "traceback": "tb"}
    assert data["backoff_s"] == [1, 5, 30]


def test_copy_changes_only_the_named_fields() -> None:
    job = full_job()

    changed = job.copy(attempts=2)

    assert (changed.attempts, job.attempts) == (2, 0)
    assert changed.spec() == job.spec()


def test_error_info_records_an_exception_and_round_trips() -> None:
    error = ErrorInfo.from_exception(ValueError("page 3 is empty"), "Traceback ...")

    assert error.summary() == "ValueError: page 3 is empty"
    assert ErrorInfo.from_dict(error.to_dict()) == error
    assert ErrorInfo.from_dict(None) is None
    assert ErrorInfo("JobTimeout", "").summary() == "JobTimeout"


def test_release_is_control_flow_that_except_exception_cannot_swallow() -> None:
    assert not issubclass(Release, Exception)
    assert Release(12).delay_s == 12.0
    assert Release(-3).delay_s == 0.0


def test_only_completed_and_failed_are_terminal() -> None:
    assert JobState.terminal() == TERMINAL == {JobState.COMPLETED, JobState.FAILED}
    assert {JobState.PENDING, JobState.DELAYED} == WAITING


def test_the_encoded_spec_is_reused_but_never_carried_to_a_changed_copy() -> None:
    job = Job.build("h", [1], {"k": "v"})
    first = job.spec_json()
    assert job.spec_json() is first  # encoded once: dispatch validates, the backend stores
    changed = job.copy(args=[2])
    assert json.loads(changed.spec_json())["args"] == [2]
    assert json.loads(job.spec_json())["args"] == [1]
