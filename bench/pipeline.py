"""The document pipeline against a rate-limited Claude, as a user gets it: how much of the limit
docmill uses, against the seed's layout on the same engine.

    uv run python bench/pipeline.py                              # 120 documents, both set-ups
    uv run python bench/pipeline.py --docs 60 --duration 180     # shorter
    uv run python bench/pipeline.py --runs docmill --queue sqlite

Each run starts the Anthropic Messages API emulator (``docmill.testing``) with ``--latency``
seconds per call and limits of ``--rpm`` requests, ``--itpm`` input tokens and ``--otpm``
output tokens per minute (by default a fifth of the input limit, as the API's tiers have
them), a fresh queue (Redis when it answers, else SQLite), a fresh SQLite documents
database, and one ``docmill supervise`` master. Once every worker is up it uploads
``--docs`` Markdown reports made at run time (two chunks each: two maps and a reduce)
through ``DocumentService`` and samples every second what the emulator answered and how
many documents are done, until all are done or ``--duration`` seconds passed. The set-ups:

    docmill   ``docmill supervise`` with nothing set but the key and the API's address: the
              default pools (document-processing: 2 processes x 1 job, 4 calls in flight per
              document), the default memory limits, no configured rate limits (the limiter
              starts from the built-in defaults and learns the API's from its headers)
    seed      the seed's layout on the same engine: document-processing 2 processes x 1 job,
              one call at a time (a PHP job makes its HTTP calls one after another)

Printed per run, beside the settings used: documents/min; the share of each limit used
(requests, input and output tokens the emulator answered per minute over the saturated
window, divided by the limit; the window starts ``--warmup`` seconds after the first call,
when the buckets' initial minute of capacity is spent, and ends when 90% of the documents
have ended); 429s per 1,000 calls; put-backs per call (``job.released`` of the processing
jobs in the workers' logs); the most documents ``processing`` at once; and p50/p90 of a
document's time from the start of its processing to its completion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from docmill.documents.context import DocumentContext
from docmill.documents.models import Document
from docmill.documents.settings import DocumentSettings
from docmill.testing import AnthropicEmulator, EmulatorConfig, RateLimits

MODEL = "claude-haiku-4-5"
MESSAGES = "POST /v1/messages"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
DOCMILL = str(Path(sys.executable).parent / "docmill")


@dataclass(frozen=True)
class Setup:
    name: str
    pools: str | None
    """The pools part of docmill.toml, or None for the defaults a user gets (no file at all)."""
    env: dict[str, str] = field(default_factory=dict)
    """Settings beyond the key and the API's address."""
    workers: int = 5


@dataclass
class Sample:
    t: float  # seconds since the first upload
    admitted: int  # Messages calls the emulator answered
    input_tokens: int
    output_tokens: int
    rate_limited: int
    completed: int
    failed: int
    processing: int


@dataclass
class RunResult:
    setup: Setup
    queue: str
    docs: int
    samples: list[Sample] = field(default_factory=list)
    first_call_t: float | None = None
    planned_calls: int = 0
    put_backs: int = 0
    processing_s: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------- documents
WORDS = (
    "harbour",
    "container",
    "freight",
    "customs",
    "warehouse",
    "pallet",
    "invoice",
    "carrier",
    "route",
    "manifest",
    "berth",
    "crane",
    "tariff",
    "shipment",
    "quay",
    "vessel",
    "depot",
    "inventory",
    "forklift",
    "dispatch",
)


def make_document(number: int, sections: int) -> tuple[str, bytes]:
    """A Markdown report of ``sections`` parts, its words varied by ``number``; six parts make
    two chunks at the model's chunk size (about 8,000 tokens), so two maps and a reduce."""
    lines = [f"# Operations report {number}", ""]
    for part in range(sections):
        lines += [f"## Part {part + 1}", ""]
        for sentence in range(60):
            a, b, c = (WORDS[(number * 7 + part * 3 + sentence * k) % len(WORDS)] for k in (1, 2, 5))
            lines.append(
                f"On day {sentence + 1} the {a} team in zone {part}-{number} moved {sentence * 13 + number} "
                f"units past the {b} and logged every {c} against order {number}-{part}-{sentence}."
            )
        lines.append("")
    return f"report-{number:04d}.md", "\n".join(lines).encode()


# ---------------------------------------------------------------------- one run
def redis_answers() -> bool:
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def seed_pools(log_dir: Path) -> str:
    """The seed's three ``queue:work`` programs, one job per process, memory limits as shipped."""
    return f"""[supervisor]
log_dir = "{log_dir}"

[pools.default]
processes = 1

[pools.document-analysis]
processes = 1

[pools.document-processing]
processes = 2
"""


async def _workers_up(settings: DocumentSettings, expected: int, timeout_s: float = 120.0) -> None:
    context = await DocumentContext.create(settings)  # creates and migrates the database first
    try:
        deadline = time.monotonic() + timeout_s
        while len(await context.backend.heartbeats("worker")) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await context.aclose()


async def _upload(settings: DocumentSettings, docs: int, sections: int) -> None:
    context = await DocumentContext.create(settings)
    try:
        for number in range(docs):
            name, data = make_document(number, sections)
            await context.service.upload(data, name, {"auto_approve": True})
    finally:
        await context.aclose()


async def _follow(
    settings: DocumentSettings,
    emulator: AnthropicEmulator,
    result: RunResult,
    started: float,
    duration_s: float,
) -> None:
    context = await DocumentContext.create(settings)
    try:
        while True:
            counts = await context.db.run(
                lambda s: dict(
                    s.execute(
                        select(Document.status, func.count(Document.id)).group_by(Document.status)
                    ).all()
                )
            )
            stats = emulator.stats
            refused = sum(n for code, n in stats["by_status"].items() if code not in ("200",))
            messages = stats["by_endpoint"].get(MESSAGES, 0)
            sample = Sample(
                t=time.monotonic() - started,
                admitted=max(0, messages - refused),
                input_tokens=stats["input_tokens"],
                output_tokens=stats["output_tokens"],
                rate_limited=stats["rate_limited"],
                completed=int(counts.get("completed", 0)),
                failed=int(counts.get("failed", 0)) + int(counts.get("cancelled", 0)),
                processing=int(counts.get("processing", 0)),
            )
            result.samples.append(sample)
            if result.first_call_t is None and messages:
                result.first_call_t = sample.t
            if sample.completed + sample.failed >= result.docs:
                break
            if duration_s and sample.t >= duration_s:
                break
            if len(result.samples) % 15 == 1:
                ended = sample.completed + sample.failed
                print(
                    f"  {sample.t:6.1f}s  {ended:4d}/{result.docs} documents ended, "
                    f"{sample.admitted} calls answered, {sample.rate_limited} 429s",
                    flush=True,
                )
            await asyncio.sleep(1.0)
        result.planned_calls = await context.db.run(
            lambda s: int(s.scalar(select(func.coalesce(func.sum(Document.progress_total), 0))) or 0)
        )
        spans = await context.db.run(
            lambda s: s.execute(
                select(Document.processing_started_at, Document.completed_at).where(
                    Document.completed_at.is_not(None)
                )
            ).all()
        )
        result.processing_s = sorted(
            (done - began).total_seconds() for began, done in spans if began is not None
        )
    finally:
        await context.aclose()


def run_once(setup: Setup, args: argparse.Namespace) -> RunResult:
    root = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-{setup.name}-"))
    use_redis = args.queue == "redis" or (args.queue == "auto" and redis_answers())
    queue_url = (
        f"{REDIS_URL}?prefix=bench-pipeline-{uuid.uuid4().hex[:8]}"
        if use_redis
        else f"sqlite:///{root / 'queue.db'}"
    )
    limits = RateLimits(args.rpm, args.itpm, args.otpm)
    api_key = f"sk-ant-bench-{secrets.token_hex(16)}"
    emulator = AnthropicEmulator(EmulatorConfig(api_key=api_key, latency_s=args.latency, limits=limits))
    emulator.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCMILL_", "DOCUMENT_", "CLAUDE_"))}
    for name in ("DATABASE_URL", "QUEUE_CONNECTION", "ANTHROPIC_API_KEY", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    env.update(
        DOCMILL_STORAGE=str(root / "storage"),
        CLAUDE_API_KEY=api_key,
        ANTHROPIC_BASE_URL=emulator.url,
        CLAUDE_DEFAULT_MODEL=MODEL,
        PYTHONUNBUFFERED="1",
        **setup.env,
    )
    settings = DocumentSettings.from_env(env, queue_url=queue_url)
    command = [DOCMILL, "supervise", "--connection", queue_url, "--quiet"]
    if setup.pools is not None:
        config = root / "docmill.toml"
        config.write_text(setup.pools.format(log_dir=root / "storage" / "logs"))
        command += ["--config", str(config)]
    master_log = (root / "supervise.out").open("wb")
    master = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdout=master_log,
        stderr=subprocess.STDOUT,
    )
    result = RunResult(setup=setup, queue="redis" if use_redis else "sqlite", docs=args.docs)
    try:
        expected = setup.workers
        logs = root / "storage" / "logs"
        print(f"{setup.name}: waiting for {expected} workers ({result.queue} queue, logs in {logs})")
        asyncio.run(_workers_up(settings, expected))
        started = time.monotonic()
        asyncio.run(_upload(settings, args.docs, args.sections))
        print(f"{setup.name}: uploaded {args.docs} documents in {time.monotonic() - started:.1f}s")
        asyncio.run(_follow(settings, emulator, result, started, args.duration))
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(60)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        master_log.close()
        result.put_backs = count_put_backs(root / "storage" / "logs")
        emulator.stop()
        if use_redis:
            _drop_redis_prefix(queue_url)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return result


def count_put_backs(log_dir: Path) -> int:
    """``job.released`` lines of processing jobs in every worker's log."""
    count = 0
    for path in log_dir.rglob("*.log"):
        with path.open(errors="replace") as lines:
            count += sum(1 for line in lines if "job.released" in line and "documents.process" in line)
    return count


def _drop_redis_prefix(url: str) -> None:
    import redis

    prefix = url.split("prefix=", 1)[1]
    client = redis.Redis.from_url(url.split("?", 1)[0])
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# ---------------------------------------------------------------------- figures
def _at(samples: list[Sample], t: float) -> Sample:
    """The last sample taken at or before ``t``."""
    chosen = samples[0]
    for sample in samples:
        if sample.t > t:
            break
        chosen = sample
    return chosen


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def figures(result: RunResult, args: argparse.Namespace) -> dict[str, Any]:
    samples = result.samples
    last = samples[-1]
    ended = last.completed + last.failed
    finish = next((s.t for s in samples if s.completed + s.failed >= ended and ended), last.t)
    first_call = result.first_call_t or 0.0
    # The saturated window: after the warm-up, until 90% of the documents ended (the last
    # ones drain with fewer calls in flight than the limit allows).
    window_start = first_call + args.warmup
    window_end = next((s.t for s in samples if s.completed + s.failed >= 0.9 * result.docs), last.t)
    steady: dict[str, float] | None = None
    if window_end - window_start >= 10:
        a, b = _at(samples, window_start), _at(samples, window_end)
        minutes = (b.t - a.t) / 60
        steady = {
            "window_s": b.t - a.t,
            "requests_per_min": (b.admitted - a.admitted) / minutes,
            "input_tokens_per_min": (b.input_tokens - a.input_tokens) / minutes,
            "output_tokens_per_min": (b.output_tokens - a.output_tokens) / minutes,
            "docs_per_min": (b.completed - a.completed) / minutes,
            "rate_limited": b.rate_limited - a.rate_limited,
            "calls": b.admitted - a.admitted,
        }
    whole_min = max(finish, 1e-9) / 60
    calls = max(last.admitted, 1)
    return {
        "setup": result.setup.name,
        "settings": result.setup.env,
        "pools": "defaults (no docmill.toml)" if result.setup.pools is None else "seed layout",
        "queue": result.queue,
        "docs": result.docs,
        "completed": last.completed,
        "failed": last.failed,
        "elapsed_s": finish,
        "docs_per_min": last.completed / whole_min,
        "calls": last.admitted,
        "planned_calls": result.planned_calls,
        "input_tokens": last.input_tokens,
        "output_tokens": last.output_tokens,
        "rate_limited": last.rate_limited,
        "rate_limited_per_1000_calls": 1000 * last.rate_limited / calls,
        "put_backs": result.put_backs,
        "put_backs_per_call": result.put_backs / calls,
        "most_processing_at_once": max(s.processing for s in samples),
        "processing_s_p50": _quantile(result.processing_s, 0.5),
        "processing_s_p90": _quantile(result.processing_s, 0.9),
        "whole_requests_per_min": last.admitted / whole_min,
        "whole_input_tokens_per_min": last.input_tokens / whole_min,
        "steady": steady,
    }


def print_figures(report: dict[str, Any], args: argparse.Namespace) -> None:
    setup = report["setup"]
    extra = ", ".join(f"{k}={v}" for k, v in report["settings"].items()) or "nothing else set"
    print(f"\n== {setup} ({report['queue']} queue; pools: {report['pools']}; {extra})")
    print(
        f"  documents      {report['completed']} completed, {report['failed']} failed of {report['docs']} "
        f"in {report['elapsed_s']:.0f}s: {report['docs_per_min']:.1f} documents/min"
    )
    print(
        f"  model calls    {report['calls']} answered (plan: {report['planned_calls']}), "
        f"{report['input_tokens']:,} input and {report['output_tokens']:,} output tokens"
    )
    print(
        f"  churn          {report['rate_limited']} 429s "
        f"({report['rate_limited_per_1000_calls']:.1f} per 1,000 calls), "
        f"{report['put_backs']} put-backs ({report['put_backs_per_call']:.2f} per call), "
        f"at most {report['most_processing_at_once']} documents processing at once"
    )
    p50, p90 = report["processing_s_p50"], report["processing_s_p90"]
    if p50 is not None and p90 is not None:
        print(f"  processing     p50 {p50:.1f}s, p90 {p90:.1f}s from the start of processing to completion")
    steady = report["steady"]
    if steady is None:
        print("  saturated      (window too short: raise --docs or --duration, or lower --warmup)")
        return
    shares = {
        "requests": steady["requests_per_min"] / args.rpm,
        "input tokens": steady["input_tokens_per_min"] / args.itpm,
        "output tokens": steady["output_tokens_per_min"] / args.otpm,
    }
    binding = max(shares, key=lambda name: shares[name])
    print(
        f"  saturated      {steady['window_s']:.0f}s window: {steady['requests_per_min']:.0f} requests/min "
        f"({shares['requests']:.0%}), {steady['input_tokens_per_min']:,.0f} input tokens/min "
        f"({shares['input tokens']:.0%}), {steady['output_tokens_per_min']:,.0f} output tokens/min "
        f"({shares['output tokens']:.0%}); binding: {binding} at {shares[binding]:.0%}; "
        f"{steady['docs_per_min']:.1f} documents/min, {steady['rate_limited']} 429s"
    )


SETUPS = {
    "docmill": lambda args: Setup("docmill", None),
    "seed": lambda args: Setup("seed", SEED_POOLS, {"DOCUMENT_CHUNK_CONCURRENCY": "1"}, workers=3),
}
SEED_POOLS = seed_pools(Path("{log_dir}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=120, help="documents per run (default 120)")
    parser.add_argument(
        "--duration", type=float, default=0, help="stop a run after this many seconds (0: never)"
    )
    parser.add_argument("--runs", default="docmill,seed", help="set-ups to run: docmill, seed")
    parser.add_argument("--sections", type=int, default=6, help="parts per document (6: two chunks)")
    parser.add_argument("--latency", type=float, default=1.5, help="seconds per model call")
    parser.add_argument("--rpm", type=int, default=120, help="requests per minute the API allows")
    parser.add_argument("--itpm", type=int, default=400_000, help="input tokens per minute the API allows")
    parser.add_argument(
        "--otpm", type=int, default=0, help="output tokens per minute the API allows (default: itpm / 5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds after the first call not measured"
    )
    parser.add_argument("--queue", choices=("auto", "redis", "sqlite"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory (logs, databases)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    args.otpm = args.otpm or args.itpm // 5
    print(
        f"Emulator: {args.latency:g}s per call, limits {args.rpm} requests, {args.itpm:,} input and "
        f"{args.otpm:,} output tokens per minute; {args.docs} documents of {args.sections} parts; "
        "docmill runs with the defaults a user gets (only CLAUDE_API_KEY, ANTHROPIC_BASE_URL, "
        f"CLAUDE_DEFAULT_MODEL={MODEL} and DOCMILL_STORAGE set)."
    )
    reports = []
    for name in [n.strip() for n in args.runs.split(",") if n.strip()]:
        setup = SETUPS[name](args)
        reports.append(figures(run_once(setup, args), args))
    for report in reports:
        print_figures(report, args)
    if len(reports) == 2 and reports[1]["docs_per_min"]:
        print(
            f"\n  docmill / seed: {reports[0]['docs_per_min'] / reports[1]['docs_per_min']:.2f}x "
            "documents/min"
        )
    if args.json:
        print(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
