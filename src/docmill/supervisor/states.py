"""The life of one supervised worker process, as an explicit state machine.

No imports from the rest of docmill: this module is the single place that says
which moves are legal. ``process.py`` decides *when* to move; ``transition``
refuses any move not listed here::

    EXITED   -> STARTING                      spawn
    STARTING -> RUNNING                       alive for ``startsecs``: it booted
    STARTING -> BACKOFF | FATAL               died early (FATAL: exit 3, or retries used up)
    RUNNING  -> EXITED                        exited on its own, cleanly (0, 12, 13, 15): respawn now
    RUNNING  -> BACKOFF | FATAL               crashed (FATAL: exit 3)
    BACKOFF  -> STARTING                      the delay is over
    STARTING | RUNNING -> STOPPING            SIGTERM sent (shutdown, pause, scale down, reload)
    STOPPING -> EXITED                        it exited (or was killed at ``stop_wait_s``)
    BACKOFF  -> EXITED | FATAL                stopped while waiting / its pool went FATAL
    FATAL    -> STARTING | EXITED             an operator acted / the slot was removed

``EXITED`` is also where every process starts. A process is *alive* (has an
operating-system pid) only in ``STARTING``, ``RUNNING`` and ``STOPPING``.
"""

from __future__ import annotations

from enum import Enum


class ProcessState(Enum):
    STARTING = "starting"  # spawned, not yet alive for ``startsecs``
    RUNNING = "running"  # alive for at least ``startsecs``: it booted
    BACKOFF = "backoff"  # died; waiting a growing delay before the next spawn
    STOPPING = "stopping"  # asked to stop (SIGTERM sent); waiting for it to exit
    EXITED = "exited"  # not running and nothing scheduled (initial state, or after a stop)
    FATAL = "fatal"  # gave up: it cannot boot as configured; only an operator restarts it


ALIVE = frozenset({ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING})
# States in which the process is in the middle of a change; a rolling restart waits for none.
TRANSIENT = frozenset({ProcessState.STARTING, ProcessState.STOPPING, ProcessState.BACKOFF})


class IllegalTransition(RuntimeError):
    """Raised by ``transition`` for a move the state machine does not allow (a programming error)."""


_ALLOWED: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.EXITED: frozenset(
        {
            # Spawned for the first time, or again after a clean exit (a recycle: 0, 12, 13, 15).
            ProcessState.STARTING,
        }
    ),
    ProcessState.STARTING: frozenset(
        {
            # Survived ``startsecs``: it booted.
            ProcessState.RUNNING,
            # Died before ``startsecs``: a boot failure, retried after a delay.
            ProcessState.BACKOFF,
            # Exited with BOOT_FAILURE (3), or the last of ``startretries`` boot failures.
            ProcessState.FATAL,
            # Asked to stop (shutdown, pause, scale down) before it finished booting.
            ProcessState.STOPPING,
        }
    ),
    ProcessState.RUNNING: frozenset(
        {
            # Asked to stop: SIGTERM sent, running jobs may finish.
            ProcessState.STOPPING,
            # Exited on its own for a named reason that asks for a fresh process (0, 12, 13, 15).
            ProcessState.EXITED,
            # Crashed (killed by a signal, an unexpected code, backend lost): restart after a delay.
            ProcessState.BACKOFF,
            # Reported BOOT_FAILURE (3) late, e.g. the backend refused it during start-up.
            ProcessState.FATAL,
        }
    ),
    ProcessState.BACKOFF: frozenset(
        {
            # The delay is over: try again.
            ProcessState.STARTING,
            # Asked to stop while waiting: nothing to signal, it is simply not restarted.
            ProcessState.EXITED,
            # The whole pool went FATAL while this one waited.
            ProcessState.FATAL,
        }
    ),
    ProcessState.STOPPING: frozenset(
        {
            # It exited (gracefully, or after SIGKILL at ``stop_wait_s``).
            ProcessState.EXITED,
        }
    ),
    ProcessState.FATAL: frozenset(
        {
            # An operator asked again (SIGHUP reload, ``docmill queue start``): a fresh chance.
            ProcessState.STARTING,
            # Removed from the pool (scale down, reload without this slot): forget it.
            ProcessState.EXITED,
        }
    ),
}


def can_transition(current: ProcessState, new: ProcessState) -> bool:
    return new in _ALLOWED[current]


def transition(current: ProcessState, new: ProcessState) -> ProcessState:
    """Return ``new`` if the move from ``current`` is legal; raise ``IllegalTransition`` otherwise."""
    if not can_transition(current, new):
        raise IllegalTransition(f"a worker process cannot go from {current.value} to {new.value}")
    return new


class PoolState(Enum):
    """What a pool as a whole is doing; shown by ``docmill queue status``."""

    RUNNING = "running"  # holds its desired number of processes
    PAUSED = "paused"  # holds zero on purpose (SIGUSR2, or ``docmill queue stop``)
    FATAL = "fatal"  # a process could not boot; nothing more is started until an operator acts


class MasterState(Enum):
    """What the master process is doing; written into its heartbeat."""

    RUNNING = "running"
    PAUSED = "paused"  # SIGUSR2 on this host: zero workers until SIGCONT
    STOPPED = "stopped"  # ``docmill queue stop``: zero workers on every host until ``queue start``
    SHUTTING_DOWN = "shutting_down"  # SIGTERM/SIGINT: draining, then exit
