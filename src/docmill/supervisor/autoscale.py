"""How many processes a ``balance = "auto"`` pool should run (Horizon's ``balance=auto``).

Pure decisions, no I/O: the master reads the numbers from the backend and
passes them in with the time, so every rule here is tested with a fake clock.

* **Load.** For each of the pool's queues: ready jobs x average runtime (from the
  last minutes' metrics; ``DEFAULT_RUNTIME_S`` before any job finished). Their sum
  is the work waiting, in process-seconds.
* **Estimated wait** = work / (processes x concurrency): how long the last ready
  job waits with the processes running now.
* **Desired** = the fewest processes that bring the wait down to
  ``target_wait_s``, clamped to ``min_processes..max_processes``.
* **Steps.** The pool moves towards desired by at most ``max_shift`` per step,
  and at most one step per ``cooldown_s``; it starts at ``min_processes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from docmill.supervisor.config import PoolConfig

DEFAULT_RUNTIME_S = 1.0  # assumed per job until the metrics know better


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """One queue's numbers, as the backend's ``stats`` and ``metrics`` give them."""

    queue: str
    ready: int  # pending jobs that are due now
    avg_runtime_s: float | None  # None before any job finished recently


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    target: int  # the processes to run now
    desired: int  # where the pool is heading
    wait_s: float  # the estimated wait with ``processes`` before this decision
    reason: str  # "steady", "up", "down", "cooldown"


def work_s(loads: Sequence[QueueLoad]) -> float:
    """The waiting work in process-seconds."""
    return sum(load.ready * (load.avg_runtime_s or DEFAULT_RUNTIME_S) for load in loads)


def estimated_wait_s(loads: Sequence[QueueLoad], processes: int, concurrency: int) -> float:
    if not work_s(loads):
        return 0.0
    return work_s(loads) / (max(1, processes) * concurrency)


def desired_processes(loads: Sequence[QueueLoad], config: PoolConfig) -> int:
    needed = math.ceil(work_s(loads) / (config.concurrency * config.target_wait_s))
    return min(max(needed, config.floor), config.ceiling)


class AutoScaler:
    """Remembers one pool's current target and when it last changed."""

    def __init__(self, config: PoolConfig) -> None:
        self.target = config.floor
        self.changed_at: float | None = None

    def decide(self, now: float, loads: Sequence[QueueLoad], config: PoolConfig) -> ScaleDecision:
        """The target for ``now``; ``now`` is a monotonic clock reading."""
        wait = estimated_wait_s(loads, self.target, config.concurrency)
        # A reload may have moved the bounds: respect them at once.
        bounded = min(max(self.target, config.floor), config.ceiling)
        if bounded != self.target:
            self.target, self.changed_at = bounded, now
        desired = desired_processes(loads, config)
        if desired == self.target:
            return ScaleDecision(self.target, desired, wait, "steady")
        if self.changed_at is not None and now - self.changed_at < config.cooldown_s:
            return ScaleDecision(self.target, desired, wait, "cooldown")
        step = max(-config.max_shift, min(config.max_shift, desired - self.target))
        self.target += step
        self.changed_at = now
        return ScaleDecision(self.target, desired, wait, "up" if step > 0 else "down")
