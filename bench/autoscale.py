"""Autoscaling: a burst of short jobs on one pool, `balance = "auto"` against fixed pools.

    uv run python bench/autoscale.py                       # 5,000 jobs of 20 ms
    uv run python bench/autoscale.py --jobs 2000 --runs auto,fixed-8

Each run starts one `docmill supervise` master with a single pool on a fresh Redis queue, waits
for its first workers, dispatches the burst (``bench.io`` from bench/bench_jobs.py, each job
sleeping ``--sleep`` seconds) and samples every 0.5 s how many worker processes the master has
(its live children) and the target its heartbeat reports. It prints the processes over time
and the time from the burst to an empty queue, for:

    auto      balance = "auto", min_processes 1, max_processes 8, small cooldown
    fixed-1   one process (the seed's document-analysis pool)
    fixed-8   eight processes from the start
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import redis

from docmill.queue import Client, Dispatch, JobOptions, backend_from_url

HERE = Path(__file__).resolve().parent
RECORD_URL = os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/12")
BASE = """
[supervisor]
connection = "{url}"
app = ["bench_jobs:registry"]
heartbeat_s = 0.5
control_poll_s = 0.5
tick_s = 0.1

[pools.default]
concurrency = {concurrency}
sleep_s = 0.5
startsecs = 0.5
stop_wait_s = 10
"""
POOLS = {
    "auto": 'balance = "auto"\nmin_processes = 1\nmax_processes = 8\ncooldown_s = {cooldown}\n'
    "target_wait_s = {target_wait}\n",
    "fixed-1": "processes = 1\n",
    "fixed-8": "processes = 8\n",
}


class Run:
    def __init__(self, name: str, args: argparse.Namespace, root: Path) -> None:
        self.name = name
        self.args = args
        self.ns = f"dmautoscale-{uuid.uuid4().hex[:8]}"
        self.url = f"{args.redis}?prefix={self.ns}-q"
        self.home = root / name
        self.home.mkdir()
        config = BASE.format(url=self.url, concurrency=args.concurrency) + POOLS[name].format(
            cooldown=args.cooldown, target_wait=args.target_wait
        )
        (self.home / "docmill.toml").write_text(config)
        self.master: subprocess.Popen[bytes] | None = None
        self.samples: list[tuple[float, int, int | None]] = []  # (t, live workers, target)

    async def _on_backend(self, action: Any) -> Any:
        backend = backend_from_url(self.url)
        await backend.connect()
        try:
            return await action(backend)
        finally:
            await backend.close()

    def remaining(self) -> int:
        async def size(backend: Any) -> int:
            return int((await backend.stats("default")).size)

        return int(asyncio.run(self._on_backend(size)))

    def target(self) -> int | None:
        async def beats(backend: Any) -> list[dict[str, Any]]:
            return list(await backend.heartbeats("master"))

        for beat in asyncio.run(self._on_backend(beats)):
            for pool in beat["pools"]:
                return int(pool["target"])
        return None

    def workers(self) -> int:
        assert self.master is not None
        try:
            children = psutil.Process(self.master.pid).children()
        except psutil.NoSuchProcess:
            return 0
        return sum(1 for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE)

    def go(self) -> float:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DOCMILL_QUEUE_URL", "DOCMILL_CONFIG")},
            "PYTHONPATH": str(HERE),
            "BENCH_RECORD_URL": RECORD_URL,
            "BENCH_NS": self.ns,
        }
        docmill = str(Path(sys.executable).parent / "docmill")
        out = (self.home / "master.out").open("wb")
        self.master = subprocess.Popen(
            [docmill, "supervise", "--config", "docmill.toml", "--quiet"],
            cwd=self.home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        first = 8 if self.name == "fixed-8" else 1
        deadline = time.time() + 30
        while self.workers() < first or (self.target() or 0) < first:
            if time.time() > deadline:
                raise SystemExit(f"{self.name}: the master did not start its workers; see {self.home}")
            time.sleep(0.2)
        time.sleep(1.0)  # let the workers finish booting

        async def dispatch(backend: Any) -> None:
            items = (
                Dispatch("bench.io", (i,), {"sleep_s": self.args.sleep}, JobOptions())
                for i in range(self.args.jobs)
            )
            await Client(backend).dispatch_many(items)

        asyncio.run(self._on_backend(dispatch))
        t0 = time.time()
        next_sample = t0
        while True:
            now = time.time()
            if now >= next_sample:
                self.samples.append((now - t0, self.workers(), self.target()))
                next_sample += 0.5
                if self.remaining() == 0:
                    break
            time.sleep(0.05)
        drain_s = time.time() - t0
        # A few more samples: the auto pool shrinks back after the burst.
        if self.name == "auto":
            for _ in range(int(self.args.tail_s / 0.5)):
                time.sleep(0.5)
                self.samples.append((time.time() - t0, self.workers(), self.target()))
        return drain_s

    def stop(self) -> None:
        if self.master is not None and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.master.pid, signal.SIGKILL)
        rec = redis.Redis.from_url(RECORD_URL)
        for key in rec.scan_iter(match=f"{self.ns}*", count=1000):
            rec.delete(key)

    def completed(self) -> int:
        return int(redis.Redis.from_url(RECORD_URL).zcard(f"{self.ns}:end"))


def timeline(samples: list[tuple[float, int, int | None]]) -> str:
    """``0.0s:1  0.5s:2 ...``: live workers (and the target when it differs) at each sample
    where they changed, and at the last one."""
    parts = []
    previous: tuple[int, int | None] | None = None
    for index, (t, live, target) in enumerate(samples):
        if (live, target) == previous and index != len(samples) - 1:
            continue
        previous = (live, target)
        shown = str(live) if target in (None, live) else f"{live}->{target}"
        parts.append(f"{t:4.1f}s:{shown}")
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 96:
            lines.append(line)
            line = ""
        line += f"{part:>11}"
    lines.append(line)
    return "\n".join(lines)


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--sleep", type=float, default=0.02, help="seconds each job sleeps")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once per process (the seed: 1)")
    parser.add_argument("--cooldown", type=float, default=0.5, help="auto: seconds between scaling steps")
    parser.add_argument("--target-wait", type=float, default=2.0, help="auto: target_wait_s")
    parser.add_argument("--tail-s", type=float, default=8.0, help="auto: seconds sampled after the drain")
    parser.add_argument("--runs", default="auto,fixed-1,fixed-8")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dm-autoscale-"))
    results: list[tuple[str, float, int, int, int]] = []
    print(
        f"{args.jobs:,} jobs of {args.sleep * 1000:g} ms, concurrency {args.concurrency} per process; "
        f"auto: min 1, max 8, cooldown {args.cooldown:g} s, target_wait_s {args.target_wait:g}",
        flush=True,
    )
    try:
        for name in args.runs.split(","):
            run = Run(name, args, root)
            try:
                drain_s = run.go()
                done = run.completed()
            finally:
                run.stop()
            live = [s[1] for s in run.samples]
            results.append((name, drain_s, done, min(live), max(live)))
            print(f"\n{name}: drained in {drain_s:.1f} s, {done:,} jobs completed; workers over time:")
            print(timeline(run.samples), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{'run':<9} {'drain':>8} {'jobs/s':>8} {'workers':>9} {'completed':>10}")
    for name, drain_s, done, low, high in results:
        print(f"{name:<9} {drain_s:>7.1f}s {done / drain_s:>8.0f} {f'{low}..{high}':>9} {done:>10,}")
    return 0 if all(done >= args.jobs for _, _, done, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
