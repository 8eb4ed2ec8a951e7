"""The contract every queue backend fulfils (Redis, SQLite, memory).

One conformance suite (``tests/integration/test_backend_conformance.py``)
runs against every backend, so the semantics below are the product's
guarantees, not suggestions:

* **At-least-once.** A job leaves the backend only when it completed (it is
  then kept ``completed_retention_s`` for observability), failed for good (it
  stays in the failed store), or was cleared/forgotten on purpose.
* **Leases.** ``reserve`` gives each job a fresh ``reservation`` token and a
  lease deadline. ``extend`` renews it. Every state change a worker asks for
  (``extend``, ``complete``, ``retry_later``, ``fail``) names the reservation
  token, and is ignored when the token no longer matches: a worker that lost
  its lease can never overwrite what a second worker did.
* **Lost leases** are reclaimed lazily by ``reserve``: the job goes back to
  pending (``available_at`` = the lapsed deadline) with ``error`` set to a
  ``LeaseExpired`` ErrorInfo. The attempt it spent stays spent: ``attempts`` is
  incremented by ``reserve``, so a job that keeps killing its worker reaches
  its ``tries``; the *worker* that next reserves it fails it (the backend does
  not know the worker's defaults, and precedence is applied in one place).
* Until a call reclaims it, a lapsed lease is still held: only the
  reservation token decides whether ``extend``/``complete``/``fail`` apply.
* **Progress protects an attempt.** ``record_progress`` (naming the reservation
  token, ignored when it no longer matches, idempotent within one attempt) marks
  the running attempt as one that moved the job forward: when that attempt ends
  without completing (its lease lapses because the worker was killed, or
  ``retry_later`` puts it back) the attempt is given back, as a release gives
  it back (once: a release after progress refunds one attempt, not two). A job
  that keeps killing its worker without recording progress still reaches its
  ``tries``. Exceptions are still counted toward ``max_exceptions``.
* **Queue names** are any name ``docmill.queue.names`` allows (``:``, braces,
  spaces, any script); no name may collide with another queue's storage or
  with the backend's own keys, whatever the names.
* Ids are unique; enqueueing an id that is already stored is a no-op that
  returns it. ``get``/``find_by_tag`` report DELAYED vs PENDING as of now.
* **Strict FIFO per queue** by ``available_at`` then id; strict priority across
  queues is the worker's business (it calls ``reserve`` queue by queue).
* **Paused** queues hand out nothing; everything else about them works.
* **Unique jobs**: a job with a ``unique_key`` is not stored while another job
  with that key (same queue) is pending, delayed or reserved; ``enqueue``
  returns the existing job's id instead. The key is freed when that job
  completes, fails, or is cleared. Retrying a failed unique job takes the key
  back if it is free; otherwise the job is retried anyway (the operator asked).
* Times are epoch seconds as floats. Backends that can read a shared clock
  (Redis ``TIME``) use it for leases, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docmill.queue.job import ErrorInfo, Job


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` returns: the jobs now leased, and when the next delayed job is due."""

    jobs: list[Job]
    # available_at of the earliest job still waiting after this call (<= now when more
    # are due than ``limit`` allowed); None when nothing waits or the queue is paused.
    next_available_at: float | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A worker's report that one reserved job finished successfully."""

    job: Job  # as reserved: its id, queue and reservation token identify it
    runtime_s: float
    wait_s: float  # from available_at to the handler's start


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    pending: int
    delayed: int
    reserved: int
    failed: int
    paused: bool
    oldest_pending_age_s: float | None  # None when nothing is pending

    @property
    def size(self) -> int:
        """Jobs not yet finished: pending + delayed + reserved (Laravel's ``size``)."""
        return self.pending + self.delayed + self.reserved


@dataclass(frozen=True, slots=True)
class MinuteMetrics:
    """Counters for one queue and one wall-clock minute."""

    minute: int  # epoch seconds of the minute's start
    completed: int = 0
    failed: int = 0  # jobs moved to the failed store (not retried exceptions, not lost leases)
    runtime_s_total: float = 0.0
    wait_s_total: float = 0.0

    @property
    def avg_runtime_s(self) -> float | None:
        return self.runtime_s_total / self.completed if self.completed else None

    @property
    def avg_wait_s(self) -> float | None:
        return self.wait_s_total / self.completed if self.completed else None


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """Retention and naming knobs shared by every backend (from the URL's query string)."""

    completed_retention_s: float = 3600.0  # recent completed jobs kept for lookup
    completed_max: int = 10_000  # and at most this many per queue
    metrics_retention_s: float = 7 * 86400.0
    tag_retention_s: float = 7 * 86400.0
    unique_lock_ttl_s: float = 86400.0  # safety net; locks are freed when their job ends
    prefix: str = "docmill"  # Redis key prefix / nothing for SQLite
    extra: Mapping[str, str] = field(default_factory=dict)


class Backend(abc.ABC):
    """Storage for jobs. All methods are coroutines and safe to call concurrently."""

    url: str
    settings: BackendSettings

    # ------------------------------------------------------------ lifecycle
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open connections; raise ``BackendUnavailable`` with the URL and reason if impossible."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""

    # ------------------------------------------------------------ producing
    @abc.abstractmethod
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        """Store jobs (pending, or delayed when ``available_at`` is in the future).

        Returns one id per job, in order: the job's own id, or for a unique job
        whose key is held, the id of the job holding it. Registers each queue
        name and wakes workers waiting on it.
        """

    # ------------------------------------------------------------ consuming
    @abc.abstractmethod
    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Reservation:
        """Lease up to ``limit`` due jobs from one queue (see the module docstring)."""

    @abc.abstractmethod
    async def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        """Return when a job may have become available in ``queues``, or after ``timeout_s``.

        Spurious wake-ups are allowed; missing a wake-up for an enqueue is not (beyond
        ``timeout_s``). A delayed job coming due need not wake a waiter: the worker bounds
        ``timeout_s`` by ``Reservation.next_available_at`` instead.
        """

    # Whether ``interrupt_wait`` works; without it a worker cancels its wait instead.
    interrupts_waits: bool = False

    async def wait_and_reserve(
        self, queues: Sequence[str], timeout_s: float, *, worker_id: str, lease_s: float, limit: int
    ) -> Reservation | None:
        """``wait``, then reserve up to ``limit`` jobs from ``queues[0]`` as soon as it returns.

        A backend that can do both in one round trip returns the reservation (maybe
        empty); ``None`` means it only waited and the caller reserves as usual, which
        is what this default does. Only the first queue: strict priority stays the
        worker's business. A call that may reserve must not be cancelled (a
        reservation made but never received is held by nobody until its lease
        lapses): such a backend sets ``interrupts_waits`` and a worker stops the
        call with ``interrupt_wait``.
        """
        await self.wait(queues, timeout_s)
        return None

    async def interrupt_wait(self, worker_id: str) -> None:
        """Make ``worker_id``'s ``wait_and_reserve`` return soon, or its next one if none runs."""
        raise NotImplementedError(f"{type(self).__name__} cannot interrupt a wait; cancel it instead")

    @abc.abstractmethod
    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        """Renew the leases of reserved jobs; return the ids whose lease was already lost."""

    @abc.abstractmethod
    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        """Mark jobs completed (metrics, recent list, unique key freed); return ids ignored
        because their reservation no longer matched."""

    @abc.abstractmethod
    async def retry_later(
        self,
        job: Job,
        *,
        delay_s: float,
        error: ErrorInfo | None,
        count_exception: bool,
        refund_attempt: bool,
    ) -> bool:
        """Put a reserved job back, due in ``delay_s``.

        ``count_exception`` adds one to ``exceptions`` (a handler raised);
        ``refund_attempt`` gives the attempt back (a handler released itself).
        ``error`` (if given) replaces the job's last error. Returns False when
        the reservation no longer matched.
        """

    @abc.abstractmethod
    async def record_progress(self, job: Job) -> bool:
        """Mark the attempt that holds ``job.reservation`` as one that made progress.

        That attempt will not count toward the job's tries, however it ends (see the
        module docstring). Returns False, changing nothing, when the reservation no
        longer matches; calling it again within the same attempt changes nothing more.
        """

    @abc.abstractmethod
    async def fail(self, job: Job, error: ErrorInfo, *, count_exception: bool = False) -> bool:
        """Move a reserved job to the failed store with its error; False if the lease was lost.

        ``count_exception`` adds one to ``exceptions`` (the last attempt raised or timed out).
        """

    # ------------------------------------------------------------ failed store
    @abc.abstractmethod
    async def failed_count(self, queue: str | None = None) -> int: ...

    @abc.abstractmethod
    async def failed_page(self, queue: str | None = None, *, offset: int = 0, limit: int = 50) -> list[Job]:
        """Failed jobs, newest failure first."""

    @abc.abstractmethod
    async def oldest_failed_ids(self, queue: str | None = None, *, limit: int = 500) -> list[str]:
        """The ``limit`` oldest failed job ids; used to stream 'retry all' in constant memory."""

    @abc.abstractmethod
    async def retry_failed(self, job_ids: Sequence[str]) -> int:
        """Move failed jobs back to pending with attempts and exceptions reset; return how many."""

    @abc.abstractmethod
    async def forget_failed(self, job_id: str) -> bool: ...

    @abc.abstractmethod
    async def flush_failed(self, queue: str | None = None, *, older_than_s: float | None = None) -> int:
        """Delete failed jobs (all, or those failed more than ``older_than_s`` ago); return how many."""

    # ------------------------------------------------------------ control
    @abc.abstractmethod
    async def pause(self, queue: str) -> None: ...

    @abc.abstractmethod
    async def resume(self, queue: str) -> None: ...

    @abc.abstractmethod
    async def paused_queues(self) -> set[str]: ...

    @abc.abstractmethod
    async def clear(self, queue: str) -> int:
        """Delete the queue's pending and delayed jobs (not reserved, not failed); return how many."""

    @abc.abstractmethod
    async def request_restart(self) -> float:
        """Record a restart request (now); every worker compares it with its start time."""

    @abc.abstractmethod
    async def restart_requested_at(self) -> float | None: ...

    # ------------------------------------------------------------ observability
    @abc.abstractmethod
    async def queues(self) -> list[str]:
        """Every queue name ever dispatched to (or paused), sorted."""

    @abc.abstractmethod
    async def stats(self, queue: str) -> QueueStats: ...

    @abc.abstractmethod
    async def metrics(self, queue: str, *, minutes: int = 60) -> list[MinuteMetrics]:
        """Per-minute counters for the last ``minutes`` minutes that had any, oldest first."""

    @abc.abstractmethod
    async def recent_completed(self, queue: str, *, limit: int = 50) -> list[Job]:
        """Completed jobs still within retention, newest first."""

    @abc.abstractmethod
    async def pending_page(self, queue: str, *, offset: int = 0, limit: int = 50) -> list[Job]:
        """Waiting jobs of ``queue`` (pending, then delayed) in the order ``reserve`` will hand
        them out: by ``available_at``, then id. Read-only (it reclaims no lapsed lease); a
        page is read through the backend's waiting index, never by loading the whole queue."""

    @abc.abstractmethod
    async def get(self, job_id: str) -> Job | None:
        """Any job still held (pending, delayed, reserved, failed, recently completed)."""

    @abc.abstractmethod
    async def find_by_tag(self, tag: str, *, limit: int = 100) -> list[Job]:
        """Jobs still held that carry ``tag``, newest first (by ``created_at``, then id)."""

    # ------------------------------------------------------------ flags
    @abc.abstractmethod
    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        """Set (or, with ``None``, clear) a cluster-wide flag such as "workers stopped".

        Flags are permanent until cleared; every host sees the same value.
        """

    @abc.abstractmethod
    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """The data of a flag, or ``None`` when it is not set."""

    # ------------------------------------------------------------ rate limits
    @abc.abstractmethod
    async def rate_take(
        self,
        key: str,
        costs: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> float:
        """Take from shared token buckets, all or nothing; return 0.0, or seconds to wait.

        Bucket ``key:name`` for each ``name`` in ``costs`` holds at most
        ``capacities[name]`` and refills continuously at ``capacities[name] / window_s``
        per second; a bucket never seen before (or expired after ``2 * window_s`` idle)
        starts full. If every bucket holds at least its cost (a cost above the capacity
        counts as the capacity, so a big request can still pass when the bucket is full),
        all costs are taken and the result is ``0.0``. Otherwise nothing is taken and the
        result is the largest ``(cost - level) / rate`` over the buckets that lack: the
        seconds until all would suffice. Shared by every worker on every host; on Redis the
        buckets follow the server's clock.
        """

    @abc.abstractmethod
    async def rate_settle(
        self,
        key: str,
        charges: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> None:
        """Correct what ``rate_take`` took once the real cost is known; never waits.

        Each bucket ``key:name`` of ``charges`` is refilled as ``rate_take`` refills it,
        then ``charges[name]`` is taken from it unconditionally: a positive charge may
        leave the level below zero, so later takes wait until the debt is refilled; a
        negative charge gives tokens back, never above ``capacities[name]``.
        """

    # ------------------------------------------------------------ counters
    @abc.abstractmethod
    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        """Add ``amount`` to ``field`` of the counter ``key`` for the current wall-clock minute.

        Shared by every host (their additions add up); each minute is kept
        ``COUNTER_RETENTION_S`` (a week, ``docmill.queue.counters``), then dropped.
        """

    @abc.abstractmethod
    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        """Each field of ``key`` summed over the last ``minutes`` minutes (the current one
        included); fields never added to are absent."""

    # ------------------------------------------------------------ heartbeats
    @abc.abstractmethod
    async def put_heartbeat(self, kind: str, member: str, data: Mapping[str, Any], ttl_s: float) -> None:
        """Record that ``member`` (e.g. a worker) of ``kind`` is alive; it expires after ``ttl_s``."""

    @abc.abstractmethod
    async def heartbeats(self, kind: str) -> list[dict[str, Any]]:
        """Live heartbeats of ``kind``, each exactly the data given to ``put_heartbeat``
        (callers put their own id in it), ordered by member; expired ones are never returned."""

    @abc.abstractmethod
    async def delete_heartbeat(self, kind: str, member: str) -> None: ...
