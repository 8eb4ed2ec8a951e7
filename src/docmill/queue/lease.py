"""Lease renewal: one background task keeps every lease a worker holds alive.

Every ``lease_s / 3`` seconds it renews *all* held jobs in one ``extend``
call, so the cost does not grow with concurrency. Ids the backend reports
as lost (the lease lapsed, e.g. after a long pause or a backend outage, and
another worker may already run the job) go to ``on_lost``; the worker then
stops that job without acknowledging it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from docmill.queue.backend import Backend
from docmill.queue.health import cancelling, reraise_if_cancelled
from docmill.queue.job import Job


class LeaseRenewer:
    """Renews the leases of the jobs ``held()`` returns, forever (cancel the task to stop)."""

    def __init__(
        self,
        backend: Backend,
        lease_s: float,
        *,
        held: Callable[[], Sequence[Job]],
        on_lost: Callable[[list[str]], None],
        on_error: Callable[[BaseException, str], None],
        on_ok: Callable[[], None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.backend = backend
        self.lease_s = lease_s
        self.interval_s = lease_s / 3
        self._held = held
        self._on_lost = on_lost
        self._on_error = on_error
        self._on_ok = on_ok
        self._sleep = sleep

    async def run(self) -> None:
        delay = self.interval_s
        while not cancelling():
            await self._sleep(delay)
            # After a failed renewal try again sooner: the lease is a third closer to lapsing.
            delay = self.interval_s if await self.renew_once() else max(self.interval_s / 3, 0.05)

    async def renew_once(self) -> bool:
        """Renew every held lease once; False when the backend could not be reached."""
        jobs = list(self._held())
        if not jobs:
            return True
        try:
            lost = await self.backend.extend(jobs, self.lease_s)
        except Exception as exc:  # any backend failure: report it, keep renewing
            reraise_if_cancelled(exc)
            self._on_error(exc, "extend")
            return False
        self._on_ok()
        if lost:
            self._on_lost(lost)
        return True
