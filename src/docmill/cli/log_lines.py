"""The lines of the master's log files, made readable for ``docmill queue logs``.

``<pool>.log`` holds one JSON object per line (``docmill.supervisor.logs.child_line``):
a worker's event with its ``process`` and ``pid`` added, or a line the worker
printed otherwise, wrapped with its ``stream``. ``supervisor.log`` holds the
master's own events, as JSON or as text. Each becomes one line::

    2026-11-27T19:16:02.123Z info default.1[4242] job.started queue=default id=0193...
    2026-11-27T19:16:03.001Z stderr default.1[4242] Traceback (most recent call last):

A line that is not a JSON object is shown as it is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from docmill.queue.events import EventLog

_TEXT = EventLog(json_lines=False)


def readable(line: str) -> str:
    """One log line for people (see the module docstring)."""
    record = _parse(line)
    if record is None:
        return line
    stamp = _stamp(record.pop("ts", None))
    process, pid = record.pop("process", None), record.pop("pid", None)
    who = f"{process}[{pid}] " if process is not None else ""
    if "event" in record:
        level = str(record.pop("level", "info"))
        event = str(record.pop("event"))
        _, level, rest = _TEXT.render(0.0, level, event, record).split(" ", 2)
        return f"{stamp} {level} {who}{rest}"
    if "line" in record:
        return f"{stamp} {record.get('stream', 'stdout')} {who}{record['line']}"
    return line


def _stamp(ts: Any) -> str:
    """UTC to the millisecond, as the workers' own text lines show it."""
    if not isinstance(ts, int | float):
        return "-"
    seconds, ms = divmod(round(ts * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def _parse(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
