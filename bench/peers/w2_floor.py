"""W2's floor: the harness's own W2 bodies run by plain asyncio tasks, with no queue at all.

The harness's W2 figure is (last end - first start) / 1.0 s. The bodies themselves
(``_common.job_io_async``: a 50 ms sleep, then one pipelined round trip to Redis) and the
event loop's timers cost time too, so even a queue that cost nothing would not reach 1.0.
This script measures that floor with any venv's python, so each engine's W2 can be read
against the floor of its own venv (its redis-py version matters):

    BENCH_REDIS_URL=redis://127.0.0.1:6379/10 PYTHONPATH=../shared/bench/peers/libs \\
        .venv/bin/python bench/peers/w2_floor.py [--reps 5]

It uses the Redis database of BENCH_REDIS_URL (keys ``bench:*``, deleted before each rep):
not the harness's own database while the harness runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import _common  # type: ignore[import-not-found]
import redis

N, CONCURRENCY = 2000, 100
IDEAL_S = N * _common.IO_SLEEP / CONCURRENCY


async def run_once() -> None:
    ids = iter(range(N))

    async def slot() -> None:
        for i in ids:
            await _common.job_io_async(i)

    await asyncio.gather(*(slot() for _ in range(CONCURRENCY)))


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    rec = redis.Redis.from_url(_common.URL)
    ratios = []
    for _ in range(reps):
        rec.delete(_common.K_EXEC, _common.K_START, _common.K_END)
        asyncio.run(run_once())  # a new loop each rep: the bodies' client (and its pool) is new too
        starts = [s for _, s in rec.zrange(_common.K_START, 0, -1, withscores=True)]
        ends = [s for _, s in rec.zrange(_common.K_END, 0, -1, withscores=True)]
        assert len(ends) == N, f"only {len(ends)} of {N} bodies recorded"
        ratios.append((max(ends) - min(starts)) / IDEAL_S)
        time.sleep(0.2)
    rec.delete(_common.K_EXEC, _common.K_START, _common.K_END)
    print(
        f"redis-py {redis.__version__}: W2 floor (no queue) median {statistics.median(ratios):.3f}x ideal, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f} over {reps} reps"
    )


if __name__ == "__main__":
    main()
