"""The attempt a handler is running, so that it can say "this attempt made progress".

A long job that saves its work as it goes (the document pipeline saves each LLM call) should
not run out of tries because its worker was killed while the job was moving forward. The
runner sets the running attempt in a context variable around an async handler's call;
``WorkerContext.progress()`` reads it and asks the backend to ``record_progress`` once per
attempt. After that the attempt is given back when it ends without completing, whether the
worker is killed (the lease lapses) or the handler raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from docmill.queue.backend import Backend
from docmill.queue.job import Job


@dataclass(slots=True, eq=False)
class Attempt:
    """One run of one reserved job, and whether it recorded progress."""

    job: Job  # as reserved: its reservation token names the attempt
    backend: Backend
    progressed: bool = False

    async def record_progress(self) -> bool:
        """Mark this attempt as one that made progress; False when the lease was lost.

        Only the first call of an attempt reaches the backend: later calls return True.
        """
        if not self.progressed:
            self.progressed = await self.backend.record_progress(self.job)
        return self.progressed


_current: ContextVar[Attempt | None] = ContextVar("docmill_current_attempt", default=None)


def current_attempt() -> Attempt | None:
    """The attempt the calling handler runs in, or None outside a job."""
    return _current.get()


@contextmanager
def running(attempt: Attempt) -> Iterator[Attempt]:
    """Make ``attempt`` the current one for the code run inside (the handler's call)."""
    token = _current.set(attempt)
    try:
        yield attempt
    finally:
        _current.reset(token)
