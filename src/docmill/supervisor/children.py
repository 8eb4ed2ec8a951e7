"""The real ``Spawner``: worker processes with their output piped into the pool's log."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque
from typing import IO

from docmill.supervisor.logs import LogFiles, RotatingFile, child_line
from docmill.supervisor.process import Command

TAIL_LINES = 20


class PipedChild:
    """A ``subprocess.Popen`` whose stdout and stderr are copied, line by line, into a log file."""

    def __init__(self, name: str, pool: str, command: Command, logs: LogFiles) -> None:
        env = {**os.environ, **command.env}
        self.popen = subprocess.Popen(
            list(command.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Own session: a Ctrl-C in the master's terminal reaches the master only, which then
            # stops the workers in order instead of all of them at once.
            start_new_session=True,
        )
        self.name = name
        self.pool = pool
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)  # last stderr lines, for boot failures
        target = logs.file(pool)
        self._readers = [
            threading.Thread(
                target=self._copy, args=(pipe, stream, target), name=f"{name}-{stream}", daemon=True
            )
            for pipe, stream in ((self.popen.stdout, "stdout"), (self.popen.stderr, "stderr"))
            if pipe is not None
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.popen.returncode is None:
            self.popen.send_signal(sig)

    def _copy(self, pipe: IO[bytes], stream: str, target: RotatingFile) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace")
                if stream == "stderr":
                    self.tail.append(line.rstrip("\n"))
                target.write(child_line(self.pool, self.name, self.pid, stream, line))

    def join(self, timeout_s: float) -> None:
        for reader in self._readers:
            reader.join(timeout_s)


class PipedSpawner:
    def __init__(self, logs: LogFiles) -> None:
        self.logs = logs

    def spawn(self, name: str, pool: str, command: Command) -> PipedChild:
        return PipedChild(name, pool, command, self.logs)
