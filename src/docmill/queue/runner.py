"""Running one reserved job and reporting its outcome (Laravel's ``Worker::process``).

Outcomes:

* success: a ``Completion`` goes to the worker's flusher (acks are batched);
* ``Release(delay_s)``: back in ``delay_s``, the attempt refunded, nothing counted;
* an exception or a timeout: retried after the backoff, or failed for good when
  ``max_exceptions``, ``tries`` or ``retry_until`` says so;
* ``Fail`` (or an error deriving from it): failed for good at once;
* a handler this worker does not know: put back for a worker that has it, for
  up to ``unknown_handler_wait_s``, then failed (``unknown_handler.py``);
* a sync handler past its timeout cannot be interrupted: the timeout is
  recorded and ``on_sync_timeout`` asks the worker to end the process.

Effective options come from ``resolve_options`` (job > queue > worker), the one
place that precedence is applied.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from docmill.queue.backend import Backend, Completion
from docmill.queue.context import WorkerContext
from docmill.queue.deadlines import Deadlines
from docmill.queue.events import EventLog
from docmill.queue.health import BackendHealth, reraise_if_cancelled
from docmill.queue.job import ErrorInfo, Fail, Job, Release
from docmill.queue.options import EffectiveOptions, WorkerOptions, backoff_delay_s, resolve_options
from docmill.queue.progress import Attempt, running
from docmill.queue.registry import Handler, Registry
from docmill.queue.unknown_handler import unknown_handler_outcome


class Phase(Enum):
    RUNNING = "running"  # the handler runs: at shutdown it is cancelled and the job put back
    SETTLING = "settling"  # the outcome is being reported: left to finish
    DONE = "done"  # reported, or buffered for the flusher


@dataclass(slots=True, eq=False)
class Running:
    """A job this worker holds, from reservation until its task ends."""

    job: Job
    phase: Phase = Phase.RUNNING
    lost: bool = False
    in_thread: bool = False  # a sync handler runs it: cancelling the task does not stop it
    attempt: Attempt | None = None  # set while the handler runs; says whether it recorded progress
    task: asyncio.Task[None] | None = None


class _SyncOverrun(Exception):
    """A sync handler is still running after its timeout."""


class JobRunner:
    """Runs jobs for one worker; holds no per-job state beyond the ``Running`` it is given."""

    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        options: WorkerOptions,
        log: EventLog,
        health: BackendHealth,
        *,
        on_ack: Callable[[Completion], None],
        on_sync_timeout: Callable[[], None],
        context: WorkerContext | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.options = options
        self.log = log
        self.health = health
        self._on_ack = on_ack
        self._on_sync_timeout = on_sync_timeout
        self.context = context
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self._pool: ThreadPoolExecutor | None = None
        self._deadlines = Deadlines()  # one timer for every async job's timeout
        self._effective: dict[tuple[Any, ...], EffectiveOptions] = {}

    def effective(self, job: Job) -> EffectiveOptions:
        # Jobs of one kind share their options: resolve each combination once per worker.
        key = (job.queue, job.tries, job.max_exceptions, job.timeout_s, job.backoff_s)
        effective = self._effective.get(key)
        if effective is None:
            effective = resolve_options(
                tries=job.tries,
                max_exceptions=job.max_exceptions,
                timeout_s=job.timeout_s,
                backoff_s=job.backoff_s,
                queue=self.options.queue_config.get(job.queue),
                worker=self.options,
            )
            if len(self._effective) < 1024:
                self._effective[key] = effective
        return effective

    async def process(self, entry: Running) -> None:
        """Run the job (unless it has no attempts left) and report the outcome."""
        job = entry.job
        if job.name not in self.registry:
            await self._unknown_handler(entry)
            return
        handler = self.registry.get(job.name)
        effective = self.effective(job)
        now = self.clock()
        if job.attempts > effective.tries or (job.retry_until is not None and now >= job.retry_until):
            last = job.error.summary() if job.error else "none"
            why = (
                "has been attempted too many times"
                if job.attempts > effective.tries
                else "is past its retry_until"
            )
            await self._fail(
                entry, ErrorInfo("MaxAttemptsExceeded", f"{job.name} {why}; last error: {last}"), effective
            )
            return
        if self.log.info_enabled:
            self.log.info("job.started", **fields(job, effective))
        started = self.monotonic()
        deadline = self._deadlines.limit(effective.timeout_s)
        try:
            args = (self.context, *job.args) if handler.takes_context else job.args
            entry.attempt = Attempt(job, self.backend)
            if handler.is_async:
                with deadline, running(entry.attempt):
                    await handler.func(*args, **job.kwargs)
            else:
                entry.in_thread = True
                await self._run_sync(handler, args, job.kwargs, effective.timeout_s)
        except Release as release:
            await self._settle(
                entry,
                functools.partial(
                    self.backend.retry_later,
                    job,
                    delay_s=release.delay_s,
                    error=None,
                    count_exception=False,
                    refund_attempt=True,
                ),
            )
            if self.log.info_enabled:
                self.log.info("job.released", **fields(job, effective), delay_s=release.delay_s)
        except _SyncOverrun:
            # Stop first (nothing new is reserved), then record the timeout; the process ends after.
            self._on_sync_timeout()
            self.log.error(
                "worker.job_timeout",
                **fields(job, effective),
                timeout_s=effective.timeout_s,
                action="ending the process: a sync handler cannot be interrupted",
            )
            await self._after_exception(entry, effective, timeout_error(job, effective))
        except Exception as exc:
            if deadline.expired:
                await self._after_exception(entry, effective, timeout_error(job, effective))
            elif isinstance(exc, Fail):  # the handler knows no retry can help
                error = ErrorInfo.from_exception(exc, traceback.format_exc())
                await self._fail(entry, error, effective, count_exception=True)
            else:
                error = ErrorInfo.from_exception(exc, traceback.format_exc())
                await self._after_exception(entry, effective, error)
        else:
            runtime_s = self.monotonic() - started
            entry.phase = Phase.DONE
            self._on_ack(Completion(job, runtime_s=runtime_s, wait_s=max(0.0, now - job.available_at)))
            if self.log.info_enabled:
                self.log.info("job.done", **fields(job, effective), runtime_ms=round(runtime_s * 1000, 1))
        if self.options.rest_s:
            await self.sleep(self.options.rest_s)

    async def _unknown_handler(self, entry: Running) -> None:
        """Put the job back for a worker that has its handler, or fail it once the wait is over."""
        job = entry.job
        outcome = unknown_handler_outcome(job, now=self.clock(), wait_s=self.options.unknown_handler_wait_s)
        if outcome.delay_s is None:
            await self._fail(entry, outcome.error, None)
            return
        release = functools.partial(
            self.backend.retry_later,
            job,
            delay_s=outcome.delay_s,
            error=outcome.error,
            count_exception=False,
            refund_attempt=True,
        )
        if await self._settle(entry, release):
            self.log.warning(
                "job.unknown_handler",
                **fields(job),
                action="released",
                delay_s=outcome.delay_s,
                waited_s=round(outcome.waited_s),
                wait_s=self.options.unknown_handler_wait_s,
            )

    async def _run_sync(
        self, handler: Handler, args: Sequence[Any], kwargs: dict[str, Any], timeout_s: float
    ) -> None:
        if self._pool is None:  # created on first use: a worker of async handlers never starts threads
            self._pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="docmill-job")
        call = functools.partial(handler.func, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(self._pool, call)
        future.add_done_callback(_retrieve)  # the thread may finish after we stopped waiting for it
        done, _ = await asyncio.wait((future,), timeout=timeout_s)
        if not done:
            raise _SyncOverrun()
        future.result()

    async def _after_exception(self, entry: Running, effective: EffectiveOptions, error: ErrorInfo) -> None:
        """A failed attempt: retry after the backoff, or fail for good."""
        job = entry.job
        out_of_exceptions = (
            effective.max_exceptions is not None and job.exceptions + 1 >= effective.max_exceptions
        )
        past_deadline = job.retry_until is not None and self.clock() >= job.retry_until
        # An attempt that recorded progress is given back by the backend: it is not spent.
        spent = job.attempts - int(entry.attempt is not None and entry.attempt.progressed)
        if out_of_exceptions or spent >= effective.tries or past_deadline:
            await self._fail(entry, error, effective, count_exception=True)
            return
        delay_s = backoff_delay_s(effective.backoff_s, max(1, spent))
        await self._settle(
            entry,
            functools.partial(
                self.backend.retry_later,
                job,
                delay_s=delay_s,
                error=error,
                count_exception=True,
                refund_attempt=False,
            ),
        )
        self.log.warning("job.retry", **fields(job, effective), delay_s=delay_s, error=error.summary())

    async def _fail(
        self,
        entry: Running,
        error: ErrorInfo,
        effective: EffectiveOptions | None,
        *,
        count_exception: bool = False,
    ) -> None:
        fail = functools.partial(self.backend.fail, entry.job, error, count_exception=count_exception)
        held = await self._settle(entry, fail)
        self.log.error("job.failed", **fields(entry.job, effective), error=error.summary())
        if held:
            await self._after_failure(entry.job, error)

    async def _after_failure(self, job: Job, error: ErrorInfo) -> None:
        """Run the handler's ``on_failed`` hook; whatever it does, the job stays failed."""
        if job.name not in self.registry:
            return
        handler = self.registry.get(job.name)
        if handler.on_failed is None:
            return
        try:
            outcome = (
                handler.on_failed(self.context, job, error)
                if handler.on_failed_takes_context
                else handler.on_failed(job, error)
            )
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            self.log.error("job.failed_hook_error", **fields(job), error=repr(exc))

    async def _settle(self, entry: Running, call: Callable[[], Awaitable[bool]]) -> bool:
        """Report an outcome; on backend trouble try again while the backend grace lasts.

        Returns whether the backend took it (False: the lease was lost, or the backend
        stayed away and the lease will bring the job back).
        """
        entry.phase = Phase.SETTLING
        deadline = self.monotonic() + self.health.grace_s
        while True:
            try:
                held = await call()
                break
            except Exception as exc:  # backend failure: the lease keeps the job safe meanwhile
                reraise_if_cancelled(exc)
                self.health.error(exc, "report")
                delay = self.health.backoff_s()
                if self.monotonic() + delay > deadline:
                    entry.phase = Phase.DONE  # give up; the lease brings the job back
                    return False
                await self.sleep(delay)
        self.health.ok()
        entry.phase = Phase.DONE
        if not held:
            self.log.warning("job.lease_lost", **fields(entry.job), during="report")
        return held

    def close(self) -> None:
        """Stop the thread pool without waiting: a stuck sync handler must not hold the exit."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def fields(job: Job, effective: EffectiveOptions | None = None) -> dict[str, Any]:
    """The fields every job event carries."""
    attempt = f"{job.attempts}/{effective.tries}" if effective is not None else str(job.attempts)
    return {"queue": job.queue, "id": job.id, "name": job.name, "attempt": attempt}


def timeout_error(job: Job, effective: EffectiveOptions) -> ErrorInfo:
    return ErrorInfo("JobTimeout", f"{job.name} ran longer than its timeout of {effective.timeout_s:g} s")


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
