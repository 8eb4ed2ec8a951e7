"""Job handlers for the benchmarks in bench/: each execution is recorded in Redis.

One pipelined round trip per job (as the peer harness does), so every engine-side
figure can be checked against what the handlers actually saw:

    {ns}:exec    INCR   executions (duplicates = exec - distinct ids)
    {ns}:start   ZSET   id -> handler start (epoch s)
    {ns}:end     ZSET   id -> handler end
    {ns}:lat     ZSET   id -> start - dispatch time (pickup latency)
    {ns}:count   HASH   id -> executions of that id (chaos: who ran twice)

``BENCH_RECORD_URL`` names the Redis database and ``BENCH_NS`` the key namespace.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import redis.asyncio as aredis

from docmill.queue import Registry

RECORD_URL = os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/12")
NS = os.environ.get("BENCH_NS", "dmqb")

registry = Registry()
_client: Any = None
_loop: Any = None


def recorder() -> Any:
    global _client, _loop
    loop = asyncio.get_running_loop()
    if _client is None or _loop is not loop:
        _client = aredis.Redis.from_url(RECORD_URL)
        _loop = loop
    return _client


async def _record(i: int, t0: float, t1: float, *, count: bool = False) -> None:
    pipe = recorder().pipeline(transaction=False)
    pipe.incr(f"{NS}:exec")
    pipe.zadd(f"{NS}:start", {str(i): t0})
    pipe.zadd(f"{NS}:end", {str(i): t1})
    if count:
        pipe.hincrby(f"{NS}:count", str(i), 1)
    await pipe.execute()


@registry.handler(name="bench.noop")
async def noop(i: int) -> None:
    t0 = time.time()
    await _record(i, t0, time.time())


@registry.handler(name="bench.io")
async def io(i: int, sleep_s: float = 0.05) -> None:
    t0 = time.time()
    await asyncio.sleep(sleep_s)
    await _record(i, t0, time.time())


@registry.handler(name="bench.lat")
async def lat(i: int, t_enq: float) -> None:
    latency = time.time() - t_enq
    pipe = recorder().pipeline(transaction=False)
    pipe.incr(f"{NS}:exec")
    pipe.zadd(f"{NS}:lat", {str(i): latency})
    await pipe.execute()


@registry.handler(name="bench.chaos")
async def chaos(i: int, max_sleep_s: float = 0.02) -> None:
    t0 = time.time()
    await asyncio.sleep(random.uniform(0, max_sleep_s))
    await _record(i, t0, time.time(), count=True)


async def _without_queue(n: int, concurrency: int, sleep_s: float) -> None:
    """The W2 bodies with no queue at all: ``concurrency`` plain tasks run ``n`` jobs back to back.

    This is the best any engine can do with these bodies in one process: whatever
    their recording and the loop's timers cost is in it, and nothing else.
    """
    ids = iter(range(n))

    async def slot() -> None:
        for i in ids:
            await io(i, sleep_s)

    await asyncio.gather(*(slot() for _ in range(concurrency)))


if __name__ == "__main__":  # python bench_jobs.py without-queue N CONCURRENCY SLEEP_S
    import sys

    if sys.argv[1:2] != ["without-queue"]:
        raise SystemExit("usage: bench_jobs.py without-queue N CONCURRENCY SLEEP_S")
    asyncio.run(_without_queue(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
