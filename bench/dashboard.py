"""Benchmark: the dashboard's pages over a full backend, on SQLite and on Redis.

    uv run python bench/dashboard.py [--backend sqlite,redis] [--completed 100000]
                                     [--failed 10000] [--documents 10000] [--pending 100000]
                                     [--repeat 5]

Fills a queue backend with ``--completed`` completed jobs (over four queues, so the
per-minute metrics hold them all while each queue keeps its newest 10,000 for lookup) and
``--failed`` failed jobs (five reasons), ``--pending`` jobs waiting on the queue
``backlog`` (a tenth of them delayed), and the documents database (SQLite) with
``--documents`` documents in every status, some with LLM calls. Redis is a server of the
benchmark's own (``private_redis.py``). Then renders each page in process through the
app's ASGI interface, as the local operator, ``--repeat`` times, and prints the median
render time and the bytes sent (goal: every page under 200 ms); then times the bulk retries
of one failure reason and of all the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from docmill.documents.models import ChunkResult, Document, DocumentEvent, utcnow
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import Status
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, Completion, ErrorInfo, Job, JobOptions
from docmill.web import create_app
from docmill.web.dashboard import DashboardConfig
from docmill.web.dashboard.failures import matches, retry_all, retry_where

sys.path.insert(0, str(Path(__file__).parent))
from private_redis import PrivateRedis

QUEUES = ("default", "mail", "document-analysis", "document-processing")
REASONS = (
    ("ValueError", "record {n} is locked"),
    ("KeyError", "'customer-{n}'"),
    ("TimeoutError", "upstream did not answer in {n} s"),
    ("ConnectionError", "refused by 10.0.0.{n}"),
    ("JobTimeout", "job ran longer than {n} s"),
)
BATCH = 500
BACKLOG = "backlog"


async def fill_jobs(backend: Backend, completed: int, failed: int) -> None:
    rng = random.Random(7)
    done = 0
    while done < completed:
        queue = QUEUES[(done // BATCH) % len(QUEUES)]
        jobs = [
            Job.build(
                "bench.task", [i], options=JobOptions(tags=(f"document:{i % 5000}",)), default_queue=queue
            )
            for i in range(done, min(done + BATCH, completed))
        ]
        await backend.enqueue(jobs)
        reserved = (await backend.reserve(queue, worker_id="bench", lease_s=300, limit=len(jobs))).jobs
        await backend.complete(
            [Completion(job, rng.uniform(0.01, 2.0), rng.uniform(0, 5)) for job in reserved]
        )
        done += len(jobs)
    made = 0
    while made < failed:
        queue = QUEUES[made % 2]
        jobs = [
            Job.build("bench.flaky", [i], default_queue=queue) for i in range(made, min(made + BATCH, failed))
        ]
        await backend.enqueue(jobs)
        reserved = (await backend.reserve(queue, worker_id="bench", lease_s=300, limit=len(jobs))).jobs
        for job in reserved:
            error_type, message = REASONS[job.args[0] % len(REASONS)]
            error = ErrorInfo(
                error_type, message.format(n=job.args[0]), "Traceback (most recent call last):\n"
            )
            await backend.fail(job, error, count_exception=True)
        made += len(jobs)


async def fill_backlog(backend: Backend, pending: int) -> None:
    for start in range(0, pending, BATCH):
        options = (JobOptions(), JobOptions(delay_s=3600))  # a tenth of them delayed
        jobs = [
            Job.build("bench.waiting", [i], options=options[i % 10 == 0], default_queue=BACKLOG)
            for i in range(start, min(start + BATCH, pending))
        ]
        await backend.enqueue(jobs)


def fill_documents(session: Session, count: int) -> None:
    rng = random.Random(11)
    statuses = list(Status)
    now = utcnow()
    for start in range(0, count, 1000):
        docs = []
        for i in range(start, min(start + 1000, count)):
            status = statuses[i % len(statuses)]
            docs.append(
                Document(
                    name=f"report-{i}.pdf",
                    content_type="application/pdf",
                    size_bytes=100_000,
                    sha256=f"{i:064x}",
                    options={"profile": ("summary", "extract")[i % 2]},
                    options_key="bench",
                    status=status.value,
                    estimate={"cost_usd": 0.8, "calls": {"total": 12}, "input_tokens": 90_000, "eta_s": 40},
                    cost_usd=rng.uniform(0, 1) if status is Status.COMPLETED else 0.0,
                    progress_done=rng.randint(0, 12),
                    progress_total=12,
                    uploaded_at=now,
                    updated_at=now,
                )
            )
        session.add_all(docs)
        session.flush()
        for doc in docs[:100]:
            session.add(DocumentEvent(document_id=doc.id, to_status="uploaded"))
            for index in range(4):
                session.add(
                    ChunkResult(
                        document_id=doc.id,
                        phase="map",
                        index=index,
                        text="",
                        input_tokens=8000,
                        output_tokens=600,
                        cost_usd=0.03,
                        model="claude-sonnet-4-6",
                        provider="anthropic",
                        created_at=now - timedelta(minutes=rng.randint(0, 6 * 24 * 60)),
                    )
                )


async def measure(queue_url: str, storage: Path, args: argparse.Namespace) -> None:
    settings = DocumentSettings(
        storage_dir=storage,
        database_url=f"sqlite:///{storage / 'docmill.db'}",
        queue_url=queue_url,
        llm=LLMSettings.from_env({"DOCMILL_LLM_PROVIDER": "extractive"}),
    )
    app = create_app(settings, development=False, dashboard=DashboardConfig())
    # Every render pays for its live fingerprint, as the first viewer of a moment does.
    app.state.dashboard.live.max_age_s = 0.0
    async with app.router.lifespan_context(app):
        started = time.perf_counter()
        await fill_jobs(app.state.context.backend, args.completed, args.failed)
        await fill_backlog(app.state.context.backend, args.pending)
        await app.state.context.db.run(lambda session: fill_documents(session, args.documents))
        print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
        some_job = (await app.state.context.backend.failed_page(None, limit=1))[0].id
        pages = [
            "/", "/failed", "/failed?page=150", "/failed?queue=mail&q=locked", "/jobs",
            f"/jobs?q={some_job}", "/jobs?q=document:42", f"/jobs/{some_job}", "/documents",
            "/documents?status=completed&page=50", "/documents/1", "/approvals", "/workers",
            "/money", "/charts", f"/jobs?queue={BACKLOG}",
            f"/jobs?queue={BACKLOG}&page={max(1, args.pending // 50)}",
        ]  # fmt: skip
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            await client.get("/")  # the session cookie, and warm imports and templates
            print(f"  {'page':<40} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
            for path in pages:
                times, size = [], 0
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    answer = await client.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:300]}")
                    size = len(answer.content)
                median = statistics.median(times)
                print(f"  {path:<40} {median:>10.1f} {max(times):>8.1f} {size:>9,}", flush=True)
            # A bulk action walks the whole failed store: one reason of the five, then the rest
            backend = app.state.context.backend
            for reason in ("ValueError: record N is locked", None):
                began = time.perf_counter()
                if reason is None:
                    moved = await retry_all(backend, None)
                else:
                    moved = await retry_where(backend, None, lambda job, r=reason: matches(job, reason=r))
                elapsed = time.perf_counter() - began
                print(f"  retry {reason or 'all the rest'}: {moved:,} jobs in {elapsed:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="sqlite,redis")
    parser.add_argument("--completed", type=int, default=100_000)
    parser.add_argument("--failed", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"dashboard pages: {args.completed:,} completed and {args.failed:,} failed jobs, "
        f"{args.documents:,} documents, {args.pending:,} waiting jobs; "
        f"median of {args.repeat} renders in process"
    )
    for name in args.backend.split(","):
        with tempfile.TemporaryDirectory(prefix="dm-dashboard-bench-") as directory:
            storage = Path(directory)
            print(f"{name}:", flush=True)
            if name == "sqlite":
                asyncio.run(measure(f"sqlite:///{storage / 'queue.db'}", storage, args))
            elif name == "redis":
                redis = PrivateRedis()
                redis.start()
                try:
                    asyncio.run(measure(redis.url, storage, args))
                finally:
                    redis.stop()
                    redis.remove()
            else:
                raise SystemExit(f"unknown backend {name!r}; use sqlite or redis")


if __name__ == "__main__":
    main()
