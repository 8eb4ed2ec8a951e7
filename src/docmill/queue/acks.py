"""When a worker sends the acknowledgements it has gathered (one ``complete`` call each time).

An acknowledgement is on no job's path: its job has finished, and the lease is kept
renewed until the backend has the ack. What it does cost is the backend's time: on
Redis a ``complete`` call is a script, and while a script runs every other client
waits, the worker's running jobs and their own calls to that server included. Sent
in the middle of a burst of finishing jobs, acks slow the very jobs that come next.

So the worker gathers acks and sends them once its jobs have stopped finishing for
a few milliseconds (a burst is over), and in any case once the oldest has waited
``max_wait_s`` (a steady stream of short jobs is never quiet) or ``max_batch`` are
waiting. A stopping worker sends at once.

The cost: a worker killed while acks wait re-runs those jobs when their leases
lapse (delivery is at-least-once), and a finished job shows as reserved for up to
``max_wait_s`` longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from docmill.queue.backend import Backend, Completion
from docmill.queue.events import EventLog
from docmill.queue.health import BackendHealth, reraise_if_cancelled


@dataclass(frozen=True, slots=True)
class AckPolicy:
    gather_s: float = 0.002  # always wait this long after the first ack, so a burst shares a call
    quiet_s: float = 0.005  # then send once no job has ended for this long ...
    max_wait_s: float = 0.05  # ... or once the first ack has waited this long
    max_batch: int = 500  # ... or once this many wait

    def due(self, *, now: float, first_at: float, last_job_end: float, pending: int, stopping: bool) -> bool:
        """Whether to send the gathered acks now (times on one monotonic clock)."""
        if stopping or pending >= self.max_batch:
            return True
        waited = now - first_at
        if waited < self.gather_s:
            return False
        return now - last_job_end >= self.quiet_s or waited >= self.max_wait_s


class AckFlusher:
    """Gathers a worker's acknowledgements and sends them in one ``complete`` call when
    ``policy`` says. An ack that cannot be sent is kept (its lease is still renewed, see
    ``pending``) and sent again after the backoff."""

    def __init__(
        self,
        backend: Backend,
        policy: AckPolicy,
        health: BackendHealth,
        log: EventLog,
        *,
        last_job_end: Callable[[], float],
        stopping: Callable[[], bool],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.health = health
        self.log = log
        self.pending: list[Completion] = []  # finished jobs whose ack the backend does not have yet
        self._last_job_end = last_job_end
        self._stopping = stopping
        self._sleep = sleep
        self._event = asyncio.Event()

    def add(self, completion: Completion) -> None:
        self.pending.append(completion)
        self._event.set()

    def wake(self) -> None:
        """Look again now (a stopping worker sends at once)."""
        self._event.set()

    async def run(self, finished: Callable[[], bool]) -> None:
        """Send acks as they become due; return once ``finished()`` after a send (stopping,
        nothing running). Never cancel it midway: a ``complete`` call cut off would lose its
        batch."""
        loop = asyncio.get_running_loop()  # its clock, not an injectable one: this is I/O timing
        while True:
            await self._event.wait()
            first_at = loop.time()
            while True:
                await asyncio.sleep(self.policy.gather_s)
                due = self.policy.due(
                    now=loop.time(),
                    first_at=first_at,
                    last_job_end=self._last_job_end(),
                    pending=len(self.pending),
                    stopping=self._stopping(),
                )
                if due:
                    break
            self._event.clear()
            flushed = await self.flush()
            if finished():
                return  # the worker's close makes the last attempts
            if not flushed:
                await self._sleep(self.health.backoff_s())

    async def flush(self) -> bool:
        """Send every pending ack now; False (and the acks kept) if the backend failed."""
        if not self.pending:
            return True
        batch, self.pending = self.pending, []
        try:
            ignored = await self.backend.complete(batch)
        except Exception as exc:  # keep the acks (their leases are still renewed) and try again
            self.pending[:0] = batch
            reraise_if_cancelled(exc)
            self._event.set()
            self.health.error(exc, "complete")
            return False
        self.health.ok()
        for job_id in ignored:
            self.log.warning("job.ack_ignored", id=job_id, reason="the lease was lost before the ack")
        return True
