"""The producer's side: dispatch jobs, and the operator actions that span many calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from docmill.queue.arguments import check_arguments
from docmill.queue.backend import Backend
from docmill.queue.errors import ConfigurationError
from docmill.queue.job import Job
from docmill.queue.options import JobOptions
from docmill.queue.registry import Registry, merge_options

BULK_CHUNK = 1000  # jobs per backend call in dispatch_many; bounds memory and script size
# ``dispatch(h, queue="x")`` would hand ``queue`` to the handler and the job to the default
# queue: what a Celery or RQ user types first, so such a keyword is refused, not passed on.
_OPTION_NAMES = frozenset(f.name for f in fields(JobOptions))


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
        """The job to store; refuses arguments that would not reach the handler unchanged."""
        name = item.handler if isinstance(item.handler, str) else self._name_of(item.handler)
        options = item.options
        if options is not None and not isinstance(options, JobOptions):
            raise ConfigurationError(
                f"options of job {name!r} must be a JobOptions, not a {type(options).__name__}: "
                "options=JobOptions(queue=..., tries=...)"
            )
        check_arguments(name, item.args, item.kwargs)
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
        """Dispatch one job; returns its id (or, for a held unique key, the holder's id).

        ``kwargs`` go to the handler; a keyword named like a ``JobOptions`` field (``queue``,
        ``tries``, ...) is refused, since it is almost always meant as the job's option.
        """
        clashes = sorted(kwargs.keys() & _OPTION_NAMES)
        if clashes:
            key = clashes[0]
            raise ConfigurationError(
                f"{key}= is a job option, not a handler argument: dispatch(handler, ..., "
                f"options=JobOptions({key}=...)); a handler argument of that name goes in "
                f"dispatch_many([Dispatch(handler, kwargs={{{key!r}: ...}})])"
            )
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
        """Retry the jobs that were failed when the call started, ``batch`` at a time, oldest
        first (constant memory on any backlog); returns how many were retried.

        A retried job that fails again meanwhile, while workers run, lands behind the
        failures that were there at the start, so it is not retried twice: the walk stops
        at the newest failure it saw at the start, and never retries more jobs than the
        store held then (the bound holds even if others retry or forget jobs meanwhile).
        """
        newest = await self.backend.failed_page(queue, limit=1)
        if not newest:
            return 0
        last_id = newest[0].id
        left = await self.backend.failed_count(queue)
        total = 0
        while left > 0:
            ids = await self.backend.oldest_failed_ids(queue, limit=min(batch, left))
            reached_last = last_id in ids
            if reached_last:
                ids = ids[: ids.index(last_id) + 1]
            if not ids:
                break
            moved = await self.backend.retry_failed(ids)
            total += moved
            left -= len(ids)
            if progress is not None:
                progress(total)
            if reached_last or moved == 0:  # moved == 0: another operator took them meanwhile
                break
        return total

    def _name_of(self, func: Callable[..., Any]) -> str:
        if self.registry is not None:
            return self.registry.name_of(func)
        return f"{func.__module__}.{func.__qualname__}"
