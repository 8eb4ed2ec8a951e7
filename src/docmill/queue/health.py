"""How long the backend has been unreachable, and when that becomes a reason to stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from docmill.queue.events import EventLog


class BackendHealth:
    """Counts a worker's backend failures; ``on_lost`` fires once after ``grace_s`` of failing.

    Every failed call reports ``error``; any successful call reports ``ok``.
    The worker keeps retrying with backoff meanwhile; jobs stay safe behind
    their leases.
    """

    def __init__(
        self,
        log: EventLog,
        grace_s: float,
        on_lost: Callable[[], None],
        monotonic: Callable[[], float] = time.monotonic,
        on_recovered: Callable[[float], None] | None = None,
    ) -> None:
        self.log = log
        self._on_recovered = on_recovered  # called with how long the backend was failing
        self.grace_s = grace_s
        self._on_lost = on_lost
        self._monotonic = monotonic
        self.down_since: float | None = None
        self.failures = 0

    def error(self, exc: BaseException, where: str) -> None:
        now = self._monotonic()
        if self.down_since is None:
            self.down_since = now
        self.failures += 1
        down_s = now - self.down_since
        self.log.warning(
            "worker.backend_error",
            during=where,
            down_s=round(down_s, 1),
            error=f"{type(exc).__name__}: {exc}",
        )
        if down_s >= self.grace_s:
            self._on_lost()

    def ok(self) -> None:
        if self.down_since is not None:
            down_s = self._monotonic() - self.down_since
            self.log.info("worker.backend_recovered", down_s=round(down_s, 1))
            self.down_since = None
            self.failures = 0
            if self._on_recovered is not None:
                self._on_recovered(down_s)

    def backoff_s(self) -> float:
        """How long to wait before the next try: 0.1 s doubling to 5 s."""
        return min(0.1 * 2.0 ** max(0, self.failures - 1), 5.0)


def cancelling() -> bool:
    """True when the current task was asked to cancel.

    Some clients (redis-py among them) swallow a cancellation that arrives
    mid-call, or answer it with a connection error; a background loop checks
    this so that it still ends.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def reraise_if_cancelled(exc: BaseException) -> None:
    """Re-raise a cancellation that a client library turned into an ordinary error."""
    if cancelling():
        raise asyncio.CancelledError() from exc
