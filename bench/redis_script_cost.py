"""What the hot-path Redis scripts cost per job: commands run inside them, and server time.

    redis-server --port 6391 --save '' --appendonly no --daemonize yes
    uv run python bench/redis_script_cost.py --port 6391 --jobs 10000

Enqueues N jobs (batches of 500, one tag each), reserves them 32 at a time and completes
them 32 at a time, reading ``INFO commandstats`` around each phase. The command count does
not depend on the machine's load, so it compares two versions of the scripts exactly; the
server time (usec of EVALSHA) does. The database is flushed first: use a private server.
"""

from __future__ import annotations

import argparse
import asyncio

import redis

from docmill.queue import Completion, Job, JobOptions, backend_from_url


def counters(raw: redis.Redis) -> tuple[float, float]:
    """(commands run inside scripts, server microseconds spent in EVALSHA) so far."""
    stats = raw.info("commandstats")
    commands = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_info"))
    return float(commands), float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def measure(port: int, n: int) -> dict[str, tuple[float, float]]:
    raw = redis.Redis(port=port)
    raw.flushdb()
    backend = backend_from_url(f"redis://127.0.0.1:{port}/0")
    await backend.connect()
    jobs = [Job.build("bench.noop", [i], options=JobOptions(tags=("document:1",))) for i in range(n)]
    phases: dict[str, tuple[float, float]] = {}

    def since(start: tuple[float, float]) -> tuple[float, float]:
        now = counters(raw)
        return now[0] - start[0], now[1] - start[1]

    start = counters(raw)
    for i in range(0, n, 500):
        await backend.enqueue(jobs[i : i + 500])
    phases["enqueue"] = since(start)
    reserved: list[Job] = []
    start = counters(raw)
    while len(reserved) < n:
        reserved += (await backend.reserve("default", worker_id="w", lease_s=30, limit=32)).jobs
    phases["reserve"] = since(start)
    start = counters(raw)
    for i in range(0, n, 32):
        await backend.complete([Completion(job, 0.001, 0.001) for job in reserved[i : i + 32]])
    phases["complete"] = since(start)
    await backend.close()
    raw.close()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=6391)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    phases = asyncio.run(measure(args.port, args.jobs))
    print(f"jobs {args.jobs}")
    for name, (commands, usec) in phases.items():
        print(f"{name:9} {commands / args.jobs:5.2f} commands/job  {usec / args.jobs:7.2f} us/job")


if __name__ == "__main__":
    main()
