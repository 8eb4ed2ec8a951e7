"""Queue-engine benchmarks W1-W3 on Redis and SQLite, one docmill worker process.

    uv run python bench/queue_bench.py                       # both backends, all workloads
    uv run python bench/queue_bench.py --backends sqlite --workloads W1 --n1 2000

W1  no-op throughput: N no-op jobs bulk-dispatched (enqueue rate), then one worker started;
    jobs/s from worker spawn to last job done (boot included) and from first start (proc).
W2  I/O-bound: 2,000 jobs each awaiting 50 ms, concurrency 100: ideal 1.0 s; ratio = proc / ideal.
    Beside it, the same bodies run by 100 plain tasks with no queue (a fresh process): the
    floor any engine can reach with them here, and the engine's overhead over that floor.
W3  pickup latency: an idle worker, 200 single jobs 10 ms apart; p50/p95/p99 dispatch → start.

Every execution is recorded by the handlers (bench/bench_jobs.py) in Redis db 12, so lost and
duplicated jobs show in the 'done/dups' column instead of hiding behind a fast time. The worker
is the real `docmill queue work` process; its peak RSS is sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psutil
import redis

from docmill.queue import Client, Dispatch, backend_from_url

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD_URL = os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/12")
REDIS_QUEUE_DB = os.environ.get("BENCH_QUEUE_REDIS", "redis://127.0.0.1:6379/12")


@dataclass
class Run:
    backend: str
    workload: str
    figures: dict[str, Any] = field(default_factory=dict)


class RssSampler(threading.Thread):
    """Peak RSS of one process, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak_mb = max(self.peak_mb, self.proc.memory_info().rss / 2**20)
            except psutil.Error:
                return
            self.stop.wait(0.1)


class Bench:
    def __init__(self, backend: str, tmp: str) -> None:
        self.backend = backend
        self.ns = f"dmqb-{uuid.uuid4().hex[:8]}"
        self.rec = redis.Redis.from_url(RECORD_URL)
        if backend == "redis":
            self.url = f"{REDIS_QUEUE_DB}?prefix={self.ns}-q"
        else:
            self.url = f"sqlite:///{tmp}/{self.ns}.db"
        self.env = dict(
            os.environ,
            PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
            BENCH_RECORD_URL=RECORD_URL,
            BENCH_NS=self.ns,
        )

    def cleanup(self) -> None:
        for key in self.rec.scan_iter(match=f"{self.ns}*", count=1000):
            self.rec.delete(key)

    async def dispatch(self, items: list[Dispatch]) -> float:
        backend = backend_from_url(self.url)
        await backend.connect()
        client = Client(backend)
        t0 = time.perf_counter()
        await client.dispatch_many(items)
        dt = time.perf_counter() - t0
        await backend.close()
        return dt

    def spawn(self, concurrency: int) -> subprocess.Popen[bytes]:
        argv = [
            os.path.join(os.path.dirname(sys.executable), "docmill"), "queue", "work",
            "--connection", self.url, "--app", "bench_jobs:registry",
            "--queue", "default", "--concurrency", str(concurrency), "--log-level", "warning",
        ]  # fmt: skip
        return subprocess.Popen(argv, env=self.env, cwd=HERE, start_new_session=True)

    def wait_for(self, key: str, n: int, timeout_s: float) -> None:
        deadline = time.time() + timeout_s
        while self.rec.zcard(key) < n:
            if time.time() > deadline:
                raise TimeoutError(f"{self.backend}: only {self.rec.zcard(key)}/{n} jobs recorded")
            time.sleep(0.01)

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def completeness(self, key: str, n: int) -> str:
        done = self.rec.zcard(f"{self.ns}:{key}")
        execs = int(self.rec.get(f"{self.ns}:exec") or 0)
        return f"{done}/{n} dups {execs - done}"

    # ---------------------------------------------------------------- workloads
    def throughput(self, name: str, n: int, concurrency: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        items = [Dispatch(name, (i,), kwargs) for i in range(n)]
        enqueue_s = asyncio.run(self.dispatch(items))
        t_spawn = time.time()
        proc = self.spawn(concurrency)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            self.wait_for(f"{self.ns}:end", n, timeout_s=300)
        finally:
            sampler.stop.set()
            self.stop(proc)
        starts = [s for _, s in self.rec.zrange(f"{self.ns}:start", 0, -1, withscores=True)]
        ends = [s for _, s in self.rec.zrange(f"{self.ns}:end", 0, -1, withscores=True)]
        wall = max(ends) - t_spawn
        proc_s = max(ends) - min(starts)
        return {
            "enqueue_per_s": n / enqueue_s,
            "wall_s": wall,
            "jobs_per_s_wall": n / wall,
            "boot_s": min(starts) - t_spawn,
            "proc_s": proc_s,
            "jobs_per_s_proc": n / proc_s,
            "peak_rss_mb": sampler.peak_mb,
            "done": self.completeness("end", n),
        }

    def without_queue(self, n: int, concurrency: int, sleep_s: float) -> float:
        """The same bodies run by plain tasks in a fresh process, no queue: the floor for W2."""
        for key in ("exec", "start", "end"):
            self.rec.delete(f"{self.ns}:{key}")
        argv = [sys.executable, "bench_jobs.py", "without-queue", str(n), str(concurrency), str(sleep_s)]
        subprocess.run(argv, env=self.env, cwd=HERE, check=True)
        starts = [s for _, s in self.rec.zrange(f"{self.ns}:start", 0, -1, withscores=True)]
        ends = [s for _, s in self.rec.zrange(f"{self.ns}:end", 0, -1, withscores=True)]
        return max(ends) - min(starts)

    def latency(self, n: int, interval_s: float) -> dict[str, Any]:
        proc = self.spawn(10)
        sampler = RssSampler(proc.pid)
        sampler.start()

        async def send(first: int, count: int, pause: float) -> None:
            backend = backend_from_url(self.url)
            await backend.connect()
            client = Client(backend)
            for i in range(first, first + count):
                await client.dispatch("bench.lat", i, time.time())
                await asyncio.sleep(pause)
            await backend.close()

        try:
            asyncio.run(send(10_000, 3, 0.05))  # warm-up: the worker is up and has run a job
            self.wait_for(f"{self.ns}:lat", 3, timeout_s=60)
            self.rec.delete(f"{self.ns}:lat", f"{self.ns}:exec")
            time.sleep(2.0)  # idle worker, as in the peer harness
            asyncio.run(send(0, n, interval_s))
            self.wait_for(f"{self.ns}:lat", n, timeout_s=60)
        finally:
            sampler.stop.set()
            self.stop(proc)
        lat_ms = sorted(s * 1000 for _, s in self.rec.zrange(f"{self.ns}:lat", 0, -1, withscores=True))
        q = statistics.quantiles(lat_ms, n=100, method="inclusive")
        return {
            "p50_ms": statistics.median(lat_ms),
            "p95_ms": q[94],
            "p99_ms": q[98],
            "max_ms": lat_ms[-1],
            "peak_rss_mb": sampler.peak_mb,
            "done": self.completeness("lat", n),
        }


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--backends", default="redis,sqlite")
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--n1", type=int, default=10_000)
    parser.add_argument("--n2", type=int, default=2_000)
    parser.add_argument("--n3", type=int, default=200)
    parser.add_argument("--w1-concurrency", type=int, default=10)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="dmqb-")
    runs: list[Run] = []
    try:
        for backend in args.backends.split(","):
            for workload in args.workloads.split(","):
                bench = Bench(backend, tmp)
                print(f"-- {backend} {workload} ...", flush=True)
                try:
                    if workload == "W1":
                        figures = bench.throughput("bench.noop", args.n1, args.w1_concurrency, {})
                    elif workload == "W2":
                        figures = bench.throughput("bench.io", args.n2, 100, {"sleep_s": 0.05})
                        ideal = args.n2 * 0.05 / 100
                        figures["ideal_s"] = ideal
                        figures["ratio_to_ideal"] = figures["proc_s"] / ideal
                        no_queue_s = bench.without_queue(args.n2, 100, 0.05)
                        figures["no_queue_ratio_to_ideal"] = no_queue_s / ideal
                        figures["engine_overhead"] = figures["proc_s"] / no_queue_s
                    else:
                        figures = bench.latency(args.n3, 0.01)
                finally:
                    bench.cleanup()
                runs.append(Run(backend, workload, figures))
                print("   " + "  ".join(f"{k}={_fmt(v)}" for k, v in figures.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| backend | workload | figures |")
    print("|---|---|---|")
    for run in runs:
        cells = ", ".join(f"{k} {_fmt(v)}" for k, v in run.figures.items())
        print(f"| {run.backend} | {run.workload} | {cells} |")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return str(value)


if __name__ == "__main__":
    main()
