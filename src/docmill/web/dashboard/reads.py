"""What the dashboard's pages show, read from the queue backend and the documents service.

The typed read models live with their domains (``queue.summary``, ``queue.heartbeat``,
``supervisor.heartbeat``, ``documents.summary``); this module only combines them into
what one page needs, with the few calls that page costs.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from docmill.documents.service import DocumentService
from docmill.documents.summary import DocumentSummary, Spend
from docmill.llm.circuit import OpenCircuit, flag_name
from docmill.llm.limits import FLAG_PREFIX as LIMITS_PREFIX
from docmill.llm.limits import TIER_1_LIMITS, RateLimits, key_fingerprint
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, MinuteMetrics
from docmill.queue.heartbeat import WorkerHeartbeat, read_worker_heartbeats
from docmill.queue.summary import QueueSummary, summarize_queues
from docmill.supervisor.control import WORKERS_STOPPED
from docmill.supervisor.heartbeat import MasterHeartbeat, read_master_heartbeats

WEEK_MINUTES = 7 * 24 * 60
LIMIT_FIELDS = ("requests_per_min", "input_tokens_per_min", "output_tokens_per_min")


@dataclass(frozen=True)
class Cluster:
    """Masters with their pools, and every worker's own heartbeat (joined on host and pid)."""

    masters: list[MasterHeartbeat]
    workers: list[WorkerHeartbeat]
    stopped: dict[str, Any] | None
    restart_requested_at: float | None

    @property
    def state(self) -> str:
        """running, paused, stopped or inactive, as ``docmill queue status`` says; workers
        without a master (``docmill queue work``) count as running."""
        states = {master.state for master in self.masters}
        if "running" in states or (self.workers and not self.masters):
            return "running"
        if not self.masters:
            return "inactive"
        if self.stopped is not None or "stopped" in states:
            return "stopped"
        return "paused"

    def worker_of(self, host: str, pid: int | None) -> WorkerHeartbeat | None:
        return next((w for w in self.workers if w.host == host and w.pid == pid), None)

    @property
    def unsupervised(self) -> list[WorkerHeartbeat]:
        supervised = {
            (m.host, p.pid) for m in self.masters for pool in m.pools for p in pool.processes if p.pid
        }
        return [w for w in self.workers if (w.host, w.pid) not in supervised]

    def processes_by_queue(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for worker in self.workers:
            for queue in worker.queues:
                counts[queue] = counts.get(queue, 0) + 1
        return counts


async def read_cluster(backend: Backend) -> Cluster:
    return Cluster(
        masters=await read_master_heartbeats(backend),
        workers=await read_worker_heartbeats(backend),
        stopped=await backend.get_flag(WORKERS_STOPPED),
        restart_requested_at=await backend.restart_requested_at(),
    )


@dataclass(frozen=True)
class Overview:
    cluster: Cluster
    queues: list[QueueSummary]
    documents: DocumentSummary
    failed_last_7_days: int
    circuit: OpenCircuit | None

    @property
    def jobs_per_minute(self) -> int:
        return sum(q.throughput_last_minute for q in self.queues)

    @property
    def jobs_last_hour(self) -> int:
        return sum(q.completed_last_hour for q in self.queues)

    @property
    def longest_wait(self) -> QueueSummary | None:
        waiting = [q for q in self.queues if q.oldest_pending_age_s is not None]
        return max(waiting, key=lambda q: q.oldest_pending_age_s or 0.0, default=None)

    @property
    def longest_runtime(self) -> QueueSummary | None:
        timed = [q for q in self.queues if q.avg_runtime_s is not None]
        return max(timed, key=lambda q: q.avg_runtime_s or 0.0, default=None)


class WeekFailures:
    """Failures of the last 7 days, counted at most once a minute: on Redis that is 10,080
    minute counters per queue, too many to read on every page view."""

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._value: tuple[float, int] | None = None

    async def count(self, backend: Backend, queues: list[str]) -> int:
        now = time.monotonic()
        if self._value is not None and now - self._value[0] < self.max_age_s:
            return self._value[1]
        total = 0
        for queue in queues:
            total += sum(m.failed for m in await backend.metrics(queue, minutes=WEEK_MINUTES))
        self._value = (now, total)
        return total


async def read_overview(
    backend: Backend, service: DocumentService, llm: LLMSettings | None, week: WeekFailures
) -> Overview:
    queues = await summarize_queues(backend)
    failed_week = await week.count(backend, [q.queue for q in queues])
    return Overview(
        cluster=await read_cluster(backend),
        queues=queues,
        documents=await service.summary(),
        failed_last_7_days=failed_week,
        circuit=await read_circuit_of(backend, llm),
    )


async def read_circuit_of(backend: Backend, llm: LLMSettings | None) -> OpenCircuit | None:
    """The spend-cap circuit of the configured Claude key; any open one when no key is known."""
    key = llm.anthropic_api_key if llm is not None else None
    if key:
        return OpenCircuit.from_flag(await backend.get_flag(flag_name(key_fingerprint(key))))
    return OpenCircuit.from_flag(await backend.get_flag(flag_name("")))


def circuit_account(llm: LLMSettings | None) -> str:
    key = llm.anthropic_api_key if llm is not None else None
    return key_fingerprint(key) if key else ""


async def live_digest(backend: Backend, service: DocumentService) -> str:
    """A short fingerprint of what the pages show; the live stream sends it when it changes."""
    parts: list[str] = []
    for name in await backend.queues():
        stats = await backend.stats(name)
        parts.append(f"{name}:{stats.pending}:{stats.delayed}:{stats.reserved}:{stats.failed}:{stats.paused}")
    summary = await service.summary()
    parts.append(",".join(f"{i.status.value}={i.count}" for i in summary.by_status))
    parts.append(f"{summary.cost_usd:.6f}")
    parts.append(str(len(await backend.heartbeats("worker"))))
    parts.append(str(len(await backend.heartbeats("master"))))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class LiveDigest:
    """``live_digest``, shared by every page view and event stream for ``max_age_s``.

    A page reads its digest before its data, so a digest a little older than the data only
    ever causes one needless refresh, never a missed one.
    """

    def __init__(self, max_age_s: float = 0.5) -> None:
        self.max_age_s = max_age_s
        self._value: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    async def get(self, backend: Backend, service: DocumentService) -> str:
        async with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._value[0] >= self.max_age_s:
                self._value = (now, await live_digest(backend, service))
            return self._value[1]


@dataclass(frozen=True)
class Headroom:
    """One model's use of its per-minute limits over the last 60 s."""

    model: str
    limits: RateLimits
    learned: bool  # False: no answer has reported limits yet; the tier-1 defaults apply
    used: Spend

    def fraction(self, name: str) -> float:
        used = {
            "requests_per_min": self.used.calls,
            "input_tokens_per_min": self.used.input_tokens,
            "output_tokens_per_min": self.used.output_tokens,
        }[name]
        limit = float(getattr(self.limits, name))
        return used / limit if limit else 0.0

    @property
    def busiest(self) -> float:
        return max(self.fraction(name) for name in LIMIT_FIELDS)


async def read_headroom(
    backend: Backend, service: DocumentService, llm: LLMSettings | None, models: list[str]
) -> list[Headroom]:
    account = circuit_account(llm) or "-"
    used = {spend.key: spend for spend in await service.usage_last_minute()}
    names = sorted(set(models) | set(used))
    rows = []
    for model in names:
        flag = await backend.get_flag(f"{LIMITS_PREFIX}{account}:{model}")
        limits = _limits(flag)
        spent = used.get(model, Spend(model))
        rows.append(Headroom(model, limits or TIER_1_LIMITS, limits is not None, spent))
    return rows


def _limits(flag: dict[str, Any] | None) -> RateLimits | None:
    if not flag:
        return None
    try:
        return RateLimits(
            requests_per_min=float(flag["requests_per_min"]),
            input_tokens_per_min=float(flag["input_tokens_per_min"]),
            output_tokens_per_min=float(flag["output_tokens_per_min"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class QueueSeries:
    """One queue's per-minute metrics over the charted window, gaps filled with zeros."""

    queue: str
    minutes: list[MinuteMetrics] = field(default_factory=list)


async def read_series(backend: Backend, minutes: int = 60, now: float | None = None) -> list[QueueSeries]:
    now = time.time() if now is None else now
    first = int(now // 60) * 60 - (minutes - 1) * 60
    series = []
    for queue in await backend.queues():
        found = {m.minute: m for m in await backend.metrics(queue, minutes=minutes)}
        starts = [first + i * 60 for i in range(minutes)]
        series.append(QueueSeries(queue, [found.get(start, MinuteMetrics(start)) for start in starts]))
    return series
