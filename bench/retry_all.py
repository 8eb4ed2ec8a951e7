"""`docmill queue retry all` on a large failed store: its time and the CLI process's memory.

    uv run python bench/retry_all.py                          # Redis and SQLite, 10,000 and 100,000
    uv run python bench/retry_all.py --backends sqlite --sizes 20000

For each backend and size it fills a fresh failed store (bulk dispatch, reserve, fail: each
failed job keeps a traceback, as real ones do), then runs the real command in a subprocess
and reads its peak resident memory from the kernel when it exits (``wait4``'s ``ru_maxrss``,
the figure ``/usr/bin/time -v`` prints as "Maximum resident set size"; sampling the process
from outside misses short peaks). "Constant memory" means the peak does not grow with
the backlog: the command streams the store in batches of 500 ids (``Client.retry_all_failed``)
and never lists it whole. Afterwards every job must be pending again and none failed.
Redis uses database 12 with a key prefix of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid

import redis

from docmill.queue import Backend, Client, Dispatch, ErrorInfo, JobOptions, backend_from_url

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
QUEUE = "retry-bench"
TRACEBACK = "".join(
    f'  File "handlers.py", line {n}, in step_{n}\n    raise RuntimeError\n' for n in range(12)
)
DOCMILL = os.path.join(os.path.dirname(sys.executable), "docmill")


async def fill(url: str, n: int) -> float:
    """Put ``n`` jobs in the failed store of ``url``; returns the seconds it took."""
    backend = backend_from_url(url)
    await backend.connect()
    t0 = time.perf_counter()
    try:
        await Client(backend).dispatch_many(
            Dispatch("bench.fail", (i,), options=JobOptions(queue=QUEUE, tries=1)) for i in range(n)
        )
        failed = 0
        while failed < n:
            reservation = await backend.reserve(QUEUE, worker_id="filler", lease_s=300, limit=1000)
            if not reservation.jobs:
                raise RuntimeError(f"only {failed} of {n} jobs could be reserved")
            error = ErrorInfo("RuntimeError", "the bench fails every job", TRACEBACK)
            for start in range(0, len(reservation.jobs), 100):
                chunk = reservation.jobs[start : start + 100]
                await asyncio.gather(*(backend.fail(job, error) for job in chunk))
            failed += len(reservation.jobs)
            print(f"\r   filling: {failed:,}/{n:,} failed", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        count = await backend.failed_count(QUEUE)
        if count != n:
            raise RuntimeError(f"the failed store holds {count} jobs, not {n}")
    finally:
        await backend.close()
    return time.perf_counter() - t0


def run_retry_all(url: str) -> tuple[float, float, str]:
    """Run the command; returns (seconds, peak RSS MB of its process, its output)."""
    argv = [DOCMILL, "queue", "retry", "all", "--connection", url, "--json"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, text=True)
        # wait4 reaps the process itself, so Popen never waits for it (and never reports it).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        out = output.read()
    if proc.returncode != 0:
        raise RuntimeError(f"docmill queue retry all exited {proc.returncode}: {out}")
    return seconds, usage.ru_maxrss / 1024, out.strip()  # Linux reports ru_maxrss in KiB


async def check(url: str, n: int) -> str:
    backend: Backend = backend_from_url(url)
    await backend.connect()
    try:
        stats = await backend.stats(QUEUE)
        failed = await backend.failed_count(QUEUE)
    finally:
        await backend.close()
    ok = stats.pending == n and failed == 0
    return f"{'ok' if ok else 'WRONG'}: {stats.pending:,} pending, {failed:,} failed"


def redis_cleanup(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
        for start in range(0, len(keys), 5000):
            client.delete(*keys[start : start + 5000])
    finally:
        client.close()


def one(backend: str, n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dm-retry-") as tmp:
        prefix = f"dmretry-{uuid.uuid4().hex[:8]}"
        url = f"{REDIS_URL}?prefix={prefix}" if backend == "redis" else f"sqlite:///{tmp}/queue.db"
        try:
            fill_s = asyncio.run(fill(url, n))
            seconds, peak_mb, out = run_retry_all(url)
            verdict = asyncio.run(check(url, n))
        finally:
            if backend == "redis":
                redis_cleanup(prefix)
    row = {
        "backend": backend,
        "failed_jobs": n,
        "fill_s": round(fill_s, 1),
        "retry_all_s": round(seconds, 2),
        "jobs_per_s": round(n / seconds),
        "peak_rss_mb": round(peak_mb, 1),
        "check": verdict,
        "output": out,
    }
    print("   " + "  ".join(f"{k}={v}" for k, v in row.items() if k != "output"), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="redis,sqlite")
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        for n in (int(size) for size in args.sizes.split(",")):
            print(f"-- {backend}, {n:,} failed jobs", flush=True)
            rows.append(one(backend, n))
    print()
    print("| backend | failed jobs | `retry all` s | jobs/s | peak RSS of the command | after |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['failed_jobs']:,} | {row['retry_all_s']} | {row['jobs_per_s']:,} "
            f"| {row['peak_rss_mb']} MB | {row['check']} |"
        )


if __name__ == "__main__":
    main()
