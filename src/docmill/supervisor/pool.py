"""A pool: identical worker processes for one set of queues, held at a target count.

``Pool.tick(now)`` is the whole policy, called by the master's loop:

1. reap every process that exited and move it to the state its exit calls for;
2. if one went FATAL, the pool is FATAL: processes waiting in BACKOFF give up too,
   nothing more is started (running ones keep running) until an operator acts;
3. SIGKILL processes that overran ``stop_wait_s`` after their SIGTERM;
4. drop retired processes that are gone; retire the newest ones above ``target``
   (SIGTERM, never SIGKILL first);
5. spawn processes for empty slots, and BACKOFF slots whose delay is over;
6. rolling restart: if some process runs an older configuration and nothing in
   the pool is starting, stopping or backing off, SIGTERM one of them (its slot
   respawns with the new configuration on a later tick).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docmill.queue.events import EventLog
from docmill.supervisor.config import PoolConfig
from docmill.supervisor.heartbeat import PoolHeartbeat
from docmill.supervisor.process import RECYCLE_CODES, Clock, Command, Exit, Process, RestartPolicy, Spawner
from docmill.supervisor.states import TRANSIENT, PoolState, ProcessState

# After stop_wait_s the worker hands back the jobs still running; SIGKILL waits this much longer.
KILL_MARGIN_S = 5.0


def restart_policy(config: PoolConfig) -> RestartPolicy:
    return RestartPolicy(
        startsecs=config.startsecs,
        startretries=config.startretries,
        backoff_s=config.restart_backoff_s,
        backoff_max_s=config.restart_backoff_max_s,
    )


class Pool:
    def __init__(
        self,
        config: PoolConfig,
        *,
        command: Callable[[PoolConfig], Command],
        spawner: Spawner,
        clock: Clock,
        log: EventLog,
        target: int | None = None,
    ) -> None:
        self.config = config
        self.command = command
        self.spawner = spawner
        self.clock = clock
        self.log = log
        self.generation = 0
        self.target = config.floor if config.balance == "auto" else config.processes
        if target is not None:
            self.target = target
        self.held = False  # paused, stopped or shutting down: hold zero processes
        self.hold_reason = "paused"
        self.fatal_reason: str | None = None
        self.processes: list[Process] = []

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> PoolState:
        if self.fatal_reason is not None:
            return PoolState.FATAL
        if self.held:
            return PoolState.PAUSED
        return PoolState.RUNNING

    @property
    def wanted(self) -> int:
        """How many processes the pool should hold right now."""
        return 0 if self.held else self.target

    @property
    def members(self) -> list[Process]:
        """Processes that hold a slot (not on their way out)."""
        return [p for p in self.processes if not p.retiring]

    def alive(self) -> list[Process]:
        return [p for p in self.processes if p.alive]

    @property
    def drained(self) -> bool:
        """No process of this pool runs."""
        return not self.alive()

    # ------------------------------------------------------------------ operator
    def set_target(self, target: int) -> None:
        self.target = max(0, target)

    def hold(self, held: bool, reason: str = "paused") -> None:
        """Hold zero processes (SIGTERM each, SIGKILL after ``stop_wait_s``), or stop holding."""
        self.held = held
        self.hold_reason = reason

    def reconfigure(self, config: PoolConfig) -> None:
        """Take a new configuration and roll every process onto it, one at a time."""
        if config.balance == "off":
            self.target = config.processes
        else:
            self.target = min(max(self.target, config.floor), config.ceiling)
        self.config = config
        self.generation += 1
        self.forgive()

    def forgive(self) -> None:
        """Clear FATAL: an operator changed something, so every slot gets a fresh chance."""
        if self.fatal_reason is not None:
            self.log.info("pool.forgiven", pool=self.name, was=self.fatal_reason)
        self.fatal_reason = None
        for process in self.processes:
            process.forgive()

    def hurry(self) -> None:
        for process in self.processes:
            process.hurry()

    # ------------------------------------------------------------------ the loop
    def tick(self) -> list[Exit]:
        now = self.clock.monotonic()
        policy = restart_policy(self.config)
        exits: list[Exit] = []

        # 1. reap
        for process in self.processes:
            exit_ = process.poll(now, policy)
            if exit_ is not None:
                exits.append(exit_)
                self._log_exit(process, exit_)

        # 2. FATAL spreads to the pool
        fatal = next((p for p in self.processes if p.state is ProcessState.FATAL and not p.retiring), None)
        if fatal is not None and self.fatal_reason is None:
            self.fatal_reason = f"{fatal.name}: {fatal.fatal_reason}"
            self.log.error("pool.fatal", pool=self.name, reason=self.fatal_reason)
            for process in self.processes:
                process.give_up(f"pool {self.name} is fatal")

        # 3. overdue stops
        for process in self.processes:
            if process.kill_if_overdue(now):
                self.log.warning(
                    "process.killed",
                    pool=self.name,
                    process=process.name,
                    pid=process.pid,
                    after_s=self.config.stop_wait_s + KILL_MARGIN_S,
                )

        # 4. retire
        self.processes = [p for p in self.processes if not (p.retiring and p.state in _AT_REST)]
        members = self.members
        surplus = len(members) - self.wanted
        if surplus > 0:
            # The newest slots go first; those not running leave at once.
            for process in sorted(members, key=_retire_order)[:surplus]:
                process.retiring = True
                self._stop(process, now, self.hold_reason if self.held else "scale_down")
            self.processes = [p for p in self.processes if not (p.retiring and p.state in _AT_REST)]

        # 5. fill
        if self.fatal_reason is None:
            while len(self.members) < self.wanted:
                self.processes.append(Process(self._free_name(), self.name, generation=self.generation))
            for process in self.members:
                if process.state is ProcessState.EXITED or process.due(now):
                    self._spawn(process)
        # 6. rolling restart onto a newer configuration
        if not any(p.state in TRANSIENT for p in self.processes):
            stale = [
                p for p in self.members if p.state is ProcessState.RUNNING and p.generation < self.generation
            ]
            if stale:
                self._stop(stale[0], now, "reload")

        return exits

    # ------------------------------------------------------------------ helpers
    def _spawn(self, process: Process) -> None:
        command = self.command(self.config)
        policy = restart_policy(self.config)
        failed = process.spawn(self.spawner, command, self.clock, self.generation, policy)
        if failed is not None:
            self.log.error(
                "process.spawn_failed",
                pool=self.name,
                process=process.name,
                argv=" ".join(command.argv),
                next=failed.state.value,
            )
            return
        self.log.info(
            "process.spawned",
            pool=self.name,
            process=process.name,
            pid=process.pid,
            restarts=process.restarts,
            generation=process.generation,
        )

    def _stop(self, process: Process, now: float, reason: str) -> None:
        if process.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self.log.info(
                "process.stopping", pool=self.name, process=process.name, pid=process.pid, reason=reason
            )
        process.stop(now, self.config.stop_wait_s + KILL_MARGIN_S, reason)

    def _free_name(self) -> str:
        used = {p.name for p in self.processes}
        n = 1
        while f"{self.name}.{n}" in used:
            n += 1
        return f"{self.name}.{n}"

    def _log_exit(self, process: Process, exit_: Exit) -> None:
        fields: dict[str, Any] = {
            "pool": self.name,
            "process": process.name,
            "pid": exit_.pid,
            "code": exit_.code,
            "reason": exit_.reason,
            "ran_s": round(exit_.ran_s, 1),
            "next": exit_.state.value,
        }
        if exit_.state is ProcessState.BACKOFF:
            fields["retry_in_s"] = round(exit_.delay_s, 2)
            fields["boot_failures"] = process.boot_failures
        if exit_.state is ProcessState.FATAL:
            fields["fatal_reason"] = process.fatal_reason
        expected = process.stop_reason is not None or exit_.code in RECYCLE_CODES
        (self.log.info if expected else self.log.warning)("process.exited", **fields)

    def snapshot(self, now_wall: float) -> PoolHeartbeat:
        return PoolHeartbeat(
            name=self.name,
            state=self.state.value,
            queues=tuple(self.config.queues),
            balance=self.config.balance,
            target=self.wanted,
            fatal_reason=self.fatal_reason,
            processes=tuple(p.snapshot(now_wall) for p in self.processes),
        )


_AT_REST = frozenset({ProcessState.EXITED, ProcessState.BACKOFF, ProcessState.FATAL})


def _retire_order(process: Process) -> tuple[int, int]:
    """Not-running slots first, then the highest-numbered."""
    resting = 0 if process.state in _AT_REST else 1
    number = int(process.name.rsplit(".", 1)[-1])
    return (resting, -number)
