"""The producer's side: dispatch jobs, and the operator actions that span many calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from docmill.queue.backend import Backend
from docmill.queue.job import Job
from docmill.queue.options import JobOptions
from docmill.queue.registry import Registry, merge_options

BULK_CHUNK = 1000  # jobs per backend call in dispatch_many; bounds memory and script size


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One job to dispatch in bulk."""

    handler: str | Callable[..., Any]
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: JobOptions | None = None


class Client:
    """Dispatches jobs to a backend. Handler options from ``registry`` apply when known."""

    def __init__(self, backend: Backend, registry: Registry | None = None, *, default_queue: str = "default"):
        self.backend = backend
        self.registry = registry
        self.default_queue = default_queue

    def build(self, item: Dispatch) -> Job:
        name = item.handler if isinstance(item.handler, str) else self._name_of(item.handler)
        options = item.options
        if self.registry is not None and name in self.registry:
            options = merge_options(self.registry.get(name).options, options)
        return Job.build(name, list(item.args), item.kwargs, options, default_queue=self.default_queue)

    async def dispatch(
        self,
        handler: str | Callable[..., Any],
        *args: Any,
        options: JobOptions | None = None,
        **kwargs: Any,
    ) -> str:
        """Dispatch one job; returns its id (or, for a held unique key, the holder's id)."""
        ids = await self.backend.enqueue([self.build(Dispatch(handler, args, kwargs, options))])
        return ids[0]

    async def dispatch_many(self, items: Iterable[Dispatch]) -> list[str]:
        """Dispatch many jobs in chunks of ``BULK_CHUNK``, one backend round trip per chunk."""
        ids: list[str] = []
        chunk: list[Job] = []
        for item in items:
            chunk.append(self.build(item))
            if len(chunk) >= BULK_CHUNK:
                ids += await self.backend.enqueue(chunk)
                chunk = []
        if chunk:
            ids += await self.backend.enqueue(chunk)
        return ids

    async def retry_all_failed(
        self,
        queue: str | None = None,
        *,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Retry every failed job, ``batch`` at a time (constant memory on any backlog)."""
        total = 0
        while True:
            ids = await self.backend.oldest_failed_ids(queue, limit=batch)
            if not ids:
                return total
            moved = await self.backend.retry_failed(ids)
            total += moved
            if progress is not None:
                progress(total)
            if moved == 0:  # another operator forgot them meanwhile; avoid spinning
                return total

    def _name_of(self, func: Callable[..., Any]) -> str:
        if self.registry is not None:
            return self.registry.name_of(func)
        return f"{func.__module__}.{func.__qualname__}"
