"""docmill engine module for the peer benchmark harness (../shared/bench/peers, see its run.py).

Run by the harness with the project's venv python, cwd = the harness's libs/ folder and
PYTHONPATH = this folder + libs/, so ``_common`` (the shared job bodies that record every
execution in Redis) is importable. Every job is kept by the engine: a lease per job,
redelivery after a crash; nothing here turns that off.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import _common  # type: ignore[import-not-found]
from _common import URL  # type: ignore[import-not-found]

from docmill.queue import Client, Dispatch, Registry, backend_from_url

PREFIX = "dmbench"
QUEUE_URL = f"{URL}{'&' if '?' in URL else '?'}prefix={PREFIX}"
BIN = os.path.dirname(sys.executable)

registry = Registry()


@registry.handler(name="noop")
async def noop(i: int) -> None:
    await _common.job_noop_async(i)


@registry.handler(name="io")
async def io(i: int) -> None:
    await _common.job_io_async(i)


@registry.handler(name="lat")
async def lat(i: int, t_enq: float) -> None:
    await _common.job_lat_async(i, t_enq)


CONCURRENCY = {"default": 10, "c50": 50, "c100": 100}


def describe() -> dict[str, object]:
    import docmill

    return {
        "engine": "docmill",
        "version": docmill.__version__,
        "variants": {"W1": ["default", "c50"], "W2": ["c100"], "W3": ["default"]},
        "enqueue": "bulk: Client.dispatch_many() (one Lua call per 1,000 jobs)",
        "notes": {
            "default": "`docmill queue work --concurrency 10 --log-level warning` (10 is the default); "
            "a 30 s lease per job renewed while it runs; acks gathered and sent once a burst of "
            "finishing jobs is over (within 50 ms); an idle worker's wake-up and its reservation "
            "share one round trip",
            "c50": "same with --concurrency 50",
            "c100": "same with --concurrency 100",
        },
    }


async def _client() -> Client:
    backend = backend_from_url(QUEUE_URL)
    await backend.connect()
    return Client(backend, registry)


def enqueue(workload: str, n: int, variant: str) -> dict[str, object]:
    name = {"W1": "noop", "W2": "io"}[workload]

    async def go() -> float:
        client = await _client()
        items = [Dispatch(name, (i,)) for i in range(n)]
        t0 = time.perf_counter()
        await client.dispatch_many(items)
        dt = time.perf_counter() - t0
        await client.backend.close()
        return dt

    return {"seconds": asyncio.run(go()), "method": "dispatch_many"}


def enqueue_latency(ids: list[int], interval: float, variant: str) -> dict[str, object]:
    async def go() -> None:
        client = await _client()
        for i in ids:
            await client.dispatch("lat", i, time.time())
            await asyncio.sleep(interval)
        await client.backend.close()

    asyncio.run(go())
    return {"sent": len(ids)}


def worker_argv(workload: str, variant: str) -> list[str]:
    return [
        os.path.join(BIN, "docmill"),
        "queue",
        "work",
        "--connection",
        QUEUE_URL,
        "--app",
        "bench_docmill:registry",
        "--queue",
        "default",
        "--concurrency",
        str(CONCURRENCY[variant]),
        "--log-level",
        "warning",
    ]
