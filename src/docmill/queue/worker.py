"""The worker: one asyncio process that reserves jobs, runs up to ``concurrency`` at once,
and reports each outcome to the backend (a port of Laravel's ``Worker.php``).

The loop (``daemon``), phase by phase:

1. ``stop_if_necessary`` decides whether to stop: a signal, memory, a restart
   request, an empty queue, ``max_time``, ``max_jobs``.
2. While slots are free, reserve from the queues in priority order (fill from
   the first queue before asking the next) and start one task per busy slot;
   a slot's task goes on to the next buffered job as soon as its job ends.
3. Nothing reserved: block in ``backend.wait`` until a job may be available,
   at most ``sleep_s`` or until the earliest delayed job is due.

Around the loop run three background tasks: the lease renewer (``lease.py``),
the completion flusher (acknowledgements are gathered into one ``complete``
call, sent once a burst of finishing jobs is over: ``acks.py``), and
housekeeping (restart requests and heartbeats: ``housekeeping.py``).

Outcomes: success is acknowledged; an exception retries with backoff or fails
for good; ``Release`` puts the job back without spending an attempt; a
timeout counts as a failed attempt. An async handler is cancelled at its
timeout; a sync handler cannot be, so the worker records the timeout, puts
its other jobs back and ends with ``WorkerStopReason.JOB_TIMEOUT``; the same
goes for a sync handler whose lease is lost (``LEASE_LOST``).

Signals (``handle_signals``): SIGTERM asks for a graceful stop, however often it arrives;
SIGHUP says the supervising master died (``supervisor/children.py``) and is the same request;
SIGINT too, but a second one (a person pressing Ctrl-C again) skips the rest of the grace.

A backend outage: the worker keeps what it holds (running jobs, unsent acks) and waits for
the backend however long it takes; only a worker holding nothing stops with
``BACKEND_LOST``. After an outage long enough to lapse leases it reserves nothing until
the other workers could deliver their acks (``outage.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable

from docmill.queue.acks import AckFlusher, AckPolicy
from docmill.queue.backend import Backend, Completion, Reservation
from docmill.queue.client import Client
from docmill.queue.context import WorkerContext
from docmill.queue.errors import ConfigurationError
from docmill.queue.events import EventLog
from docmill.queue.health import BackendHealth, reraise_if_cancelled
from docmill.queue.heartbeat import RunningJob, WorkerHeartbeat
from docmill.queue.housekeeping import housekeep
from docmill.queue.job import Job
from docmill.queue.lease import LeaseRenewer
from docmill.queue.options import WorkerOptions
from docmill.queue.outage import OutageGate
from docmill.queue.prefetch import Prefetch
from docmill.queue.registry import Registry
from docmill.queue.runner import JobRunner, Phase, Running, fields
from docmill.queue.stop import WorkerStopReason

MEMORY_CHECK_INTERVAL_S = 1.0
SETTLE_WAIT_S = 10.0  # at shutdown, how long outcomes already being reported may take
INTERRUPT_WAIT_S = 2.0  # how long an interrupted wait may take to return before it is cancelled


def current_rss_mb() -> float:
    """Resident memory of this process in MiB (cheap: one read of /proc on Linux)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1048576
    except (OSError, ValueError, IndexError):
        import resource  # not Linux: fall back to the peak, the best portable figure

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Slot:
    """What one busy slot's task is running now; it moves on to buffered jobs."""

    __slots__ = ("entry",)

    def __init__(self, entry: Running) -> None:
        self.entry = entry


class Worker:
    """Runs jobs from ``options.queues`` until a stop reason comes up; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        options: WorkerOptions,
        *,
        worker_id: str | None = None,
        log: EventLog | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rss_mb: Callable[[], float] = current_rss_mb,
        handle_signals: bool = False,
        backend_grace_s: float = 60.0,
        heartbeat_s: float = 5.0,
        restart_poll_s: float = 2.5,
        ack_policy: AckPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.options = options
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
        self.log = log or EventLog()
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.rss_mb = rss_mb
        self.handle_signals = handle_signals
        self.heartbeat_s = heartbeat_s
        self.restart_poll_s = restart_poll_s
        self.registry = registry
        self.context = WorkerContext(self.worker_id, backend, Client(backend, registry), self.log)
        self.outage = OutageGate(options.lease_s, monotonic)
        self.health = BackendHealth(
            self.log, backend_grace_s, self._backend_lost, monotonic, on_recovered=self.outage.recovered
        )
        self.runner = JobRunner(
            backend,
            registry,
            options,
            self.log,
            self.health,
            on_ack=self._ack,
            on_sync_timeout=lambda: self.request_stop(WorkerStopReason.JOB_TIMEOUT),
            context=self.context,
            clock=clock,
            monotonic=monotonic,
            sleep=sleep,
        )
        self.jobs_done = 0
        self.jobs_started = 0
        self.started_at = 0.0
        self._started_mono = 0.0
        self._running: dict[str, Running] = {}
        self.prefetch = Prefetch(options.concurrency)
        self._last_job_end = 0.0  # loop clock; the ack policy waits for jobs to stop ending
        self.acks = AckFlusher(
            backend,
            ack_policy or AckPolicy(),
            self.health,
            self.log,
            last_job_end=lambda: self._last_job_end,
            stopping=lambda: self._stopping,
            sleep=sleep,
        )
        self._slot_event = asyncio.Event()
        self._idle_task: asyncio.Task[Reservation | None] | None = None
        self._idle_interrupted = False
        self._interrupting: asyncio.Task[None] | None = None  # holds the interrupt task while it runs
        self._stop_reason: WorkerStopReason | None = None  # decided outside the loop (signal, ...)
        self._stopping = False
        self._hurry = False  # a second Ctrl-C while stopping: skip the rest of the grace
        self._stop_began = 0.0  # monotonic; acks are delivered until the grace from here is over
        self._waiting_out_outage = False  # logged once: the backend is lost but jobs are held
        self._restart_requested = False
        self._queues_empty = False
        self._rss_mb = 0.0
        self._next_memory_check = 0.0

    # ================================================================== lifecycle
    @property
    def ack_policy(self) -> AckPolicy:
        """When acks are sent; refills of the prefetch buffer wait for the same quiet time."""
        return self.acks.policy

    async def run(self) -> WorkerStopReason:
        """Work until a stop reason comes up, stop gracefully, and return the reason.

        The registry's start-up hooks run first; if one raises, no job is taken and the
        worker stops with ``BOOT_FAILURE`` for a ``ConfigurationError`` (restarting cannot
        help) or ``BACKEND_LOST`` for anything else (a database that is not up yet).
        """
        loop = asyncio.get_running_loop()
        self.started_at = self.clock()
        self._started_mono = self.monotonic()
        failed = await self._start_up()
        if failed is not None:
            await self._shut_down()
            await self._close_backend()
            self.log.info("worker.stopped", reason=failed.name, exit_code=failed.exit_code, jobs_done=0)
            return failed
        handlers = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self._on_interrupt,
            signal.SIGHUP: self._on_master_gone,
        }
        signals = tuple(handlers) if self.handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, handlers[sig])  # only records it; the loop acts
        renewer = LeaseRenewer(
            self.backend,
            self.options.lease_s,
            held=self._held_jobs,
            on_lost=self._on_leases_lost,
            on_error=self.health.error,
            on_ok=self.health.ok,
            sleep=self.sleep,
        )
        self.log.info(
            "worker.started",
            worker=self.worker_id,
            pid=os.getpid(),
            queues=",".join(self.options.queues),
            concurrency=self.options.concurrency,
            lease_s=self.options.lease_s,
            loop=type(loop).__module__.split(".")[0],  # asyncio or uvloop
        )
        flusher = loop.create_task(self.acks.run(finished=lambda: self._stopping and not self._running))
        background = [
            loop.create_task(renewer.run()),
            loop.create_task(
                housekeep(
                    self.backend,
                    self.worker_id,
                    heartbeat=lambda: self.heartbeat().to_dict(),
                    on_restart=self._restart,
                    health=self.health,
                    poll_s=self.restart_poll_s,
                    heartbeat_s=self.heartbeat_s,
                    monotonic=self.monotonic,
                    sleep=self.sleep,
                )
            ),
        ]
        try:
            reason = await self.daemon()
            self._stopping = True
            self._stop_began = self.monotonic()
            self.log.info("worker.stopping", reason=reason.name, in_flight=len(self._running))
            await self._drain(reason)
            await self._deliver_acks(flusher)
        finally:
            if self._interrupting is not None:
                background.append(self._interrupting)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for sig in signals:
                loop.remove_signal_handler(sig)
            # The flusher is not cancelled: a `complete` call cut off midway would lose its batch.
            self._stopping = True
            self.acks.wake()
            await asyncio.wait((flusher,), timeout=SETTLE_WAIT_S)
            flusher.cancel()
            await self._close()
        self.log.info(
            "worker.stopped", reason=reason.name, exit_code=reason.exit_code, jobs_done=self.jobs_done
        )
        return reason

    def request_stop(self, reason: WorkerStopReason = WorkerStopReason.INTERRUPTED) -> None:
        """Ask the loop to stop. The first reason wins; asking again changes nothing, so a
        signal that arrives several times (SIGTERM, the master's death) is one stop request."""
        if self._stop_reason is None and not self._stopping:
            self._stop_reason = reason
        self._wake()

    def hurry(self) -> None:
        """Stop now: skip the rest of the grace (running jobs are cancelled and put back)."""
        if self._stop_reason is None and not self._stopping:
            self._stop_reason = WorkerStopReason.INTERRUPTED
        self._hurry = True
        self._wake()

    def _on_interrupt(self) -> None:
        """SIGINT: a person at a terminal. The first stops gracefully, a second hurries."""
        if self._stop_reason is not None or self._stopping:
            self.hurry()
        else:
            self.request_stop()

    def _on_master_gone(self) -> None:
        """SIGHUP, the parent-death signal the master sets (``supervisor/children.py``).

        The kernel sends it once for every thread of the dying master, so it arrives several
        times; each is the same request: finish the running jobs within the grace, hand back
        the jobs reserved ahead, and exit, as a SIGTERM from a living master would.
        """
        if self._stop_reason is None and not self._stopping:
            self.log.warning("worker.master_gone", action="finishing the running jobs, then stopping")
        self.request_stop(WorkerStopReason.MASTER_GONE)

    def _backend_lost(self) -> None:
        """The backend failed for longer than the grace. A worker holding nothing stops
        (``BACKEND_LOST``: its supervisor restarts it with backoff); one holding finished jobs'
        acks, running jobs or jobs reserved ahead waits for the backend however long it takes:
        exiting would drop the acks, and those jobs would run again."""
        if not self._running and not self.prefetch.jobs and not self.acks.pending:
            self.request_stop(WorkerStopReason.BACKEND_LOST)
            return
        if not self._waiting_out_outage:
            self._waiting_out_outage = True
            self.log.warning(
                "worker.backend_lost_holding_jobs",
                running=len(self._running),
                reserved_ahead=len(self.prefetch.jobs),
                unsent_acks=len(self.acks.pending),
                action="waiting for the backend to deliver the acks",
            )

    def _wake(self) -> None:
        """Interrupt the loop's current wait (for a job, or for a free slot)."""
        self._slot_event.set()
        task = self._idle_task
        if task is None or task.done() or self._idle_interrupted:
            return
        self._idle_interrupted = True
        if self.backend.interrupts_waits:
            # Not cancelled: the wait may be reserving jobs in the same round trip, and a
            # reservation cut off midway would be held by nobody until its lease lapsed.
            self._interrupting = asyncio.get_running_loop().create_task(self._interrupt_idle(task))
        else:
            task.cancel()

    async def _interrupt_idle(self, task: asyncio.Task[Reservation | None]) -> None:
        """Ask the backend to end the wait; cancel it only if the backend does not answer."""
        try:
            await asyncio.wait_for(self.backend.interrupt_wait(self.worker_id), INTERRUPT_WAIT_S)
            await asyncio.wait((task,), timeout=INTERRUPT_WAIT_S)
        except Exception as exc:
            reraise_if_cancelled(exc)
            self.health.error(exc, "interrupt_wait")
        if not task.done():
            task.cancel()  # a reservation it made, if any, comes back when its lease lapses

    # ================================================================== the loop
    async def daemon(self) -> WorkerStopReason:
        """Reserve and start jobs until ``stop_if_necessary`` names a reason."""
        while True:
            reason = self.stop_if_necessary()
            if reason is not None:
                return reason
            self._start_ready()
            if self.outage.long_outage(self.health.down_since):
                await self._probe_backend()
                continue
            if (settling_s := self.outage.wait_s()) > 0:
                await self._wait_for_slot_or_stop(settling_s)
                continue
            wanted = self._wanted()
            if wanted <= 0:
                self._slot_event.clear()
                try:  # a buffer with room is topped up once jobs stop finishing (prefetch.py)
                    async with asyncio.timeout(self.ack_policy.quiet_s if self.prefetch.has_room() else None):
                        await self._slot_event.wait()
                except TimeoutError:
                    pass
                continue
            try:
                reserved, next_at = await self._reserve(wanted)
            except Exception as exc:  # any backend failure: back off; BACKEND_LOST after the grace
                reraise_if_cancelled(exc)
                self.health.error(exc, "reserve")
                await self.sleep(self.health.backoff_s())
                continue
            self.health.ok()
            self._queues_empty = reserved == 0
            if reserved:
                self._start_ready()
            elif self.prefetch.jobs:  # the queues ran dry but jobs wait for a slot here
                self._slot_event.clear()
                await self._slot_event.wait()
            elif not (self.options.stop_when_empty and not self._running):
                await self._idle(next_at, wanted)

    def stop_if_necessary(self) -> WorkerStopReason | None:
        """The reason to stop now, if any (Laravel's ``stopIfNecessary``); checked between jobs."""
        if self._stop_reason is not None:
            return self._stop_reason
        now = self.monotonic()
        if self.options.memory_mb and now >= self._next_memory_check:
            self._next_memory_check = now + MEMORY_CHECK_INTERVAL_S
            self._rss_mb = self.rss_mb()
            if self._rss_mb >= self.options.memory_mb:
                return WorkerStopReason.MEMORY
        if self._restart_requested:
            return WorkerStopReason.RESTART
        if (
            self.options.stop_when_empty
            and self._queues_empty
            and not self._running
            and not self.prefetch.jobs
        ):
            return WorkerStopReason.EMPTY
        if self.options.max_time_s and now - self._started_mono >= self.options.max_time_s:
            return WorkerStopReason.MAX_TIME
        if self.options.max_jobs and self.jobs_done >= self.options.max_jobs:
            return WorkerStopReason.MAX_JOBS
        return None

    async def _probe_backend(self) -> None:
        """During a long outage: wait, then ask the backend something that changes nothing.
        Not ``reserve``: once the backend is back, that would reclaim the leases that lapsed
        meanwhile, other workers' finished jobs among them (``outage.py``)."""
        await self._wait_for_slot_or_stop(self.health.backoff_s())
        if self._stop_pending():
            return
        try:
            await self.backend.restart_requested_at()
        except Exception as exc:
            reraise_if_cancelled(exc)
            self.health.error(exc, "probe")
            return
        self.health.ok()

    async def _wait_for_slot_or_stop(self, timeout_s: float) -> None:
        self._slot_event.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._slot_event.wait()
        except TimeoutError:
            pass

    def _wanted(self) -> int:
        """How many jobs to reserve now: free slots, plus the prefetch buffer's refill."""
        free = self.options.concurrency - len(self._running)
        wanted = self.prefetch.wanted(free, quiet=self._jobs_quiet())
        if self.options.max_jobs:  # never reserve jobs this worker will not run
            wanted = min(wanted, self.options.max_jobs - self.jobs_started - len(self.prefetch.jobs))
        return wanted

    def _jobs_quiet(self) -> bool:
        """Whether a burst of finishing jobs is over: none ended for the ack policy's quiet time.
        Acks and buffer refills both wait for it, so the backend's scripts run between bursts."""
        return asyncio.get_running_loop().time() - self._last_job_end >= self.ack_policy.quiet_s

    async def _reserve(self, free: int) -> tuple[int, float | None]:
        """Reserve up to ``free`` jobs in strict priority; return how many, and when the next is due."""
        reserved = 0
        next_at: float | None = None
        for queue in self.options.queues:
            result = await self.backend.reserve(
                queue, worker_id=self.worker_id, lease_s=self.options.lease_s, limit=free - reserved
            )
            self.prefetch.jobs.extend(result.jobs)
            reserved += len(result.jobs)
            if result.next_available_at is not None:
                next_at = (
                    result.next_available_at if next_at is None else min(next_at, result.next_available_at)
                )
            if reserved >= free:
                break
        return reserved, next_at

    async def _idle(self, next_at: float | None, wanted: int) -> None:
        """Wait until a job may be available: at most ``sleep_s``, or until the next is due.

        Where the backend can, the wait also reserves from the first queue as it ends,
        so a job dispatched to an idle worker starts without a second round trip.
        """
        timeout = self.options.sleep_s
        if next_at is not None:
            timeout = min(timeout, max(0.0, next_at - self.clock()))
        if self.options.max_time_s:
            timeout = min(
                timeout, max(0.0, self.options.max_time_s - (self.monotonic() - self._started_mono))
            )
        wait = self.backend.wait_and_reserve(
            self.options.queues,
            timeout,
            worker_id=self.worker_id,
            lease_s=self.options.lease_s,
            limit=wanted,
        )
        self._idle_interrupted = False
        self._idle_task = task = asyncio.get_running_loop().create_task(wait)
        try:
            await asyncio.wait((task,))  # not `await task`: a stop cancels the wait, not this loop
        finally:
            self._idle_task = None
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            if not self._idle_interrupted:  # an interrupted wait's error is moot
                self.health.error(exc, "wait")
                await self.sleep(self.health.backoff_s())
            return
        reservation = task.result()
        if reservation is not None:
            self.health.ok()
            if reservation.jobs:
                self.prefetch.jobs.extend(reservation.jobs)
                self._queues_empty = False
                # Start them now and let them take their first step before the loop goes back
                # to the backend: a job that waited for an idle worker should not also wait
                # for that worker's next round trip to be packed and sent.
                self._start_ready()
                await asyncio.sleep(0)

    # ================================================================== jobs in flight
    def _start_ready(self) -> None:
        """Start reserved jobs while slots are free (not once a stop is decided)."""
        while self._may_start_buffered():
            self._start(self.prefetch.jobs.popleft())

    def _stop_pending(self) -> bool:
        return self._stopping or self._stop_reason is not None or self._restart_requested

    def _start(self, job: Job) -> None:
        entry = self._register(job)
        slot = _Slot(entry)
        entry.task = task = asyncio.get_running_loop().create_task(self._run_slot(slot))
        task.add_done_callback(functools.partial(self._slot_ended, slot))

    def _register(self, job: Job) -> Running:
        entry = Running(job)
        self._running[job.id] = entry
        self.jobs_started += 1
        return entry

    async def _run_slot(self, slot: _Slot) -> None:
        """Run the slot's job, then buffered jobs one after another in the same task.

        Handing the slot straight to the next buffered job saves the two loop
        iterations a new task would cost (its done callback, then its first
        step); in a burst of finishing jobs every iteration waits for all the
        others, so those hops were most of the gap between one job and the next.
        """
        while True:
            entry = slot.entry
            try:
                await self.runner.process(entry)
            except Exception as exc:  # a bug in the runner: log it, keep the slot going
                self.log.error("worker.job_crashed", **fields(entry.job), error=repr(exc))
            self._job_ended(entry, done=True)
            # No yield needed for handlers that never await: the buffer only refills
            # when the loop lets the reserving task in, so a slot runs at most one
            # buffer's worth of jobs in a row.
            if not self._may_start_buffered():
                return
            slot.entry = self._register(self.prefetch.jobs.popleft())
            slot.entry.task = asyncio.current_task()

    def _may_start_buffered(self) -> bool:
        return (
            bool(self.prefetch.jobs)
            and len(self._running) < self.options.concurrency
            and not self._stop_pending()
        )

    def _slot_ended(self, slot: _Slot, task: asyncio.Task[None]) -> None:
        # A done callback, not a `finally` in the task: it runs even for a task cancelled before it started.
        self._job_ended(slot.entry, done=False)
        self._start_ready()  # a buffered job must not wait for the loop

    def _job_ended(self, entry: Running, *, done: bool) -> None:
        if self._running.get(entry.job.id) is not entry:
            return
        del self._running[entry.job.id]
        self._last_job_end = asyncio.get_running_loop().time()
        if done:
            self.jobs_done += 1
        self._slot_event.set()
        if self.options.stop_when_empty:
            self._queues_empty = False  # the job may be back in its queue: look again before stopping
            if not self._running:
                self._wake()

    def _held_jobs(self) -> list[Job]:
        """Every job whose lease this worker must keep: running, being reported, or awaiting its ack."""
        held = [e.job for e in self._running.values() if e.phase is not Phase.DONE and not e.lost]
        held.extend(self.prefetch.jobs)
        held.extend(c.job for c in self.acks.pending)
        return held

    def _on_leases_lost(self, ids: list[str]) -> None:
        for job in self.prefetch.remove(set(ids)):
            self.log.warning("job.lease_lost", **fields(job), action="dropped before it started")
        for job_id in ids:
            entry = self._running.get(job_id)
            if entry is None or entry.phase is Phase.DONE or entry.lost:
                continue  # finished meanwhile; the flusher reports any ack the backend ignores
            entry.lost = True
            self.log.warning("job.lease_lost", **fields(entry.job), action="cancelled without ack")
            if entry.phase is Phase.RUNNING and entry.task is not None:
                entry.task.cancel()
            if entry.in_thread and entry.phase is Phase.RUNNING:
                # The backend may hand the job to another worker while this thread still runs
                # it; as with a sync overrun, only ending the process stops the thread.
                self.log.error(
                    "worker.lease_lost_in_thread",
                    **fields(entry.job),
                    action="ending the process: a sync handler cannot be interrupted",
                )
                self.request_stop(WorkerStopReason.LEASE_LOST)

    def _ack(self, completion: Completion) -> None:
        self.prefetch.observe(completion.runtime_s)
        self.acks.add(completion)

    # ================================================================== housekeeping
    def _restart(self) -> None:
        self._restart_requested = True
        self._wake()

    def heartbeat(self) -> WorkerHeartbeat:
        """What ``docmill queue status`` and the dashboard see about this worker."""
        if not self.options.memory_mb:
            self._rss_mb = self.rss_mb()
        return WorkerHeartbeat(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=tuple(self.options.queues),
            state="stopping" if self._stopping else ("busy" if self._running else "idle"),
            jobs=tuple(RunningJob(e.job.id, e.job.name) for e in self._running.values()),
            reserved_ahead=len(self.prefetch.jobs),
            jobs_done=self.jobs_done,
            memory_mb=round(self._rss_mb, 1),
            started_at=self.started_at,
            concurrency=self.options.concurrency,
        )

    # ================================================================== start-up and shut-down hooks
    async def _start_up(self) -> WorkerStopReason | None:
        """Run the registry's start-up hooks; the stop reason if one of them failed."""
        for hook in self.registry.startup_hooks:
            try:
                outcome = hook(self.context)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:
                reason = (
                    WorkerStopReason.BOOT_FAILURE
                    if isinstance(exc, ConfigurationError)
                    else WorkerStopReason.BACKEND_LOST
                )
                self.log.error(
                    "worker.startup_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    error=f"{type(exc).__name__}: {exc}",
                )
                return reason
        return None

    async def _shut_down(self) -> None:
        """Run the registry's shut-down hooks, newest first; a failing hook is logged and skipped."""
        for hook in reversed(self.registry.shutdown_hooks):
            try:
                outcome = hook(self.context)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:
                self.log.error(
                    "worker.shutdown_hook_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    error=f"{type(exc).__name__}: {exc}",
                )

    # ================================================================== stopping
    async def _drain(self, reason: WorkerStopReason) -> None:
        """Let running jobs finish within the grace, then cancel the rest and put them back at once."""
        await asyncio.gather(*(self._put_back(job) for job in self.prefetch.take_all()))  # never started
        grace_s = (
            0.0
            if reason
            in (WorkerStopReason.JOB_TIMEOUT, WorkerStopReason.BACKEND_LOST, WorkerStopReason.LEASE_LOST)
            else (self.options.stop_grace_s)
        )
        deadline = self.monotonic() + grace_s
        while self._running and not self._hurry and (left := deadline - self.monotonic()) > 0:
            self._slot_event.clear()
            try:
                await asyncio.wait_for(self._slot_event.wait(), left)
            except TimeoutError:
                break
        unfinished = [e for e in self._running.values() if e.phase is Phase.RUNNING and not e.lost]
        for entry in self._running.values():
            if entry.phase is not Phase.SETTLING and entry.task is not None:
                entry.task.cancel()
        tasks = [e.task for e in self._running.values() if e.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=SETTLE_WAIT_S)
        await asyncio.gather(*(self._put_back(entry.job) for entry in unfinished))

    async def _deliver_acks(self, flusher: asyncio.Task[None]) -> None:
        """Hand the backend the acks of finished jobs, however long it is away, until the grace
        counted from the stop is over (or a second Ctrl-C): a dropped ack runs its job again.
        The lease renewer still runs meanwhile, so those jobs stay this worker's."""
        self.acks.wake()
        await asyncio.wait((flusher,), timeout=SETTLE_WAIT_S)
        deadline = self._stop_began + self.options.stop_grace_s
        while self.acks.pending and not self._hurry and self.monotonic() < deadline:
            if await self.acks.flush():
                return
            await self.sleep(self.health.backoff_s())
        if self.acks.pending:
            self.log.error(
                "worker.acks_undelivered",
                count=len(self.acks.pending),
                action="their jobs run again once their leases lapse",
            )

    async def _put_back(self, job: Job) -> None:
        try:
            held = await self.backend.retry_later(
                job, delay_s=0.0, error=None, count_exception=False, refund_attempt=True
            )
        except Exception as exc:  # its lease brings it back instead
            self.health.error(exc, "put_back")
            return
        self.log.info("job.requeued", **fields(job), held=held)

    async def _close(self) -> None:
        """Flush acks, remove the heartbeat, close the backend; never raise."""
        for _ in range(3):
            if await self.acks.flush():
                break
            await self.sleep(self.health.backoff_s())
        try:
            await self.backend.delete_heartbeat("worker", self.worker_id)
        except Exception as exc:  # it expires by its TTL
            self.health.error(exc, "delete_heartbeat")
        self.runner.close()
        await self._shut_down()
        await self._close_backend()

    async def _close_backend(self) -> None:
        try:
            await self.backend.close()
        except Exception as exc:  # closing is best effort
            self.health.error(exc, "close")
