"""Handlers the worker acceptance tests dispatch (imported by the worker via PYTHONPATH)."""

from __future__ import annotations

import asyncio
import os
import signal

from docmill.queue import Registry

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
