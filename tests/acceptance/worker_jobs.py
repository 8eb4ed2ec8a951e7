"""Handlers the worker acceptance tests dispatch (imported by the worker via PYTHONPATH)."""

from __future__ import annotations

import asyncio
import os
import signal

from docmill.queue import Fail, Registry, WorkerContext

registry = Registry()


@registry.handler(name="accept.sleep")
async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@registry.handler(name="accept.spin")
def spin() -> None:
    """A sync handler stuck in a loop: only ending the process stops it."""
    while True:
        pass


@registry.handler(name="accept.suicide")
def suicide() -> None:
    """Kills its own worker, as a segfaulting C extension or the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@registry.handler(name="accept.saves_then_waits", context=True)
async def saves_then_waits(ctx: WorkerContext, journal: str, runs_to_finish: int) -> None:
    """Each run saves one step, says the attempt made progress, notes it in ``journal``, and
    then waits to be killed, until the run that completes the job."""
    assert await ctx.progress()
    with open(journal, "a") as file:
        file.write("step\n")
    with open(journal) as file:
        runs = len(file.readlines())
    if runs < runs_to_finish:
        await asyncio.sleep(600)


@registry.handler(name="accept.refuse")
async def refuse() -> None:
    """Fails its job for good at once."""
    raise Fail("this job cannot succeed")
