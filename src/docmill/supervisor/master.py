"""The master process on one host (``docmill supervise``, as Laravel Horizon's master).

Signal handlers only record the signal and wake the loop; the loop acts
(gunicorn's arbiter). What each signal means:

    SIGTERM, SIGINT   graceful shutdown: SIGTERM every worker (it stops taking jobs and
                      finishes the running ones), SIGKILL those still running after the
                      pool's ``stop_wait_s`` (the leases bring their jobs back), exit.
                      A second SIGTERM/SIGINT kills at once.
    SIGHUP            reload the configuration and roll every pool onto it, one worker
                      at a time per pool; clears FATAL pools.
    SIGUSR2           pause: stop every worker gracefully and hold zero.
    SIGCONT           continue after a pause.

The loop, phase by phase, every ``tick_s``:

1. act on the signals recorded since the last turn;
2. notice a dead parent (``os.getppid()`` changed): shut down, nobody supervises us;
3. every ``control_poll_s``: read the cluster-wide "workers stopped" flag
   (``docmill queue stop``/``start``) and hold or release the pools; feed the
   queues' numbers to the autoscaler of each ``balance = "auto"`` pool;
4. tick every pool (reap, restart, backoff, FATAL, scale, roll);
5. every ``heartbeat_s``: write the master's heartbeat (kind ``master``) with each
   pool's processes, so ``docmill queue status`` on any host sees every host.

A backend that fails does not stop supervision: the workers keep their own
connection, and the master retries on its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable

from docmill.queue import Backend, backend_from_url, mask_url
from docmill.queue.events import EventLog
from docmill.supervisor.autoscale import AutoScaler, QueueLoad
from docmill.supervisor.command import worker_command
from docmill.supervisor.config import PoolConfig, SupervisorConfig
from docmill.supervisor.control import BackendControlStore, ControlStore, workers_stopped
from docmill.supervisor.errors import SupervisorConfigError
from docmill.supervisor.heartbeat import MASTER_KIND, MasterHeartbeat
from docmill.supervisor.pool import Pool
from docmill.supervisor.process import Clock, Spawner, SystemClock
from docmill.supervisor.states import MasterState

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2, signal.SIGCONT)
METRIC_MINUTES = 5  # the window the autoscaler averages job runtimes over


class Master:
    def __init__(
        self,
        config: SupervisorConfig,
        *,
        spawner: Spawner,
        log: EventLog,
        reload: Callable[[], SupervisorConfig] | None = None,
        backend_factory: Callable[[str], Backend] = backend_from_url,
        control: Callable[[Backend], ControlStore] = BackendControlStore,
        clock: Clock | None = None,
        getppid: Callable[[], int] = os.getppid,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.config = config
        self.spawner = spawner
        self.log = log
        self.reload_config = reload
        self.backend_factory = backend_factory
        self.control_factory = control
        self.clock = clock or SystemClock()
        self.getppid = getppid
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self.member = f"{self.host}:{self.pid}"
        self.started_at = self.clock.time()
        self.pools: dict[str, Pool] = {}
        self.scalers: dict[str, AutoScaler] = {}
        self.backend: Backend | None = None
        self.control: ControlStore | None = None
        self.paused = False  # SIGUSR2 on this host
        self.stopped = False  # the cluster-wide flag
        self.shutting_down = False
        self._signals: list[int] = []
        self._wake = asyncio.Event()
        self._parent = 0
        self._next_control = 0.0
        self._next_heartbeat = 0.0
        self._backend_ok = True
        self._connected = False
        for pool_config in config.pools.values():
            self._add_pool(pool_config)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> MasterState:
        if self.shutting_down:
            return MasterState.SHUTTING_DOWN
        if self.stopped:
            return MasterState.STOPPED
        if self.paused:
            return MasterState.PAUSED
        return MasterState.RUNNING

    def _add_pool(self, pool_config: PoolConfig) -> None:
        pool = Pool(
            pool_config,
            command=lambda pc: worker_command(self.config, pc),
            spawner=self.spawner,
            clock=self.clock,
            log=self.log,
        )
        self.pools[pool.name] = pool
        self.scalers[pool.name] = AutoScaler(pool_config)

    def _apply_holds(self) -> None:
        """Hold every pool at zero while shutting down, stopped or paused; release otherwise."""
        reason = {
            MasterState.SHUTTING_DOWN: "shutdown",
            MasterState.STOPPED: "stopped",
            MasterState.PAUSED: "paused",
        }.get(self.state)
        for name, pool in self.pools.items():
            removed = name not in self.config.pools
            pool.hold(reason is not None or removed, "removed" if removed else reason or "")

    # ------------------------------------------------------------------ signals
    def record_signal(self, sig: int) -> None:
        """The signal handler: record and wake the loop, nothing else."""
        self._signals.append(sig)
        self._wake.set()

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            name = signal.Signals(sig).name
            self.log.info("master.signal", signal=name)
            if sig in (signal.SIGTERM, signal.SIGINT):
                self.shutdown(name)
            elif sig == signal.SIGHUP:
                self.reload()
            elif sig == signal.SIGUSR2:
                self.pause()
            elif sig == signal.SIGCONT:
                self.resume()

    def shutdown(self, why: str) -> None:
        if self.shutting_down:
            self.log.warning("master.hurry", why=why)
            for pool in self.pools.values():
                pool.hurry()
            return
        self.shutting_down = True
        self.log.info("master.shutting_down", why=why, workers=self._alive_count())
        self._apply_holds()

    def pause(self) -> None:
        if not self.paused and not self.shutting_down:
            self.paused = True
            self.log.info("master.paused", workers=self._alive_count())
            self._apply_holds()

    def resume(self) -> None:
        if self.paused and not self.shutting_down:
            self.paused = False
            self.log.info("master.continued", stopped=self.stopped)
            self._apply_holds()

    def reload(self) -> None:
        if self.shutting_down or self.reload_config is None:
            return
        try:
            new = self.reload_config()
        except SupervisorConfigError as exc:
            self.log.error("master.reload_failed", error=str(exc), kept="the running configuration")
            return
        old = self.config
        self.config = new
        for name, pool_config in new.pools.items():
            if name in self.pools:
                self.pools[name].reconfigure(pool_config)
            else:
                self._add_pool(pool_config)
        self._apply_holds()
        self.log.info(
            "master.reloaded",
            pools=",".join(new.pools),
            removed=",".join(sorted(set(old.pools) - set(new.pools))) or "-",
            connection_changed=new.connection != old.connection,
        )

    # ------------------------------------------------------------------ the loop
    async def run(self, *, install_signals: bool = True) -> int:
        """Supervise until shut down; return the exit code (0)."""
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self.record_signal, sig)
        self._parent = self.getppid()
        self.log.info(
            "master.started",
            host=self.host,
            pid=self.pid,
            connection=mask_url(self.config.connection),
            pools=",".join(f"{p.name}={p.wanted}" for p in self.pools.values()),
            config_file=str(self.config.config_file or "-"),
        )
        await self._connect()
        try:
            while True:
                self._wake.clear()
                self._handle_signals()  # 1
                self._check_parent()  # 2
                now = self.clock.monotonic()
                if now >= self._next_control and not self.shutting_down:  # 3
                    self._next_control = now + self.config.control_poll_s
                    await self._poll_control()
                    await self._autoscale(now)
                for pool in self.pools.values():  # 4
                    pool.tick()
                self._forget_removed_pools()
                if now >= self._next_heartbeat:  # 5
                    self._next_heartbeat = now + self.config.heartbeat_s
                    await self._heartbeat()
                if self.shutting_down and all(pool.drained for pool in self.pools.values()):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.tick_s)
        finally:
            if install_signals:
                for sig in HANDLED_SIGNALS:
                    loop.remove_signal_handler(sig)
            await self._disconnect()
        self.log.info("master.stopped", host=self.host, pid=self.pid)
        return 0

    def _check_parent(self) -> None:
        if self.shutting_down or self._parent in (0, 1):
            return
        current = self.getppid()
        if current != self._parent:
            self.log.warning("master.parent_died", parent=self._parent, now=current)
            self.shutdown("parent_died")

    def _forget_removed_pools(self) -> None:
        for name in [n for n, p in self.pools.items() if n not in self.config.pools and p.drained]:
            del self.pools[name]
            del self.scalers[name]

    def _alive_count(self) -> int:
        return sum(len(pool.alive()) for pool in self.pools.values())

    # ------------------------------------------------------------------ backend
    async def _connect(self) -> bool:
        """Connect (again) if not connected; False while the backend cannot be reached."""
        if self._connected:
            return True
        try:
            if self.backend is None:
                self.backend = self.backend_factory(self.config.connection)
                self.control = self.control_factory(self.backend)
            await self.backend.connect()
        except Exception as exc:
            self._backend_failed(exc, "connect")
            return False
        self._connected = True
        return True

    async def _disconnect(self) -> None:
        if self.backend is None or not self._connected:
            return
        try:
            await self.backend.delete_heartbeat(MASTER_KIND, self.member)
        except Exception as exc:
            self._backend_failed(exc, "heartbeat")
        try:
            await self.backend.close()
        except Exception as exc:
            self._backend_failed(exc, "close")

    def _backend_failed(self, exc: BaseException, during: str) -> None:
        if self._backend_ok:
            self.log.warning("master.backend_error", during=during, error=f"{type(exc).__name__}: {exc}")
        self._backend_ok = False

    def _backend_fine(self) -> None:
        if not self._backend_ok:
            self.log.info("master.backend_recovered")
        self._backend_ok = True

    async def _poll_control(self) -> None:
        if not await self._connect() or self.control is None:
            return
        try:
            flag = await workers_stopped(self.control)
        except Exception as exc:
            self._backend_failed(exc, "control")
            return
        self._backend_fine()
        stopped = flag is not None
        if stopped == self.stopped:
            return
        self.stopped = stopped
        if stopped:
            self.log.info("master.workers_stopped", by=flag.get("by") if flag else None)
        else:
            self.log.info("master.workers_started")
            for pool in self.pools.values():
                pool.forgive()
        self._apply_holds()

    async def _autoscale(self, now: float) -> None:
        if not self._connected:
            return
        for name, pool in self.pools.items():
            if pool.config.balance != "auto" or name not in self.config.pools:
                continue
            try:
                loads = [await self._load(queue) for queue in pool.config.queues]
            except Exception as exc:
                self._backend_failed(exc, "autoscale")
                return
            decision = self.scalers[name].decide(now, loads, pool.config)
            if decision.target != pool.target:
                self.log.info(
                    "pool.scaled",
                    pool=name,
                    processes=decision.target,
                    was=pool.target,
                    desired=decision.desired,
                    wait_s=round(decision.wait_s, 1),
                )
                pool.set_target(decision.target)

    async def _load(self, queue: str) -> QueueLoad:
        assert self.backend is not None
        stats = await self.backend.stats(queue)
        metrics = await self.backend.metrics(queue, minutes=METRIC_MINUTES)
        completed = sum(m.completed for m in metrics)
        runtime = sum(m.runtime_s_total for m in metrics)
        return QueueLoad(queue, stats.pending, runtime / completed if completed else None)

    async def _heartbeat(self) -> None:
        if not self._connected or self.backend is None:
            return
        try:
            await self.backend.put_heartbeat(
                MASTER_KIND, self.member, self.snapshot().to_dict(), self.config.heartbeat_ttl_s
            )
        except Exception as exc:
            self._backend_failed(exc, "heartbeat")
            return
        self._backend_fine()

    def snapshot(self) -> MasterHeartbeat:
        """The master's heartbeat: who it is, what it does, and every process it holds."""
        now = self.clock.time()
        return MasterHeartbeat(
            member=self.member,
            host=self.host,
            pid=self.pid,
            started=self.started_at,
            at=now,
            state=self.state.value,
            connection=mask_url(self.config.connection),
            pools=tuple(pool.snapshot(now) for pool in self.pools.values()),
        )
