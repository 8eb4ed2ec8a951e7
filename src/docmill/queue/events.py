"""Structured event logging: one line per event, a stable name plus fields.

Two renderings of the same record::

    2026-11-27T19:16:02.123Z info job.started queue=default id=0193... name=app.ocr attempt=1/3
    {"ts": 1795806962.123, "level": "info", "event": "job.started", "queue": "default", ...}

Callers on a hot path check ``log.info_enabled`` before building fields, so
a worker started with ``--log-level warning`` spends nothing on per-job lines.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class EventLog:
    """Writes events to a text stream (stdout by default), as key=value or JSON lines."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        json_lines: bool = False,
        level: str = "info",
        clock: Callable[[], float] = time.time,
    ):
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; use one of: {', '.join(LEVELS)}")
        self.stream = stream if stream is not None else sys.stdout
        self.json_lines = json_lines
        self.threshold = LEVELS[level]
        self.info_enabled = self.threshold <= LEVELS["info"]
        self.clock = clock
        self._lock = threading.Lock()  # sync handlers' threads may log too

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def debug(self, event: str, **fields: Any) -> None:
        self.emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self.emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self.emit("error", event, fields)

    def emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = self.clock()
        self.record(now, level, event, fields)
        line = self.render(now, level, event, fields)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # closed or broken pipe: losing a log line must not kill jobs
                pass

    def record(self, ts: float, level: str, event: str, fields: dict[str, Any]) -> None:
        """Hook for capturing logs (see ``CapturedEventLog``); does nothing here."""

    def render(self, ts: float, level: str, event: str, fields: dict[str, Any]) -> str:
        if self.json_lines:
            return json.dumps({"ts": round(ts, 3), "level": level, "event": event, **fields}, default=str)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
        parts = [stamp, level, event]
        parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
        return " ".join(parts)


class CapturedEventLog(EventLog):
    """An ``EventLog`` that also keeps every record, for tests: ``log.events("job.done")``."""

    def __init__(self, stream: TextIO | None = None, *, json_lines: bool = False, level: str = "debug"):
        super().__init__(stream, json_lines=json_lines, level=level)
        self.records: list[dict[str, Any]] = []

    def emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] >= self.threshold:
            self.record(time.time(), level, event, fields)

    def record(self, ts: float, level: str, event: str, fields: dict[str, Any]) -> None:
        self.records.append({"ts": ts, "level": level, "event": event, **fields})

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if name is None or r["event"] == name]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text
