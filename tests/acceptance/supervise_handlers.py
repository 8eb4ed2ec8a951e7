"""Handlers the supervisor's acceptance tests run in real workers (``--app supervise_handlers:registry``).

Every finished job appends its number to the file it names, so a test can count
each job that ran to the end, duplicates included.
"""

from __future__ import annotations

import asyncio
import os

from docmill.queue import Registry

registry = Registry()


@registry.handler(name="supervise.work")
async def work(n: int, seconds: float, out: str) -> None:
    await asyncio.sleep(seconds)
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
