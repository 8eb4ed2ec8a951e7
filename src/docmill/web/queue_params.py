"""The queue names and job ids a request may carry, checked before the backend is asked.

A queue name follows the one rule of ``docmill.queue.names``; the schema declares its
length, and anything else the rule refuses (a comma, a control character, a space at an
end) is a 422 with the rule's own sentence. Job ids are what ``new_job_id`` makes, plus
some room: letters, digits, ``-`` and ``_``, at most 64 of them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from docmill.queue.errors import InvalidQueueName
from docmill.queue.names import MAX_QUEUE_NAME_LENGTH, RULE, check_queue_name
from docmill.web.errors import InvalidRequest

MAX_JOB_ID_LENGTH = 64
JOB_ID_PATTERN = r"^[0-9A-Za-z_-]+$"
MAX_FAILED_PAGE = 1000


def _checked(name: str) -> str:
    try:
        return check_queue_name(name)
    except InvalidQueueName as exc:
        raise InvalidRequest(f"{str(exc)[:1].upper()}{str(exc)[1:]}") from None


def queue_in_path(
    queue: Annotated[
        str,
        Path(min_length=1, max_length=MAX_QUEUE_NAME_LENGTH, description=f"The queue's name: {RULE}."),
    ],
) -> str:
    return _checked(queue)


def queue_filter(
    queue: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_QUEUE_NAME_LENGTH, description="Only this queue's jobs."),
    ] = None,
) -> str | None:
    return None if queue is None else _checked(queue)


QueueName = Annotated[str, Depends(queue_in_path)]
QueueFilter = Annotated[str | None, Depends(queue_filter)]
JobId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_JOB_ID_LENGTH, pattern=JOB_ID_PATTERN, description="The job's id."),
]
