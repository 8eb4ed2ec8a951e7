"""What ``/metrics`` says, in the Prometheus text format, through ``prometheus_client``.

Each scrape reads the cluster as it is now (the queue backend and the documents
database, which every host shares) and renders it; nothing is counted in this process
but the running job totals of ``job_totals.py``. A part that cannot be read is left out
and reported by ``docmill_scrape_ok{part=...} 0``, so one failing store never hides the
rest (a failure is logged with its type, never shown).

=========================================  =======  ======================================
metric                                     type     labels
=========================================  =======  ======================================
docmill_queue_jobs                         gauge    queue, state (pending, delayed,
                                                    reserved, failed)
docmill_queue_paused                       gauge    queue
docmill_queue_oldest_wait_seconds          gauge    queue (0 when nothing is pending)
docmill_jobs_total                         counter  queue, outcome (completed, failed)
docmill_job_runtime_seconds                histo.   queue (each minute's jobs at its average)
docmill_job_wait_seconds                   histo.   queue (idem)
docmill_workers                            gauge    host, state (idle, busy, stopping)
docmill_masters                            gauge    host
docmill_documents                          gauge    status
docmill_llm_calls                          gauge    model (saved calls of the documents held)
docmill_llm_tokens                         gauge    model, direction (input, output)
docmill_llm_cost_usd                       gauge    model
docmill_llm_rate_limit_per_minute          gauge    model, resource (requests, input_tokens,
                                                    output_tokens): as the API last reported
docmill_llm_rate_used_per_minute           gauge    model, resource: calls saved in the last 60 s
docmill_llm_rate_headroom_per_minute       gauge    model, resource: limit - used, at least 0
docmill_llm_api_refusals                   gauge    model, status (429, 529), window (1h, 24h):
                                                    answers every worker received
docmill_scrape_ok                          gauge    part (queues, workers, documents, llm)
=========================================  =======  ======================================

The LLM figures are sums over the documents still in the database (deleting a document
lowers them), hence gauges, not counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from docmill.documents.context import DocumentContext
from docmill.documents.summary import Spend
from docmill.llm.limits import LearnedLimits, key_fingerprint
from docmill.llm.models import resolve_model
from docmill.llm.refusals import read_refusals
from docmill.web.job_totals import WINDOW_MINUTES, JobTotals

log = logging.getLogger("docmill.web")
T = TypeVar("T")

PART_TIMEOUT_S = 10.0
_RESOURCES = {"requests_per_min": "requests", "input_tokens_per_min": "input_tokens",
              "output_tokens_per_min": "output_tokens"}  # fmt: skip


class _Families(Collector):
    """A collector of metric families already built (the scrape's data is read async)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def render_metrics(context: DocumentContext, totals: JobTotals) -> bytes:
    """The exposition of the cluster as it is now."""
    families: list[Metric] = []
    ok = GaugeMetricFamily(
        "docmill_scrape_ok", "1 when this part of the metrics could be read.", labels=["part"]
    )
    parts: list[tuple[str, Callable[[], Awaitable[list[Metric]]]]] = [
        ("queues", lambda: _queue_families(context, totals)),
        ("workers", lambda: _worker_families(context)),
        ("documents", lambda: _document_families(context)),
        ("llm", lambda: _llm_families(context)),
    ]
    for name, read in parts:
        found = await _read_part(name, read)
        ok.add_metric([name], 0.0 if found is None else 1.0)
        families.extend(found or [])
    families.append(ok)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


async def _read_part(name: str, read: Callable[[], Awaitable[T]]) -> T | None:
    try:
        return await asyncio.wait_for(read(), PART_TIMEOUT_S)
    except Exception as exc:
        log.warning("api.metrics_failed part=%s error=%s", name, type(exc).__name__)
        return None


async def _queue_families(context: DocumentContext, totals: JobTotals) -> list[Metric]:
    backend = context.backend
    jobs = GaugeMetricFamily("docmill_queue_jobs", "Jobs in the queue by state.", labels=["queue", "state"])
    paused = GaugeMetricFamily("docmill_queue_paused", "1 while the queue is paused.", labels=["queue"])
    oldest = GaugeMetricFamily(
        "docmill_queue_oldest_wait_seconds", "How long the oldest pending job has waited.", labels=["queue"]
    )
    finished = CounterMetricFamily(
        "docmill_jobs", "Jobs finished, by outcome (failed: moved to the failed store).",
        labels=["queue", "outcome"],
    )  # fmt: skip
    runtime = HistogramMetricFamily(
        "docmill_job_runtime_seconds", "Job runtimes (each minute's jobs at its average).", labels=["queue"]
    )
    wait = HistogramMetricFamily(
        "docmill_job_wait_seconds", "Time from due to started (each minute's jobs at its average).",
        labels=["queue"],
    )  # fmt: skip
    queues = await backend.queues()
    # Every queue at once: one round trip's latency on Redis rather than one per queue.
    readings = await asyncio.gather(
        *(asyncio.gather(backend.stats(q), backend.metrics(q, minutes=WINDOW_MINUTES)) for q in queues)
    )
    for queue, (stats, metrics) in zip(queues, readings, strict=True):
        for state in ("pending", "delayed", "reserved", "failed"):
            jobs.add_metric([queue, state], float(getattr(stats, state)))
        paused.add_metric([queue], 1.0 if stats.paused else 0.0)
        oldest.add_metric([queue], stats.oldest_pending_age_s or 0.0)
        queue_totals = totals.take(queue, metrics)
        finished.add_metric([queue, "completed"], float(queue_totals.completed_total))
        finished.add_metric([queue, "failed"], float(queue_totals.failed_total))
        runtime.add_metric([queue], queue_totals.runtime.buckets(), queue_totals.runtime.sum_s)
        wait.add_metric([queue], queue_totals.wait.buckets(), queue_totals.wait.sum_s)
    return [jobs, paused, oldest, finished, runtime, wait]


async def _worker_families(context: DocumentContext) -> list[Metric]:
    from docmill.queue.heartbeat import WORKER_KIND
    from docmill.supervisor.heartbeat import MASTER_KIND

    backend = context.backend
    workers = GaugeMetricFamily("docmill_workers", "Live worker processes.", labels=["host", "state"])
    masters = GaugeMetricFamily("docmill_masters", "Live supervising masters.", labels=["host"])
    by_state: dict[tuple[str, str], int] = {}
    for beat in await backend.heartbeats(WORKER_KIND):
        key = (_text(beat.get("host")), _text(beat.get("state"), "idle"))
        by_state[key] = by_state.get(key, 0) + 1
    for (host, state), count in sorted(by_state.items()):
        workers.add_metric([host, state], float(count))
    by_host: dict[str, int] = {}
    for beat in await backend.heartbeats(MASTER_KIND):
        host = _text(beat.get("host"))
        by_host[host] = by_host.get(host, 0) + 1
    for host, count in sorted(by_host.items()):
        masters.add_metric([host], float(count))
    return [workers, masters]


async def _document_families(context: DocumentContext) -> list[Metric]:
    summary = await context.service.summary()
    documents = GaugeMetricFamily("docmill_documents", "Documents by status.", labels=["status"])
    for item in summary.by_status:
        documents.add_metric([item.status.value], float(item.count))
    return [documents]


async def _llm_families(context: DocumentContext) -> list[Metric]:
    service = context.service
    costs, used = await asyncio.gather(service.costs(), service.usage_last_minute())
    calls = GaugeMetricFamily("docmill_llm_calls", "LLM calls saved, by model.", labels=["model"])
    tokens = GaugeMetricFamily("docmill_llm_tokens", "LLM tokens, by model.", labels=["model", "direction"])
    cost = GaugeMetricFamily("docmill_llm_cost_usd", "Money spent on LLM calls, by model.", labels=["model"])
    for spend in costs.by_model:
        calls.add_metric([spend.key], float(spend.calls))
        tokens.add_metric([spend.key, "input"], float(spend.input_tokens))
        tokens.add_metric([spend.key, "output"], float(spend.output_tokens))
        cost.add_metric([spend.key], spend.cost_usd)
    return [calls, tokens, cost, *await _rate_families(context, used), await _refusal_family(context)]


async def _refusal_family(context: DocumentContext) -> Metric:
    """The API's 429 and 529 answers per model, from the counters every worker adds to."""
    refused = GaugeMetricFamily(
        "docmill_llm_api_refusals",
        "Calls the API refused (429 rate limited, 529 overloaded) in the window.",
        labels=["model", "status", "window"],
    )
    for row in await read_refusals(context.backend):
        refused.add_metric([row.model, "429", "1h"], float(row.rate_limited_hour))
        refused.add_metric([row.model, "529", "1h"], float(row.overloaded_hour))
        refused.add_metric([row.model, "429", "24h"], float(row.rate_limited_day))
        refused.add_metric([row.model, "529", "24h"], float(row.overloaded_day))
    return refused


async def _rate_families(context: DocumentContext, used: Iterable[Spend]) -> list[Metric]:
    """Per model with limits learned from the API: the limit, last minute's use, the headroom.

    Limits are kept per dated model id, so aliases are resolved before they are compared.
    """
    llm = context.settings.llm
    api_key = llm.anthropic_api_key if llm else None
    learned = LearnedLimits(context.backend, key_fingerprint(api_key) if api_key else "")
    spent: dict[str, dict[str, float]] = {}
    for spend in used:
        totals = spent.setdefault(resolve_model(spend.key), dict.fromkeys(_RESOURCES.values(), 0.0))
        totals["requests"] += spend.calls
        totals["input_tokens"] += spend.input_tokens
        totals["output_tokens"] += spend.output_tokens
    models = sorted({*spent, *([resolve_model(llm.default_model)] if llm and llm.default_model else [])})
    labels = ["model", "resource"]
    limit = GaugeMetricFamily(
        "docmill_llm_rate_limit_per_minute", "The API's per-minute limit.", labels=labels
    )
    usage = GaugeMetricFamily("docmill_llm_rate_used_per_minute", "Used in the last 60 s.", labels=labels)
    headroom = GaugeMetricFamily(
        "docmill_llm_rate_headroom_per_minute", "Limit minus last minute's use, at least 0.", labels=labels
    )
    for model in models:
        await learned.refresh(model, always=True)
        limits = learned.get(model)
        if limits is None:
            continue
        for field_name, resource in _RESOURCES.items():
            per_minute = float(getattr(limits, field_name))
            use = spent.get(model, {}).get(resource, 0.0)
            limit.add_metric([model, resource], per_minute)
            usage.add_metric([model, resource], use)
            headroom.add_metric([model, resource], max(0.0, per_minute - use))
    return [limit, usage, headroom]


def _text(value: Any, default: str = "") -> str:
    return str(value) if value is not None else default
