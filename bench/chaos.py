"""Chaos run: several workers on Redis, 20,000 jobs, a worker SIGKILLed every couple of seconds.

    uv run python bench/chaos.py                 # 4 workers, 20,000 jobs, a kill every 2 s
    uv run python bench/chaos.py --jobs 5000 --workers 3 --kill-every 1
    uv run python bench/chaos.py --jobs 6000 --kill-every 0 --outage-s 90   # Redis stopped 90 s

A killed worker is replaced at once (as the supervisor would). Its jobs come back when their
leases lapse (the lease is short here, 3 s, so the run does not wait long) and count as an
attempt. At the end it prints what was dispatched, completed (distinct ids the handlers
recorded), failed (in the failed store), lost (neither: must be 0) and duplicates (extra
executions: at-least-once delivery allows them when a worker dies between a handler's end and
its acknowledgement; each one is counted, never hidden).

With ``--outage-s`` the queue lives on a private ``redis-server`` (append-only file on), which
is stopped ``--outage-after`` seconds into the run for that long and started again; a worker
that gives up on it (exit 14) is replaced, as the supervisor would. ``--kill-every 0`` kills
no worker. (Master kills need masters: ``supervise_chaos.py --scenario master-kills``.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid

import redis
from private_redis import PrivateRedis
from tally import failed_bench_ids, print_tally, read_tally

from docmill.queue import Client, Dispatch, JobOptions, backend_from_url

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD_URL = os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/12")


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between SIGKILLs (0: none)")
    parser.add_argument("--outage-s", type=float, default=0.0, help="stop the queue's Redis this long")
    parser.add_argument("--outage-after", type=float, default=3.0, help="seconds into the run it stops")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    ns = f"dmchaos-{uuid.uuid4().hex[:8]}"
    private = PrivateRedis() if args.outage_s > 0 else None
    if private is not None:
        private.start()
    url = f"{private.url if private else args.redis}?prefix={ns}-q"
    rec = redis.Redis.from_url(RECORD_URL)
    env = dict(os.environ, PYTHONPATH=HERE, BENCH_RECORD_URL=RECORD_URL, BENCH_NS=ns)
    docmill_bin = os.path.join(os.path.dirname(sys.executable), "docmill")
    argv = [
        docmill_bin, "queue", "work", "--connection", url, "--app", "bench_jobs:registry",
        "--queue", "default", "--concurrency", str(args.concurrency), "--lease", str(args.lease),
        "--tries", str(args.tries), "--log-level", "warning",
    ]  # fmt: skip

    async def dispatch() -> None:
        backend = backend_from_url(url)
        await backend.connect()
        opts = JobOptions(tries=args.tries)
        await Client(backend).dispatch_many(Dispatch("bench.chaos", (i,), {}, opts) for i in range(args.jobs))
        await backend.close()

    async def remaining() -> tuple[int, int]:
        backend = backend_from_url(url)
        await backend.connect()
        stats = await backend.stats("default")
        failed = await backend.failed_count("default")
        await backend.close()
        return stats.size, failed

    print(f"dispatching {args.jobs:,} jobs to {url}", flush=True)
    asyncio.run(dispatch())
    t0 = time.time()
    workers = [subprocess.Popen(argv, env=env, cwd=HERE, start_new_session=True) for _ in range(args.workers)]
    kills = restarts = 0
    next_kill = t0 + args.kill_every
    outage, outage_began = "before", 0.0
    size, failed = args.jobs, 0
    try:
        while True:
            if private is not None and outage == "before" and time.time() - t0 >= args.outage_after:
                private.stop()
                outage, outage_began = "down", time.time()
            elif private is not None and outage == "down" and time.time() - outage_began >= args.outage_s:
                private.start()
                outage = "over"
            if outage != "down":
                with contextlib.suppress(Exception):  # the queue's Redis just came back: ask again
                    size, failed = asyncio.run(remaining())
            done = rec.zcard(f"{ns}:end")
            line = f"{time.time() - t0:6.1f}s  done {done:>6,}  left {size:>6,}  failed {failed}"
            state = "  redis down" if outage == "down" else ""
            print(f"\r{line}  kills {kills}{state}", end="", flush=True)
            if size == 0 and outage != "down":
                break
            for n, worker in enumerate(workers):
                if worker.poll() is not None:  # gave up on the backend (exit 14): replace it
                    workers[n] = subprocess.Popen(argv, env=env, cwd=HERE, start_new_session=True)
                    restarts += 1
            if args.kill_every > 0 and time.time() >= next_kill:
                victim = random.randrange(len(workers))
                os.killpg(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = subprocess.Popen(argv, env=env, cwd=HERE, start_new_session=True)
                kills += 1
                next_kill = time.time() + args.kill_every
            time.sleep(0.25)
        drain_s = time.time() - t0
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)

    tally = read_tally(rec, ns, args.jobs, asyncio.run(failed_bench_ids(url)))
    print_tally(tally)
    every = f"one every {args.kill_every:g} s" if args.kill_every > 0 else "none asked for"
    print(f"kills       {kills:>8,}   (SIGKILL, {every})")
    if private is not None:
        what = f"the queue's redis-server stopped {args.outage_after:g} s in"
        print(f"outage      {args.outage_s:>8g} s ({what})")
        print(f"restarts    {restarts:>8,}   (workers that exited on their own, replaced)")
        private.remove()
    print(f"drained in  {drain_s:>8.1f} s with {args.workers} workers x {args.concurrency}")
    for key in rec.scan_iter(match=f"{ns}*", count=1000):
        rec.delete(key)
    return 0 if tally.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
