"""Handlers the dashboard's browser tests dispatch (imported by the worker via PYTHONPATH).

``dash.flaky`` fails until the test creates ``$DASH_ALLOW_DIR/<kind>``, so a failed job
retried from the dashboard after that completes.
"""

from __future__ import annotations

import os
from pathlib import Path

from docmill.queue import Registry

registry = Registry()


@registry.handler(name="dash.echo")
async def echo(text: str) -> str:
    return text


@registry.handler(name="dash.flaky")
def flaky(kind: str, number: int) -> None:
    if (Path(os.environ["DASH_ALLOW_DIR"]) / kind).exists():
        return
    if kind == "single":
        raise KeyError(f"alpha-{number}")
    raise ValueError(f"record {number} is locked")
