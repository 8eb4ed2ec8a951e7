"""Chaos under supervision: two `docmill supervise` masters on one Redis queue, workers SIGKILLed.

    uv run python bench/supervise_chaos.py                  # 20,000 jobs, a kill every second for 60 s
    uv run python bench/supervise_chaos.py --jobs 5000 --chaos-s 20

Two masters (two configuration files, standing for two hosts) share the queue ``default``.
For ``--chaos-s`` seconds a random worker process of either master (never a master) is
SIGKILLed every ``--kill-every`` seconds; its master starts a new one, and the jobs it held
come back when their leases lapse (``--lease``, short here so the run does not wait long),
each redelivery counting as an attempt. Handlers are ``bench.chaos`` from bench/bench_jobs.py,
which record every execution in Redis (db 12, namespace BENCH_NS).

At the end it prints what was dispatched, completed (distinct ids the handlers recorded),
failed (in the failed store), lost (neither: must be 0), duplicates (extra executions, which
at-least-once delivery allows when a worker dies between a handler's end and its
acknowledgement), the kills, the restarts the masters made, and the time to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
from tally import failed_bench_ids, print_tally, read_tally

from docmill.queue import Client, Dispatch, JobOptions, backend_from_url

HERE = Path(__file__).resolve().parent
RECORD_URL = os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/12")
CONFIG = """
[supervisor]
connection = "{url}"
app = ["bench_jobs:registry"]
heartbeat_s = 1
control_poll_s = 1

[pools.default]
processes = {processes}
concurrency = {concurrency}
lease_s = {lease}
tries = {tries}
sleep_s = 1
startsecs = 0.5
startretries = 5
restart_backoff_s = 0.2
restart_backoff_max_s = 2
stop_wait_s = 10
"""


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--masters", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="worker processes per master")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--max-sleep", type=float, default=0.5, help="a job sleeps up to this long")
    parser.add_argument("--chaos-s", type=float, default=60.0, help="how long workers are killed")
    parser.add_argument("--kill-every", type=float, default=1.0, help="seconds between SIGKILLs")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    ns = f"dmsvchaos-{uuid.uuid4().hex[:8]}"
    url = f"{args.redis}?prefix={ns}-q"
    rec = redis.Redis.from_url(RECORD_URL)
    root = Path(tempfile.mkdtemp(prefix="dm-chaos-"))
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DOCMILL_QUEUE_URL", "DOCMILL_CONFIG")},
        "PYTHONPATH": str(HERE),
        "BENCH_RECORD_URL": RECORD_URL,
        "BENCH_NS": ns,
    }
    docmill = str(Path(sys.executable).parent / "docmill")

    async def dispatch() -> None:
        backend = backend_from_url(url)
        await backend.connect()
        opts = JobOptions(tries=args.tries)
        items = (
            Dispatch("bench.chaos", (i,), {"max_sleep_s": args.max_sleep}, opts) for i in range(args.jobs)
        )
        await Client(backend).dispatch_many(items)
        await backend.close()

    async def remaining() -> tuple[int, int]:
        backend = backend_from_url(url)
        await backend.connect()
        stats = await backend.stats("default")
        failed = await backend.failed_count("default")
        await backend.close()
        return stats.size, failed

    async def failures() -> list[str]:
        backend = backend_from_url(url)
        await backend.connect()
        page = await backend.failed_page("default", limit=10)
        await backend.close()
        return [f"{j.id}  attempts {j.attempts}  {j.error.summary() if j.error else '?'}" for j in page]

    async def heartbeats() -> list[dict[str, Any]]:
        backend = backend_from_url(url)
        await backend.connect()
        beats = await backend.heartbeats("master")
        await backend.close()
        return beats

    masters: list[subprocess.Popen[bytes]] = []
    for n in range(args.masters):
        home = root / f"host-{n + 1}"
        home.mkdir()
        config = CONFIG.format(
            url=url,
            processes=args.processes,
            concurrency=args.concurrency,
            lease=args.lease,
            tries=args.tries,
        )
        (home / "docmill.toml").write_text(config)
        out = (home / "master.out").open("wb")
        masters.append(
            subprocess.Popen(
                [docmill, "supervise", "--config", "docmill.toml", "--quiet"],
                cwd=home,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def workers(min_age_s: float) -> list[psutil.Process]:
        """Worker processes of every master that have been up at least ``min_age_s``."""
        now = time.time()
        found = []
        for master in masters:
            try:
                children = psutil.Process(master.pid).children()
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:
                    if now - child.create_time() >= min_age_s and child.status() != psutil.STATUS_ZOMBIE:
                        found.append(child)
                except psutil.NoSuchProcess:
                    pass
        return found

    kills = 0
    total_workers = args.masters * args.processes
    try:
        deadline = time.time() + 30
        while len(workers(0.5)) < total_workers:
            if time.time() > deadline:
                raise SystemExit(f"the masters did not start their workers; see {root}/*/storage/logs")
            time.sleep(0.2)
        print(
            f"{args.masters} masters x {args.processes} workers x {args.concurrency} jobs at once", flush=True
        )
        print(f"dispatching {args.jobs:,} jobs to {url}", flush=True)
        asyncio.run(dispatch())
        t0 = time.time()
        next_kill = t0 + args.kill_every
        while True:
            size, failed = asyncio.run(remaining())
            done = rec.zcard(f"{ns}:end")
            elapsed = time.time() - t0
            line = f"{elapsed:6.1f}s  done {done:>6,}  left {size:>6,}  failed {failed}  kills {kills}"
            print(f"\r{line}", end="", flush=True)
            if size == 0:
                break
            if elapsed < args.chaos_s and time.time() >= next_kill:
                # Only workers past their boot (startsecs): a kill during boot counts as a boot failure.
                candidates = workers(1.5)
                if candidates:
                    victim = random.choice(candidates)
                    try:
                        victim.send_signal(signal.SIGKILL)
                        kills += 1
                    except psutil.NoSuchProcess:
                        pass
                next_kill = time.time() + args.kill_every
            time.sleep(0.25)
        drain_s = time.time() - t0
        beats = asyncio.run(heartbeats())
    finally:
        for master in masters:
            if master.poll() is None:
                master.send_signal(signal.SIGTERM)
        for master in masters:
            try:
                master.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(master.pid, signal.SIGKILL)

    tally = read_tally(rec, ns, args.jobs, asyncio.run(failed_bench_ids(url)))
    restarts = sum(p.get("restarts") or 0 for b in beats for pool in b["pools"] for p in pool["processes"])
    fatal = [pool["name"] for b in beats for pool in b["pools"] if pool["state"] == "fatal"]
    print_tally(tally)
    print(
        f"kills       {kills:>8,}   (SIGKILL to a worker every {args.kill_every:g} s for {args.chaos_s:g} s)"
    )
    print(f"restarts    {restarts:>8,}   (worker processes the masters started again)")
    print(f"fatal pools {len(fatal):>8,}")
    print(f"drained in  {drain_s:>8.1f} s")
    for line in asyncio.run(failures()):  # why a job failed: out of tries after kills, or a bug
        print(f"  failed: {line}")
    for key in rec.scan_iter(match=f"{ns}*", count=1000):
        rec.delete(key)
    shutil.rmtree(root, ignore_errors=True)
    return 0 if tally.lost == 0 and not fatal else 1


if __name__ == "__main__":
    sys.exit(main())
