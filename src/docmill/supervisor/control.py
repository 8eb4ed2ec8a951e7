"""Cluster-wide control every master obeys: the "workers stopped" flag.

``docmill queue stop`` sets it, and every master on every host then holds zero
workers (the masters stay up); ``docmill queue start`` clears it. The flag lives
in the queue backend, the one thing all hosts share.

``BackendControlStore`` keeps it with the backend's ``set_flag``/``get_flag``;
the ``ControlStore`` protocol lets the master's tests use a dictionary instead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol

from docmill.queue import Backend

WORKERS_STOPPED = "workers-stopped"


class ControlStore(Protocol):
    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """The flag's data if it is set, else None."""

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        """Set the flag (with data describing who and when) or clear it (None)."""


class BackendControlStore:
    """Flags kept in the queue backend (see the module docstring)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        return await self.backend.get_flag(name)

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        await self.backend.set_flag(name, data)


async def stop_workers(store: ControlStore) -> dict[str, Any]:
    """Set the "workers stopped" flag; return what was recorded."""
    data = {"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"}
    await store.set_flag(WORKERS_STOPPED, data)
    return data


async def start_workers(store: ControlStore) -> bool:
    """Clear the flag; return whether it was set."""
    was = await store.get_flag(WORKERS_STOPPED)
    await store.set_flag(WORKERS_STOPPED, None)
    return was is not None


async def workers_stopped(store: ControlStore) -> dict[str, Any] | None:
    return await store.get_flag(WORKERS_STOPPED)
