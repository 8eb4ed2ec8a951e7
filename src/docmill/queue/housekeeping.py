"""A worker's housekeeping, in the background: restart requests and heartbeats.

A restart request (``docmill queue restart``) is a value in the backend, the time it
was made. A worker notes the value standing when it first looks and obeys any other
value later (Laravel's way). It never compares that time with its own start: that
would compare the backend's clock with this host's, and a host a few seconds off would
ignore restarts or restart for old ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from docmill.queue.backend import Backend
from docmill.queue.health import BackendHealth, cancelling, reraise_if_cancelled


class RestartWatch:
    """Tells a new restart request from the one standing when the worker started."""

    def __init__(self) -> None:
        self._baseline: float | None = None
        self._read = False

    def requested(self, value: float | None) -> bool:
        """Whether ``value`` (the backend's last request, if any) is a new request."""
        if not self._read:
            self._baseline, self._read = value, True
            return False
        return value != self._baseline


async def housekeep(
    backend: Backend,
    worker_id: str,
    *,
    heartbeat: Callable[[], dict[str, Any]],
    on_restart: Callable[[], None],
    health: BackendHealth,
    poll_s: float,
    heartbeat_s: float,
    monotonic: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Poll for a restart request every ``poll_s`` and write a heartbeat every ``heartbeat_s``
    (its TTL three times that), until cancelled."""
    watch = RestartWatch()
    next_heartbeat = 0.0
    while not cancelling():
        try:
            if watch.requested(await backend.restart_requested_at()):
                on_restart()
            if monotonic() >= next_heartbeat:
                next_heartbeat = monotonic() + heartbeat_s
                await backend.put_heartbeat("worker", worker_id, heartbeat(), ttl_s=3 * heartbeat_s)
        except Exception as exc:  # the worker's loop notices a lasting outage; here we only report it
            reraise_if_cancelled(exc)
            health.error(exc, "housekeeping")
        await sleep(poll_s)
