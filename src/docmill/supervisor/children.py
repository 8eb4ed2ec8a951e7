"""The real ``Spawner``: worker processes with their output piped into the pool's log."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import IO

from docmill.supervisor.logs import LogFiles, RotatingFile, child_line
from docmill.supervisor.process import Command

TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # linux/prctl.h
MASTER_GONE_SIGNAL = signal.SIGHUP  # what a worker gets when its master dies (worker.py)


def _load_prctl() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's prctl, looked up once in the master (never between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _follow_the_master(master_pid: int) -> None:
    """Between fork and exec in a worker: SIGHUP it when the master dies, even by SIGKILL.

    Workers run in their own session (so a Ctrl-C reaches the master only), which also puts
    them out of reach of a process-group kill; without this link a master killed by the OOM
    killer or ``kill -9`` would leave workers taking jobs with nobody supervising them.
    The worker reads SIGHUP as "the master is gone": it finishes its running jobs within its
    grace, hands back those reserved ahead, and stops. Its own signal, not SIGTERM, because the
    kernel sends it once per thread of the dying master (each exiting thread hands its
    children to the next): the worker must take every copy as the same request, while it
    takes a person's second Ctrl-C as "hurry". The link survives the exec into the worker.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, MASTER_GONE_SIGNAL)
    if os.getppid() != master_pid:  # the master died before the link was made
        os.kill(os.getpid(), MASTER_GONE_SIGNAL)


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
            preexec_fn=functools.partial(_follow_the_master, os.getpid()),
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
