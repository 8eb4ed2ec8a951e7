"""Chaos under supervision: `docmill supervise` masters on one Redis queue, with things killed.

    uv run python bench/supervise_chaos.py                   # every scenario, 20,000 jobs each
    uv run python bench/supervise_chaos.py --jobs 6000 --scenario outage --outage-s 90

Two masters (two configuration files, standing for two hosts) share the queue ``default``.
Handlers are ``bench.chaos`` from bench/bench_jobs.py, which record every execution in Redis
(db 12 of the shared server, namespace BENCH_NS). Each scenario runs on a queue of its own:

* ``worker-kills``: for ``--chaos-s`` seconds a random worker process of either master (never
  a master) is SIGKILLed every ``--kill-every`` seconds; its master starts a new one, and the
  jobs it held come back when their leases lapse (``--lease``, short here so the run does not
  wait long), each redelivery counting as an attempt.
* ``master-kills``: for ``--chaos-s`` seconds a random master is SIGKILLed every
  ``--master-kill-every`` seconds and started again a second later (as supervisord or systemd
  would). Its orphaned workers finish their running jobs and exit; the new master starts
  new ones.
* ``outage``: the queue lives on a private ``redis-server`` (append-only file on), stopped
  ``--outage-after`` seconds into the run for ``--outage-s`` seconds and started again.

For each scenario it prints what was dispatched, completed (distinct ids the handlers
recorded), failed (in the failed store), lost (neither: must be 0), duplicates (extra
executions), the kills, the restarts the masters made and the time to drain; then one line
per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from private_redis import PrivateRedis
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


SCENARIOS = ("worker-kills", "master-kills", "outage")


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable (default: all)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--masters", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="worker processes per master")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--max-sleep", type=float, default=0.5, help="a job sleeps up to this long")
    parser.add_argument("--chaos-s", type=float, default=60.0, help="how long things are killed")
    parser.add_argument("--kill-every", type=float, default=1.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--master-kill-every", type=float, default=10.0, help="seconds between master kills")
    parser.add_argument("--outage-after", type=float, default=5.0, help="seconds into the run Redis stops")
    parser.add_argument("--outage-s", type=float, default=90.0, help="how long Redis stays stopped")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    results = [(name, run(name, args)) for name in args.scenario or SCENARIOS]
    print()
    print(
        "| scenario | dispatched | completed | failed | lost | duplicates | kills | restarts | drained in |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results:
        t = r["tally"]
        print(
            f"| {name} | {t.dispatched:,} | {t.completed:,} | {t.failed:,} | {t.lost:,} | {t.duplicates:,} "
            f"| {r['kills']} | {r['restarts']} | {r['drain_s']:.1f} s |"
        )
    return 0 if all(r["tally"].lost == 0 and not r["fatal"] for _, r in results) else 1


def run(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {scenario}", flush=True)
    ns = f"dmsvchaos-{uuid.uuid4().hex[:8]}"
    private = PrivateRedis() if scenario == "outage" else None
    if private is not None:
        private.start()
        url = f"{private.url}?prefix={ns}-q"
    else:
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
        try:
            stats = await backend.stats("default")
            failed = await backend.failed_count("default")
        finally:
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

    def start_master(n: int) -> subprocess.Popen[bytes]:
        home = root / f"host-{n + 1}"
        out = (home / "master.out").open("ab")
        return subprocess.Popen(
            [docmill, "supervise", "--config", "docmill.toml", "--quiet"],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

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
        masters.append(start_master(n))

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
    beats: list[dict[str, Any]] = []
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
        next_kill = t0 + (args.master_kill_every if scenario == "master-kills" else args.kill_every)
        outage = "before"
        size, failed = args.jobs, 0
        while True:
            elapsed = time.time() - t0
            if private is not None and outage == "before" and elapsed >= args.outage_after:
                private.stop()
                outage, outage_began = "down", time.time()
            elif private is not None and outage == "down" and time.time() - outage_began >= args.outage_s:
                private.start()
                outage = "over"
            if outage != "down":
                with contextlib.suppress(Exception):  # the queue's Redis just came back: ask again
                    size, failed = asyncio.run(remaining())
            done = rec.zcard(f"{ns}:end")
            state = "  redis down" if outage == "down" else ""
            line = f"{elapsed:6.1f}s  done {done:>6,}  left {size:>6,}  failed {failed}  kills {kills}{state}"
            print(f"\r{line}", end="", flush=True)
            if size == 0 and outage != "down":
                break
            if elapsed < args.chaos_s and time.time() >= next_kill:
                if scenario == "worker-kills":
                    # Only workers past their boot (startsecs): a kill then is an ordinary crash.
                    candidates = workers(1.5)
                    if candidates:
                        victim = random.choice(candidates)
                        try:
                            victim.send_signal(signal.SIGKILL)
                            kills += 1
                        except psutil.NoSuchProcess:
                            pass
                    next_kill = time.time() + args.kill_every
                elif scenario == "master-kills":
                    n = random.randrange(len(masters))
                    masters[n].send_signal(signal.SIGKILL)  # the master alone: its workers are orphaned
                    masters[n].wait()
                    kills += 1
                    time.sleep(1.0)  # supervisord's or systemd's restart delay
                    masters[n] = start_master(n)
                    next_kill = time.time() + args.master_kill_every
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
        # Orphans of killed masters finish within their stop_wait_s; count their jobs too.
        for orphan in [
            p for p in psutil.process_iter(["cmdline"]) if ns in " ".join(p.info["cmdline"] or [])
        ]:
            try:
                orphan.wait(timeout=30)
            except psutil.TimeoutExpired:
                orphan.kill()

    tally = read_tally(rec, ns, args.jobs, asyncio.run(failed_bench_ids(url)))
    restarts = sum(p.get("restarts") or 0 for b in beats for pool in b["pools"] for p in pool["processes"])
    fatal = [pool["name"] for b in beats for pool in b["pools"] if pool["state"] == "fatal"]
    print_tally(tally)
    if scenario == "worker-kills":
        what = f"SIGKILL to a worker every {args.kill_every:g} s for {args.chaos_s:g} s"
        print(f"kills       {kills:>8,}   ({what})")
    elif scenario == "master-kills":
        what = f"SIGKILL to a master every {args.master_kill_every:g} s for {args.chaos_s:g} s"
        print(f"kills       {kills:>8,}   ({what})")
    else:
        what = f"the queue's redis-server stopped {args.outage_after:g} s in"
        print(f"outage      {args.outage_s:>8g} s ({what})")
    print(f"restarts    {restarts:>8,}   (worker processes the live masters started again)")
    print(f"fatal pools {len(fatal):>8,}")
    print(f"drained in  {drain_s:>8.1f} s")
    for line in asyncio.run(failures()):  # why a job failed: out of tries after kills, or a bug
        print(f"  failed: {line}")
    for key in rec.scan_iter(match=f"{ns}*", count=1000):
        rec.delete(key)
    shutil.rmtree(root, ignore_errors=True)
    if private is not None:
        private.remove()
    return {"tally": tally, "kills": kills, "restarts": restarts, "fatal": fatal, "drain_s": drain_s}


if __name__ == "__main__":
    sys.exit(main())
