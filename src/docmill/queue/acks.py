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

from dataclasses import dataclass


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
