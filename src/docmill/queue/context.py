"""What a worker hands its handlers: its id, backend, client and event log (arq's ``ctx``).

A registry's start-up hooks receive the context before the worker takes its first job
and may put what its handlers need into ``state`` (a database, an API client); its
shut-down hooks receive it after the last job, to close those. A handler registered
with ``context=True`` is called with the context as its first argument, so it never
builds a connection of its own: everything it dispatches goes to the backend its
worker serves. Its ``progress()`` tells the engine that the job it runs moved forward,
so a kill or an exception after that does not spend one of the job's tries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docmill.queue.backend import Backend
from docmill.queue.client import Client
from docmill.queue.events import EventLog
from docmill.queue.progress import current_attempt


@dataclass(slots=True)
class WorkerContext:
    """One worker's dependencies, shared by every job it runs."""

    worker_id: str
    backend: Backend
    client: Client
    log: EventLog
    state: dict[str, Any] = field(default_factory=dict)

    async def progress(self) -> bool:
        """Say that the job this (async) handler runs made progress in this attempt.

        The attempt then does not count toward the job's tries, even if the worker is
        killed or the handler raises afterwards (``Backend.record_progress``); a job that
        kills its worker without calling it still ends in the failed store. Call it after
        work that a retry will not redo has been saved. Only the first call per attempt
        reaches the backend. Returns False outside a job (a no-op) or when the worker no
        longer holds the job's lease.
        """
        attempt = current_attempt()
        if attempt is None:
            return False
        return await attempt.record_progress()
