"""One supervised worker process: when it moves between states, and why.

The operating system sits behind a seam (``Spawner``, ``Child``, ``Clock``) so
that crash handling, backoff and FATAL are unit-tested with fakes, without
forking (``children.py`` is the real spawner).

How an exit is read (the worker's codes, ``docmill.queue.stop``):

* 0 (max time, max jobs, restart, interrupted), 12 (memory), 13 (job timeout),
  15 (a sync job's lease lost): a *recycle*. The process did its job; a fresh one starts at once.
* 3 (boot failure): it can never start as configured. FATAL, never retried.
* anything else (14 backend lost, a traceback's 1, killed by a signal): a
  *crash*. Restarted after a delay that doubles with each crash in a row; a
  process that ran ``settled_s`` or longer starts again from the base delay
  (the backoff is there against crash loops, not against a crash now and then).
* any exit within ``startsecs`` of the spawn: a *boot failure*; after
  ``startretries`` of them in a row the process is FATAL. Not so a process
  killed from outside (SIGKILL from the OOM killer or an operator, SIGTERM...):
  that says nothing about whether it can boot, so it is a crash.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from docmill.supervisor.heartbeat import LastExit, ProcessHeartbeat
from docmill.supervisor.states import ALIVE, ProcessState, transition

EXIT_BOOT_FAILURE = 3
EXIT_BACKEND_LOST = 14  # the queue backend stayed unreachable: an outage, never a reason for FATAL
RECYCLE_CODES = frozenset({0, 12, 13, 15})  # asked for a fresh process: restart without delay
# Signals another process sends; a worker killed by one of them did not fail on its own.
# (SIGSEGV, SIGABRT, SIGBUS... are the process's own faults and still count as boot failures.)
EXTERNAL_SIGNALS = frozenset(
    {
        signal.SIGKILL,
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    }
)
EXIT_NAMES = {
    0: "stopped",
    3: "boot_failure",
    12: "memory",
    13: "job_timeout",
    14: "backend_lost",
    15: "lease_lost",
}


class Child(Protocol):
    """A running operating-system process, as ``subprocess.Popen`` exposes it."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""

    def send_signal(self, sig: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Command:
    """What to run: the argument vector, and variables added to the master's environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


class Spawner(Protocol):
    def spawn(self, name: str, pool: str, command: Command) -> Child:
        """Start ``command`` as the process ``name`` of ``pool``; raise ``OSError`` if impossible."""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


def describe_exit(code: int) -> str:
    """``stopped``, ``memory``, ``killed by SIGKILL``, ``exit 1``..."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return EXIT_NAMES.get(code, f"exit {code}")


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a pool restarts its processes (from ``PoolConfig``)."""

    startsecs: float = 1.0
    startretries: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    settled_after_s: float = 10.0  # a run this long (and at least startsecs) resets the backoff

    @property
    def settled_s(self) -> float:
        """How long a process must run before its next crash gets the base delay again."""
        return max(self.startsecs, self.settled_after_s)


@dataclass(frozen=True, slots=True)
class Exit:
    """What ``Process.poll`` saw: an exit and what the process does next."""

    process: str
    pid: int
    code: int
    ran_s: float
    state: ProcessState  # the state it moved to
    delay_s: float = 0.0  # with BACKOFF: when the next spawn is due

    @property
    def reason(self) -> str:
        return describe_exit(self.code)


class Process:
    """One slot of a pool: the current child, if any, and its state-machine bookkeeping."""

    def __init__(self, name: str, pool: str, *, generation: int = 0) -> None:
        self.name = name
        self.pool = pool
        self.generation = generation  # the pool configuration it was spawned with
        self.state = ProcessState.EXITED
        self.child: Child | None = None
        self.pid: int | None = None
        self.spawned_mono = 0.0
        self.started_at: float | None = None  # wall clock, for status
        self.restarts = 0  # spawns after the first
        self.spawns = 0
        self.boot_failures = 0  # in a row; reset once a spawn reaches RUNNING
        self.crashes = 0  # in a row; reset by a clean exit
        self.retry_at: float | None = None  # BACKOFF: monotonic time of the next spawn
        self.stop_deadline: float | None = None  # STOPPING: monotonic time of the SIGKILL
        self.stop_reason: str | None = None
        self.killed = False
        self.retiring = False  # leaves the pool once it is no longer alive
        self.last_exit: Exit | None = None
        self.fatal_reason: str | None = None

    def __repr__(self) -> str:
        return f"<Process {self.name} {self.state.value} pid={self.pid}>"

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    def _move(self, new: ProcessState) -> None:
        self.state = transition(self.state, new)

    # ------------------------------------------------------------------ starting
    def spawn(
        self, spawner: Spawner, command: Command, clock: Clock, generation: int, policy: RestartPolicy
    ) -> Exit | None:
        """EXITED/BACKOFF/FATAL -> STARTING. A spawn that cannot even start counts as a boot failure
        (returned as an ``Exit`` with code 127, the shell's "command not found")."""
        self._move(ProcessState.STARTING)
        self.generation = generation
        self.retry_at = None
        self.stop_deadline = None
        self.stop_reason = None
        self.killed = False
        self.spawned_mono = clock.monotonic()
        self.started_at = clock.time()
        if self.spawns:
            self.restarts += 1
        self.spawns += 1
        try:
            self.child = spawner.spawn(self.name, self.pool, command)
        except OSError:
            return self._exited(clock.monotonic(), 127, policy)
        self.pid = self.child.pid
        return None

    def due(self, now: float) -> bool:
        """In BACKOFF and its delay is over."""
        return self.state is ProcessState.BACKOFF and self.retry_at is not None and now >= self.retry_at

    # ------------------------------------------------------------------ watching
    def poll(self, now: float, policy: RestartPolicy) -> Exit | None:
        """Reap the child if it exited and move to the state its exit calls for."""
        if self.child is None:
            return None
        code = self.child.poll()
        if code is None:
            if self.state is ProcessState.STARTING and now - self.spawned_mono >= policy.startsecs:
                # Alive long enough: it booted. Boot failures no longer count against it.
                self._move(ProcessState.RUNNING)
                self.boot_failures = 0
            return None
        # Exits are read before the promotion above: a process found dead in STARTING did
        # not stay alive for startsecs, even if we only notice now.
        return self._exited(now, code, policy)

    def _exited(self, now: float, code: int, policy: RestartPolicy) -> Exit:
        backoff_s, backoff_max_s = policy.backoff_s, policy.backoff_max_s
        ran_s = max(0.0, now - self.spawned_mono)
        pid = self.pid or 0
        self.child = None
        self.pid = None
        if ran_s >= policy.settled_s:
            self.crashes = 0  # it ran long enough: this crash is not part of a loop
        killed_from_outside = code < 0 and -code in EXTERNAL_SIGNALS
        if self.state is ProcessState.STOPPING:
            # We asked it to stop: whatever the code, this is the end we wanted.
            self._move(ProcessState.EXITED)
        elif code == EXIT_BOOT_FAILURE:
            # The worker says it can never boot as configured: retrying is pointless.
            self._move(ProcessState.FATAL)
            self.fatal_reason = "boot_failure (exit 3)"
        elif code == EXIT_BACKEND_LOST:
            # Redis (or the database file) is down: the worker already retried for its grace.
            # Keep retrying with a growing delay for as long as it lasts; FATAL would need a
            # person to bring the pool back after an outage that fixes itself.
            self.crashes += 1
            self._backoff(now, backoff_s * 2 ** (self.crashes - 1), backoff_max_s)
        elif self.state is ProcessState.STARTING and code not in RECYCLE_CODES and not killed_from_outside:
            # Died before startsecs: a boot failure. Retry with a growing delay, up to startretries.
            self.boot_failures += 1
            if self.boot_failures > policy.startretries:
                self._move(ProcessState.FATAL)
                self.fatal_reason = f"{self.boot_failures} boot failures in a row, last {describe_exit(code)}"
            else:
                self._backoff(now, backoff_s * 2 ** (self.boot_failures - 1), backoff_max_s)
        elif code in RECYCLE_CODES:
            self.crashes = 0
            if self.state is ProcessState.STARTING:
                # A clean exit this early (max_jobs=1 and a quick job...) is no boot failure,
                # but respawning at once could spin: wait the shortest delay.
                self._backoff(now, backoff_s, backoff_max_s)
            else:
                # A recycle (max time, max jobs, restart, memory, job timeout): respawn now.
                self._move(ProcessState.EXITED)
        else:
            # A crash of a booted process: restart after a delay that doubles per crash in a row.
            self.crashes += 1
            self._backoff(now, backoff_s * 2 ** (self.crashes - 1), backoff_max_s)
        delay = max(0.0, (self.retry_at or now) - now)
        self.last_exit = Exit(self.name, pid, code, ran_s, self.state, delay)
        return self.last_exit

    def _backoff(self, now: float, delay_s: float, max_s: float) -> None:
        self._move(ProcessState.BACKOFF)
        self.retry_at = now + min(delay_s, max_s)

    # ------------------------------------------------------------------ stopping
    def stop(self, now: float, wait_s: float, reason: str) -> None:
        """Ask the process to finish its jobs and exit (SIGTERM); SIGKILL follows at ``wait_s``."""
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._move(ProcessState.STOPPING)
            self.stop_deadline = now + wait_s
            self.stop_reason = reason
            self._signal(signal.SIGTERM)
        elif self.state is ProcessState.BACKOFF:
            # Nothing runs: it is simply not restarted.
            self._move(ProcessState.EXITED)
            self.retry_at = None

    def kill_if_overdue(self, now: float) -> bool:
        """SIGKILL a STOPPING process past its deadline; the leases bring its jobs back."""
        overdue = self.stop_deadline is not None and now >= self.stop_deadline
        if self.state is ProcessState.STOPPING and not self.killed and overdue:
            self.killed = True
            self._signal(signal.SIGKILL)
            return True
        return False

    def hurry(self) -> None:
        """SIGKILL now (a second shutdown request)."""
        if self.state is ProcessState.STOPPING and not self.killed:
            self.killed = True
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.child is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone; the next poll reaps it
            self.child.send_signal(sig)

    # ------------------------------------------------------------------ operator
    def forgive(self) -> None:
        """FATAL -> EXITED with clean counters: an operator fixed something (reload, queue start)."""
        if self.state is ProcessState.FATAL:
            self._move(ProcessState.EXITED)
        self.boot_failures = 0
        self.crashes = 0
        self.fatal_reason = None

    def give_up(self, reason: str) -> None:
        """BACKOFF -> FATAL when the pool went FATAL while this one waited."""
        if self.state is ProcessState.BACKOFF:
            self._move(ProcessState.FATAL)
            self.retry_at = None
            self.fatal_reason = reason

    def snapshot(self, now_wall: float) -> ProcessHeartbeat:
        """What heartbeats and ``status`` show of this process."""
        last = self.last_exit
        return ProcessHeartbeat(
            name=self.name,
            state=self.state.value,
            pid=self.pid,
            started=self.started_at if self.alive else None,
            uptime_s=round(now_wall - self.started_at, 1) if self.alive and self.started_at else None,
            restarts=self.restarts,
            generation=self.generation,
            last_exit=None if last is None else LastExit(last.code, last.reason),
            fatal_reason=self.fatal_reason,
        )
