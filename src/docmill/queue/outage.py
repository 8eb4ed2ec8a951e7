"""When a worker that lost its backend may reserve jobs again.

While the backend is away no lease is renewed; once it is back, every lease that
lapsed meanwhile is reclaimed by the next ``reserve`` (from any worker) and its job
handed out again. Among those jobs are jobs that finished during the outage and
whose acks wait in their workers, and jobs still running there: reserved again
before their holders reach the backend, they would run twice.

So after an outage long enough to lapse a lease, a worker reserves nothing until
``settle_s`` after the backend answered again: long enough for every worker's
retries (at most ``RETRY_CAP_S`` apart, and lease renewals at most ``lease_s / 9``
apart after a failure) to deliver their acks and renew their leases first. While
the outage lasts, the worker does not call ``reserve`` at all (its first success
would be the reclaiming call); it probes with a call that changes nothing.

A shorter outage lapses no lease: the renewer keeps each lease at least two
thirds of ``lease_s`` ahead, and a worker notices an outage within a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable

RETRY_CAP_S = 5.0  # BackendHealth.backoff_s never waits longer between tries
SETTLE_MARGIN_S = 2.0


class OutageGate:
    """Says how long the worker must still wait before its next ``reserve``."""

    def __init__(self, lease_s: float, monotonic: Callable[[], float]) -> None:
        self.lapse_s = lease_s / 6  # an outage at least this long may have lapsed someone's lease
        self.settle_s = max(RETRY_CAP_S, lease_s / 9) + SETTLE_MARGIN_S
        self._monotonic = monotonic
        self._settled_at = 0.0  # monotonic time from which reserving is safe again

    def long_outage(self, down_since: float | None) -> bool:
        """Whether the backend has been failing long enough that ``reserve`` must wait."""
        return down_since is not None and self._monotonic() - down_since >= self.lapse_s

    def recovered(self, down_s: float) -> None:
        """The backend answered again after ``down_s`` seconds of failures."""
        if down_s >= self.lapse_s:
            self.settle()

    def settle(self) -> None:
        """Reserve nothing for ``settle_s`` from now (also: a worker that had to wait to connect)."""
        self._settled_at = max(self._settled_at, self._monotonic() + self.settle_s)

    def wait_s(self) -> float:
        """Seconds left before reserving is safe again (0: reserve now)."""
        return max(0.0, self._settled_at - self._monotonic())
