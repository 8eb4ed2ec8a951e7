"""Async job timeouts for a whole worker on one timer, instead of one timer per job.

``asyncio.timeout()`` schedules a timer when a job starts and cancels it when
the job ends: a heap push, a cancel and, every few hundred jobs, a rebuild of
the loop's timer heap, all for deadlines that almost never fire. A worker of
short jobs pays that on every job, in the same bursts in which its jobs
finish and the next ones start.

Here each running job's deadline sits in a set, and one timer is due at the
earliest deadline known when it was set. A job that starts later with a later
deadline (the usual case: the same timeout, a later start) changes nothing;
only an earlier deadline moves the timer. When the timer fires it cancels the
tasks past their deadline and sets itself for the nearest of the rest.

The semantics are ``asyncio.timeout``'s: the task is cancelled at its
deadline, and on leaving the block that cancellation becomes ``TimeoutError``
unless the task was also cancelled from elsewhere (then the cancellation
stands), and the task's cancel count is restored either way.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """One job's time limit: a context manager around the job's ``await``."""

    __slots__ = ("_cancelling", "_task", "_watch", "expired", "when")

    def __init__(self, watch: Deadlines, task: asyncio.Task[object], when: float) -> None:
        self._watch = watch
        self._task = task
        self._cancelling = task.cancelling()
        self.when = when  # in the loop's clock
        self.expired = False

    def __enter__(self) -> Deadline:
        self._watch._arm(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._watch._armed.discard(self)
        if self.expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()


class Deadlines:
    """The deadlines of one event loop's running jobs, watched by a single timer."""

    def __init__(self) -> None:
        self._armed: set[Deadline] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def limit(self, timeout_s: float) -> Deadline:
        """A deadline ``timeout_s`` from now for the current task; enter it to start it."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        return Deadline(self, task, loop.time() + timeout_s)

    def __len__(self) -> int:
        return len(self._armed)

    def _arm(self, deadline: Deadline) -> None:
        self._armed.add(deadline)
        timer = self._timer
        if timer is None or deadline.when < timer.when():
            self._schedule(deadline.when)

    def _schedule(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        """Cancel the tasks past their deadline; set the timer for the nearest of the rest."""
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        nearest: float | None = None
        for deadline in list(self._armed):
            if deadline.when <= now:
                self._armed.discard(deadline)
                deadline._expire()
            elif nearest is None or deadline.when < nearest:
                nearest = deadline.when
        if nearest is not None:
            self._schedule(nearest)
