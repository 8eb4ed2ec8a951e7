"""What a worker hands its handlers: its id, backend, client and event log (arq's ``ctx``).

A registry's start-up hooks receive the context before the worker takes its first job
and may put what its handlers need into ``state`` (a database, an API client); its
shut-down hooks receive it after the last job, to close those. A handler registered
with ``context=True`` is called with the context as its first argument, so it never
builds a connection of its own: everything it dispatches goes to the backend its
worker serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docmill.queue.backend import Backend
from docmill.queue.client import Client
from docmill.queue.events import EventLog


@dataclass(slots=True)
class WorkerContext:
    """One worker's dependencies, shared by every job it runs."""

    worker_id: str
    backend: Backend
    client: Client
    log: EventLog
    state: dict[str, Any] = field(default_factory=dict)
