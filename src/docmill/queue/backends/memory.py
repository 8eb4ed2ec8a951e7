"""The in-process backend: the contract of ``docmill.queue.backend`` in plain dicts and heaps.

It exists for unit tests and as executable documentation of the semantics the
Redis and SQLite backends implement with Lua scripts and SQL. Nothing here is
shared between processes or between two instances: ``memory://`` is one
process's private queue.

Every method runs without awaiting in the middle, so on one event loop each
call is atomic, as a Lua script or an SQLite transaction is.

Storage::

    _jobs        id -> Job            every job still held, in any state
    _waiting     queue -> heap        (available_at, id) of pending and delayed jobs;
                                      entries whose job moved on are skipped lazily
    _unique      (queue, key) -> (id, locked_at)
                                      held while the job is pending, delayed or reserved
    _completed   queue -> deque[id]   completed jobs, oldest first, pruned by
                                      completed_retention_s and completed_max
    _metrics     (queue, minute) -> MinuteMetrics
    _paused      set of queue names
    _queues      every queue name ever dispatched to or paused
    _heartbeats  kind -> member -> (expires_at, data)
    _flags       name -> data
    _buckets     "key:name" -> Bucket (token buckets of rate_take and rate_settle)
    _counters    key -> minute -> field -> count (counter_add), a week of minutes at most

``self.clock`` returns epoch seconds; tests replace it to move time.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from docmill.queue.backend import (
    Backend,
    BackendSettings,
    Completion,
    MinuteMetrics,
    QueueStats,
    Reservation,
)
from docmill.queue.buckets import Bucket, settle, take
from docmill.queue.counters import MinuteCounters
from docmill.queue.job import WAITING, ErrorInfo, Job, JobState

LEASE_EXPIRED = ErrorInfo(
    type="LeaseExpired",
    message="the worker holding this job stopped renewing its lease (it probably died)",
)


def _token() -> str:
    return os.urandom(8).hex()


class MemoryBackend(Backend):
    """The reference backend. Not shared across processes or instances."""

    def __init__(self, url: str = "memory://", settings: BackendSettings | None = None) -> None:
        self.url = url
        self.settings = settings or BackendSettings()
        self.clock: Callable[[], float] = time.time
        self._jobs: dict[str, Job] = {}
        self._waiting: dict[str, list[tuple[float, str]]] = {}
        self._unique: dict[tuple[str, str], tuple[str, float]] = {}
        self._completed: dict[str, deque[str]] = {}
        self._metrics: dict[tuple[str, int], MinuteMetrics] = {}
        self._paused: set[str] = set()
        self._queues: set[str] = set()
        self._restart_at: float | None = None
        self._heartbeats: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._interruptible: dict[str, asyncio.Event] = {}  # worker id -> its wait's event
        self._interrupts: set[str] = set()  # workers interrupted while not waiting
        self._flags: dict[str, dict[str, Any]] = {}
        self._buckets: dict[str, Bucket] = {}
        self._progressed: dict[str, str] = {}  # job id -> token of the attempt that recorded progress
        self._counters = MinuteCounters()

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        self._wake_all()

    # ------------------------------------------------------------ producing
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        now = self.clock()
        ids: list[str] = []
        for job in jobs:
            self._queues.add(job.queue)
            if job.unique_key is not None:
                holder = self._unique_holder(job.queue, job.unique_key, now)
                if holder is not None:
                    ids.append(holder)
                    continue
                self._unique[(job.queue, job.unique_key)] = (job.id, now)
            stored = job.copy(reservation=None, lease_until=None, reserved_at=None, finished_at=None)
            self._jobs[job.id] = stored
            self._push_waiting(stored, job.available_at)
            ids.append(job.id)
        for queue in {job.queue for job in jobs}:
            self._wake(queue)
        return ids

    # ------------------------------------------------------------ consuming
    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Reservation:
        now = self.clock()
        self._reclaim_lost_leases(queue, now)
        if queue in self._paused:
            return Reservation(jobs=[], next_available_at=None)
        heap = self._waiting.get(queue, [])
        leased: list[Job] = []
        while heap and len(leased) < limit:
            available_at, job_id = heap[0]
            job = self._live_waiting(job_id, available_at)
            if job is None:
                heapq.heappop(heap)
                continue
            if available_at > now:
                break
            heapq.heappop(heap)
            job.state = JobState.RESERVED
            job.attempts += 1
            job.reservation = _token()
            job.reserved_at = now
            job.lease_until = now + lease_s
            leased.append(job.copy())
        return Reservation(jobs=leased, next_available_at=self._next_available_at(queue))

    async def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        await self._wait(queues, timeout_s, worker_id=None)

    interrupts_waits = True  # as Redis does, so the worker's way of stopping a wait is unit-tested

    async def wait_and_reserve(
        self, queues: Sequence[str], timeout_s: float, *, worker_id: str, lease_s: float, limit: int
    ) -> Reservation | None:
        if worker_id in self._interrupts:
            self._interrupts.discard(worker_id)
        else:
            await self._wait(queues, timeout_s, worker_id=worker_id)
        if not queues:
            return None
        return await self.reserve(queues[0], worker_id=worker_id, lease_s=lease_s, limit=limit)

    async def interrupt_wait(self, worker_id: str) -> None:
        event = self._interruptible.get(worker_id)
        if event is None:
            self._interrupts.add(worker_id)  # like Redis's wake token: the next wait returns at once
        else:
            event.set()

    async def _wait(self, queues: Sequence[str], timeout_s: float, *, worker_id: str | None) -> None:
        now = self.clock()
        due = [at for q in queues if (at := self._next_available_at(q)) is not None and at > now]
        timeout = min([timeout_s, *(at - now for at in due)])
        if any(self._has_due(q, now) for q in queues):
            return
        event = asyncio.Event()
        for queue in queues:
            self._waiters.setdefault(queue, set()).add(event)
        if worker_id is not None:
            self._interruptible[worker_id] = event
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout))
        except TimeoutError:
            pass
        finally:
            for queue in queues:
                self._waiters.get(queue, set()).discard(event)
            if worker_id is not None and self._interruptible.get(worker_id) is event:
                del self._interruptible[worker_id]

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        now = self.clock()
        lost: list[str] = []
        for job in jobs:
            held = self._held_reservation(job)
            if held is None:
                lost.append(job.id)
            else:
                held.lease_until = now + lease_s
        return lost

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        now = self.clock()
        ignored: list[str] = []
        for done in completions:
            job = self._held_reservation(done.job)
            if job is None:
                ignored.append(done.job.id)
                continue
            self._ends_attempt(job)
            job.state = JobState.COMPLETED
            job.finished_at = now
            job.runtime_s = done.runtime_s
            job.reservation = None
            job.lease_until = None
            self._free_unique(job)
            self._completed.setdefault(job.queue, deque()).append(job.id)
            self._count(job.queue, now, completed=1, runtime_s=done.runtime_s, wait_s=done.wait_s)
        self._prune_completed(now)
        return ignored

    async def retry_later(
        self,
        job: Job,
        *,
        delay_s: float,
        error: ErrorInfo | None,
        count_exception: bool,
        refund_attempt: bool,
    ) -> bool:
        held = self._held_reservation(job)
        if held is None:
            return False
        if count_exception:
            held.exceptions += 1
        if self._ends_attempt(held) or refund_attempt:
            held.attempts = max(0, held.attempts - 1)
        if error is not None:
            held.error = error
        held.reservation = None
        held.lease_until = None
        self._push_waiting(held, self.clock() + max(0.0, delay_s))
        self._wake(held.queue)
        return True

    async def record_progress(self, job: Job) -> bool:
        held = self._held_reservation(job)
        if held is None or held.reservation is None:
            return False
        self._progressed[held.id] = held.reservation
        return True

    async def fail(self, job: Job, error: ErrorInfo, *, count_exception: bool = False) -> bool:
        held = self._held_reservation(job)
        if held is None:
            return False
        self._ends_attempt(held)
        now = self.clock()
        held.exceptions += int(count_exception)
        held.state = JobState.FAILED
        held.error = error
        held.finished_at = now
        held.reservation = None
        held.lease_until = None
        self._free_unique(held)
        self._count(held.queue, now, failed=1)
        return True

    # ------------------------------------------------------------ failed store
    async def failed_count(self, queue: str | None = None) -> int:
        return len(self._failed(queue))

    async def failed_page(self, queue: str | None = None, *, offset: int = 0, limit: int = 50) -> list[Job]:
        newest_first = sorted(self._failed(queue), key=_failed_order, reverse=True)
        return [job.copy() for job in newest_first[offset : offset + limit]]

    async def oldest_failed_ids(self, queue: str | None = None, *, limit: int = 500) -> list[str]:
        return [job.id for job in sorted(self._failed(queue), key=_failed_order)[:limit]]

    async def retry_failed(self, job_ids: Sequence[str]) -> int:
        now = self.clock()
        moved = 0
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.FAILED:
                continue
            job.attempts = 0
            job.exceptions = 0
            job.finished_at = None
            job.reserved_at = None
            if job.unique_key is not None and self._unique_holder(job.queue, job.unique_key, now) is None:
                self._unique[(job.queue, job.unique_key)] = (job.id, now)
            self._push_waiting(job, now)
            self._wake(job.queue)
            moved += 1
        return moved

    async def forget_failed(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.FAILED:
            return False
        del self._jobs[job_id]
        return True

    async def flush_failed(self, queue: str | None = None, *, older_than_s: float | None = None) -> int:
        cutoff = None if older_than_s is None else self.clock() - older_than_s
        doomed = [
            job.id
            for job in self._failed(queue)
            if cutoff is None or (job.finished_at is not None and job.finished_at < cutoff)
        ]
        for job_id in doomed:
            del self._jobs[job_id]
        return len(doomed)

    # ------------------------------------------------------------ control
    async def pause(self, queue: str) -> None:
        self._queues.add(queue)
        self._paused.add(queue)

    async def resume(self, queue: str) -> None:
        self._paused.discard(queue)
        self._wake(queue)

    async def paused_queues(self) -> set[str]:
        return set(self._paused)

    async def clear(self, queue: str) -> int:
        doomed = [job for job in self._jobs.values() if job.queue == queue and job.state in WAITING]
        for job in doomed:
            self._free_unique(job)
            del self._jobs[job.id]
        self._waiting.pop(queue, None)
        return len(doomed)

    async def request_restart(self) -> float:
        self._restart_at = self.clock()
        return self._restart_at

    async def restart_requested_at(self) -> float | None:
        return self._restart_at

    # ------------------------------------------------------------ observability
    async def queues(self) -> list[str]:
        return sorted(self._queues)

    async def stats(self, queue: str) -> QueueStats:
        now = self.clock()
        self._reclaim_lost_leases(queue, now)
        pending = delayed = reserved = failed = 0
        oldest: float | None = None
        for job in self._jobs.values():
            if job.queue != queue:
                continue
            if job.state in WAITING and job.available_at > now:
                delayed += 1
            elif job.state in WAITING:
                pending += 1
                oldest = job.available_at if oldest is None else min(oldest, job.available_at)
            elif job.state is JobState.RESERVED:
                reserved += 1
            elif job.state is JobState.FAILED:
                failed += 1
        return QueueStats(
            queue=queue,
            pending=pending,
            delayed=delayed,
            reserved=reserved,
            failed=failed,
            paused=queue in self._paused,
            oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
        )

    async def metrics(self, queue: str, *, minutes: int = 60) -> list[MinuteMetrics]:
        now = self.clock()
        self._prune_metrics(now)
        first = _minute(now) - (minutes - 1) * 60
        rows = [m for (q, minute), m in self._metrics.items() if q == queue and minute >= first]
        return sorted(rows, key=lambda m: m.minute)

    async def recent_completed(self, queue: str, *, limit: int = 50) -> list[Job]:
        self._prune_completed(self.clock())
        ids = list(self._completed.get(queue, ()))
        return [self._jobs[job_id].copy() for job_id in reversed(ids)][:limit]

    async def pending_page(self, queue: str, *, offset: int = 0, limit: int = 50) -> list[Job]:
        if limit <= 0:
            return []
        now = self.clock()
        live = (entry for entry in self._waiting.get(queue, ()) if self._live_waiting(entry[1], entry[0]))
        first = heapq.nsmallest(max(0, offset) + limit, live)[max(0, offset) :]
        return [self._view(self._jobs[job_id], now) for _, job_id in first]

    async def get(self, job_id: str) -> Job | None:
        now = self.clock()
        self._prune_completed(now)
        job = self._jobs.get(job_id)
        return None if job is None else self._view(job, now)

    async def find_by_tag(self, tag: str, *, limit: int = 100) -> list[Job]:
        now = self.clock()
        self._prune_completed(now)
        tagged = [job for job in self._jobs.values() if tag in job.tags]
        tagged.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        return [self._view(job, now) for job in tagged[:limit]]

    # ------------------------------------------------------------ heartbeats
    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        if data is None:
            self._flags.pop(name, None)
        else:
            self._flags[name] = dict(data)

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        data = self._flags.get(name)
        return None if data is None else dict(data)

    async def rate_take(
        self,
        key: str,
        costs: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> float:
        now = self.clock()
        current = self._live_buckets(key, costs, window_s, now)
        wait_s, new = take(current, costs, capacities, window_s, now)
        for name, bucket in new.items():
            self._buckets[f"{key}:{name}"] = bucket
        return wait_s

    async def rate_settle(
        self,
        key: str,
        charges: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> None:
        now = self.clock()
        current = self._live_buckets(key, charges, window_s, now)
        for name, bucket in settle(current, charges, capacities, window_s, now).items():
            self._buckets[f"{key}:{name}"] = bucket

    def _live_buckets(
        self, key: str, names: Mapping[str, float], window_s: float, now: float
    ) -> dict[str, Bucket]:
        """The buckets of ``key`` named in ``names`` that have not expired (idle for 2 windows)."""
        stale = now - 2 * window_s
        return {
            name: bucket
            for name in names
            if (bucket := self._buckets.get(f"{key}:{name}")) is not None and bucket.updated_at > stale
        }

    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        self._counters.add(key, field, amount, self.clock())

    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        return self._counters.totals(key, minutes, self.clock())

    async def put_heartbeat(self, kind: str, member: str, data: Mapping[str, Any], ttl_s: float) -> None:
        self._heartbeats.setdefault(kind, {})[member] = (self.clock() + ttl_s, dict(data))

    async def heartbeats(self, kind: str) -> list[dict[str, Any]]:
        now = self.clock()
        members = self._heartbeats.get(kind, {})
        for member in [m for m, (expires_at, _) in members.items() if expires_at <= now]:
            del members[member]
        return [dict(data) for _, (_, data) in sorted(members.items())]

    async def delete_heartbeat(self, kind: str, member: str) -> None:
        self._heartbeats.get(kind, {}).pop(member, None)

    # ------------------------------------------------------------ internals
    def _push_waiting(self, job: Job, available_at: float) -> None:
        """Make ``job`` pending (or delayed) again, due at ``available_at``."""
        job.available_at = available_at
        job.state = JobState.DELAYED if available_at > self.clock() else JobState.PENDING
        heapq.heappush(self._waiting.setdefault(job.queue, []), (available_at, job.id))

    def _live_waiting(self, job_id: str, available_at: float) -> Job | None:
        """The job a heap entry names, if it is still waiting with that due time."""
        job = self._jobs.get(job_id)
        if job is None or job.state not in WAITING or job.available_at != available_at:
            return None
        return job

    def _next_available_at(self, queue: str) -> float | None:
        heap = self._waiting.get(queue, [])
        while heap and self._live_waiting(heap[0][1], heap[0][0]) is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _has_due(self, queue: str, now: float) -> bool:
        at = self._next_available_at(queue)
        return queue not in self._paused and at is not None and at <= now

    def _reclaim_lost_leases(self, queue: str, now: float) -> None:
        """Put back jobs whose worker stopped renewing; the attempt they spent stays spent."""
        for job in list(self._jobs.values()):
            if job.queue != queue or job.state is not JobState.RESERVED:
                continue
            if job.lease_until is not None and job.lease_until <= now:
                if self._ends_attempt(job):
                    job.attempts = max(0, job.attempts - 1)
                job.error = LEASE_EXPIRED
                job.reservation = None
                lapsed_at = job.lease_until
                job.lease_until = None
                self._push_waiting(job, lapsed_at)

    def _ends_attempt(self, held: Job) -> bool:
        """Forget the progress mark of ``held``'s attempt; True when that attempt recorded progress."""
        token = self._progressed.pop(held.id, None)
        return token is not None and token == held.reservation

    def _held_reservation(self, job: Job) -> Job | None:
        """The stored job if ``job``'s reservation token still holds it, else None."""
        stored = self._jobs.get(job.id)
        if stored is None or stored.state is not JobState.RESERVED or job.reservation is None:
            return None
        return stored if stored.reservation == job.reservation else None

    def _unique_holder(self, queue: str, key: str, now: float) -> str | None:
        lock = self._unique.get((queue, key))
        if lock is None:
            return None
        job_id, locked_at = lock
        holder = self._jobs.get(job_id)
        alive = holder is not None and (holder.state in WAITING or holder.state is JobState.RESERVED)
        if not alive or now - locked_at >= self.settings.unique_lock_ttl_s:
            del self._unique[(queue, key)]
            return None
        return job_id

    def _free_unique(self, job: Job) -> None:
        if job.unique_key is None:
            return
        lock = self._unique.get((job.queue, job.unique_key))
        if lock is not None and lock[0] == job.id:
            del self._unique[(job.queue, job.unique_key)]

    def _failed(self, queue: str | None) -> list[Job]:
        return [
            job
            for job in self._jobs.values()
            if job.state is JobState.FAILED and (queue is None or job.queue == queue)
        ]

    def _count(
        self,
        queue: str,
        now: float,
        *,
        completed: int = 0,
        failed: int = 0,
        runtime_s: float = 0.0,
        wait_s: float = 0.0,
    ) -> None:
        minute = _minute(now)
        current = self._metrics.get((queue, minute), MinuteMetrics(minute=minute))
        self._metrics[(queue, minute)] = replace(
            current,
            completed=current.completed + completed,
            failed=current.failed + failed,
            runtime_s_total=current.runtime_s_total + runtime_s,
            wait_s_total=current.wait_s_total + wait_s,
        )
        self._prune_metrics(now)

    def _prune_metrics(self, now: float) -> None:
        horizon = now - self.settings.metrics_retention_s
        for key in [key for key in self._metrics if key[1] + 60 <= horizon]:
            del self._metrics[key]

    def _prune_completed(self, now: float) -> None:
        horizon = now - self.settings.completed_retention_s
        for ids in self._completed.values():
            while ids:
                job = self._jobs.get(ids[0])
                expired = job is None or job.finished_at is None or job.finished_at <= horizon
                if not expired and len(ids) <= self.settings.completed_max:
                    break
                ids.popleft()
                if job is not None and job.state is JobState.COMPLETED:
                    del self._jobs[job.id]

    def _view(self, job: Job, now: float) -> Job:
        """A copy for the caller, with pending/delayed judged against ``now``."""
        if job.state in WAITING:
            return job.copy(state=JobState.DELAYED if job.available_at > now else JobState.PENDING)
        return job.copy()

    def _wake(self, queue: str) -> None:
        for event in self._waiters.get(queue, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()


def _minute(at: float) -> int:
    return int(at // 60) * 60


def _failed_order(job: Job) -> tuple[float, str]:
    return (job.finished_at or 0.0, job.id)
