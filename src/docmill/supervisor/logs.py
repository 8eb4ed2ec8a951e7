"""Log files the master writes: ``<pool>.log`` with its workers' output, and ``supervisor.log``.

Only the master writes them (workers' stdout and stderr come to it through
pipes), so no two processes ever rotate one file. Rotation is by size:
``name.log`` -> ``name.log.1`` ... ``name.log.<backups>``.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, TextIO

SUPERVISOR_LOG = "supervisor"


class RotatingFile(io.TextIOBase):
    """An append-only text file that rotates itself by size; safe to write from several threads."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = path.open("a", encoding="utf-8")
        self._size = path.stat().st_size

    def write(self, text: str) -> int:
        with self._lock:
            if self._fh is None:
                return 0
            data = text.encode("utf-8", "replace")
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            assert self._fh is not None
            self._fh.write(text)
            self._fh.flush()
            self._size += len(data)
            return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
        super().close()

    def _rotate(self) -> None:
        assert self._fh is not None
        self._fh.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._size = 0


class Tee(io.TextIOBase):
    """Writes to several streams; the master logs to its file and to stderr."""

    def __init__(self, *streams: io.TextIOBase | TextIO) -> None:
        super().__init__()
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass
        return len(text)


def child_line(pool: str, process: str, pid: int, stream: str, line: str) -> str:
    """One line of a worker's output as it goes into ``<pool>.log``: a JSON object.

    A line that already is a JSON object (the worker runs with ``--json``) gets
    ``process`` and ``pid`` added; any other line is wrapped with its stream.
    """
    text = line.rstrip("\r\n")
    record: dict[str, Any] | None = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            record = {"process": process, "pid": pid, **parsed}
    if record is None:
        record = {"ts": round(time.time(), 3), "process": process, "pid": pid, "stream": stream, "line": text}
    return json.dumps(record, default=str, ensure_ascii=False) + "\n"


class LogFiles:
    """The master's open log files, one per pool, created on first use."""

    def __init__(self, log_dir: Path, max_bytes: int, backups: int) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[str, RotatingFile] = {}
        self._lock = threading.Lock()

    def file(self, name: str) -> RotatingFile:
        with self._lock:
            handle = self._files.get(name)
            if handle is None:
                handle = RotatingFile(self.log_dir / f"{name}.log", self.max_bytes, self.backups)
                self._files[name] = handle
            return handle

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
