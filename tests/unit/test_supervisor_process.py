"""Crash handling of one process and of a pool, on a fake clock and a fake spawner (no forking)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import pytest

from docmill.queue.events import CapturedEventLog
from docmill.queue.stop import WorkerStopReason
from docmill.supervisor.config import PoolConfig
from docmill.supervisor.pool import KILL_MARGIN_S, Pool
from docmill.supervisor.process import Command, Process, RestartPolicy, describe_exit
from docmill.supervisor.states import PoolState, ProcessState

S = ProcessState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeChild:
    pid: int
    code: int | None = None
    signals: list[int] = field(default_factory=list)

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)


class FakeSpawner:
    def __init__(self) -> None:
        self.children: list[FakeChild] = []
        self.commands: list[Command] = []
        self.fail_with: OSError | None = None

    def spawn(self, name: str, pool: str, command: Command) -> FakeChild:
        if self.fail_with is not None:
            raise self.fail_with
        child = FakeChild(pid=100 + len(self.children))
        self.children.append(child)
        self.commands.append(command)
        return child

    def alive(self) -> list[FakeChild]:
        return [c for c in self.children if c.code is None]


POLICY = RestartPolicy(startsecs=1.0, startretries=3, backoff_s=1.0, backoff_max_s=5.0)


def started(clock: FakeClock, spawner: FakeSpawner) -> Process:
    process = Process("default.1", "default")
    process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
    return process


# ----------------------------------------------------------------------------- one process


def test_a_process_alive_for_startsecs_is_running() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    assert process.state is S.STARTING
    clock.advance(0.5)
    assert process.poll(clock.now, POLICY) is None
    assert process.state is S.STARTING
    clock.advance(0.5)
    process.poll(clock.now, POLICY)
    assert process.state is S.RUNNING


def test_boot_failures_back_off_with_a_growing_delay_then_go_fatal() -> None:
    # Given a worker that dies 0.1 s after every spawn
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    delays = []
    for _ in range(3):
        clock.advance(0.1)
        spawner.children[-1].code = 1
        exit_ = process.poll(clock.now, POLICY)
        assert exit_ is not None and exit_.state is S.BACKOFF
        delays.append(exit_.delay_s)
        # Then it is not respawned before its delay is over
        clock.advance(exit_.delay_s - 0.01)
        assert not process.due(clock.now)
        clock.advance(0.01)
        assert process.due(clock.now)
        process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
    assert delays == [1.0, 2.0, 4.0]
    # When it fails a fourth time in a row (startretries=3)
    clock.advance(0.1)
    spawner.children[-1].code = 1
    exit_ = process.poll(clock.now, POLICY)
    # Then it is FATAL and nothing is scheduled
    assert exit_ is not None and exit_.state is S.FATAL
    assert process.state is S.FATAL
    assert process.retry_at is None
    assert process.fatal_reason == "4 boot failures in a row, last exit 1"
    assert len(spawner.children) == 4


def test_a_backend_outage_at_boot_backs_off_without_ever_going_fatal() -> None:
    # Given workers that exit BACKEND_LOST (14) right after each spawn: Redis is down
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    delays = []
    for _ in range(POLICY.startretries + 3):
        clock.advance(0.1)
        spawner.children[-1].code = 14
        exit_ = process.poll(clock.now, POLICY)
        # Then each exit is a backoff, never FATAL, however long the outage lasts
        assert exit_ is not None and exit_.state is S.BACKOFF
        delays.append(exit_.delay_s)
        clock.advance(exit_.delay_s)
        process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert process.boot_failures == 0


def test_backoff_delay_is_capped() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    policy = RestartPolicy(startsecs=1.0, startretries=10, backoff_s=1.0, backoff_max_s=3.0)
    process = Process("p.1", "p")
    delays = []
    for _ in range(4):
        process.spawn(spawner, Command(("work",)), clock, 0, policy)
        spawner.children[-1].code = 1
        exit_ = process.poll(clock.now, policy)
        assert exit_ is not None
        delays.append(exit_.delay_s)
        clock.advance(exit_.delay_s)
    assert delays == [1.0, 2.0, 3.0, 3.0]


def test_exit_code_3_is_fatal_at_once_even_after_booting() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    clock.advance(0.2)
    spawner.children[-1].code = 3
    exit_ = process.poll(clock.now, POLICY)
    assert exit_ is not None and exit_.state is S.FATAL and exit_.reason == "boot_failure"

    process = started(clock, spawner)
    clock.advance(30)
    process.poll(clock.now, POLICY)
    spawner.children[-1].code = 3
    assert process.poll(clock.now, POLICY) is not None
    assert process.state is S.FATAL


@pytest.mark.parametrize(
    ("code", "reason"), [(0, "stopped"), (12, "memory"), (13, "job_timeout"), (15, "lease_lost")]
)
def test_a_recycle_exit_asks_for_an_immediate_respawn(code: int, reason: str) -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    clock.advance(10)
    process.poll(clock.now, POLICY)
    spawner.children[-1].code = code
    exit_ = process.poll(clock.now, POLICY)
    assert exit_ is not None and exit_.state is S.EXITED and exit_.delay_s == 0
    assert exit_.reason == reason


def test_every_exit_code_a_worker_gives_is_named_after_its_stop_reason() -> None:
    for reason in WorkerStopReason:
        if reason.exit_code != 0:  # 0 covers several reasons: "stopped"
            assert describe_exit(reason.exit_code) == reason.value


def test_crashes_of_a_booted_process_back_off_but_never_go_fatal() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = Process("p.1", "p")
    delays = []
    for _ in range(6):
        process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
        clock.advance(2)
        process.poll(clock.now, POLICY)
        spawner.children[-1].code = -signal.SIGKILL
        exit_ = process.poll(clock.now, POLICY)
        assert exit_ is not None and exit_.reason == "killed by SIGKILL"
        delays.append(exit_.delay_s)
        clock.advance(exit_.delay_s)
    assert process.state is S.BACKOFF
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert process.restarts == 5


def test_a_clean_exit_resets_the_crash_streak() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    clock.advance(2)
    process.poll(clock.now, POLICY)
    spawner.children[-1].code = 14
    process.poll(clock.now, POLICY)
    assert process.crashes == 1
    clock.advance(1)
    process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
    clock.advance(2)
    process.poll(clock.now, POLICY)
    spawner.children[-1].code = 0
    process.poll(clock.now, POLICY)
    assert process.crashes == 0


def test_stop_sends_sigterm_then_sigkill_only_after_the_wait() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    clock.advance(2)
    process.poll(clock.now, POLICY)
    process.stop(clock.now, 30.0, "shutdown")
    child = spawner.children[-1]
    assert process.state is S.STOPPING
    assert child.signals == [signal.SIGTERM]
    clock.advance(29.9)
    assert not process.kill_if_overdue(clock.now)
    clock.advance(0.1)
    assert process.kill_if_overdue(clock.now)
    assert child.signals == [signal.SIGTERM, signal.SIGKILL]
    assert not process.kill_if_overdue(clock.now)  # once
    child.code = -signal.SIGKILL
    exit_ = process.poll(clock.now, POLICY)
    assert exit_ is not None and exit_.state is S.EXITED


def test_a_stopped_process_exiting_with_3_is_not_fatal() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    process.stop(clock.now, 30.0, "shutdown")
    spawner.children[-1].code = 3
    process.poll(clock.now, POLICY)
    assert process.state is S.EXITED


def test_a_spawn_that_cannot_start_counts_as_a_boot_failure() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    spawner.fail_with = FileNotFoundError("docmill")
    process = Process("p.1", "p")
    exit_ = process.spawn(spawner, Command(("nope",)), clock, 0, POLICY)
    assert exit_ is not None and exit_.code == 127 and process.state is S.BACKOFF


# ----------------------------------------------------------------------------- pools


def make_pool(clock: FakeClock, spawner: FakeSpawner, **overrides: object) -> tuple[Pool, CapturedEventLog]:
    values: dict[str, object] = {
        "processes": 2,
        "startsecs": 1.0,
        "startretries": 2,
        "restart_backoff_s": 1.0,
        "restart_backoff_max_s": 8.0,
        "stop_wait_s": 10.0,
    }
    values.update(overrides)
    config = PoolConfig(name="default", queues=("default",), **values)  # type: ignore[arg-type]
    log = CapturedEventLog()
    pool = Pool(config, command=lambda c: Command(("work", c.name)), spawner=spawner, clock=clock, log=log)
    return pool, log


def boot(pool: Pool, clock: FakeClock) -> None:
    pool.tick()
    clock.advance(1.0)
    pool.tick()


def test_a_pool_holds_its_processes_and_restarts_a_killed_one_after_backoff() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, log = make_pool(clock, spawner)
    boot(pool, clock)
    assert [p.state for p in pool.processes] == [S.RUNNING, S.RUNNING]
    assert [p.name for p in pool.processes] == ["default.1", "default.2"]
    # When one worker is killed with SIGKILL
    spawner.children[0].code = -9
    pool.tick()
    assert pool.processes[0].state is S.BACKOFF
    assert len(spawner.alive()) == 1
    # Then it is respawned once its delay is over
    clock.advance(1.0)
    pool.tick()
    assert len(spawner.alive()) == 2
    assert pool.processes[0].restarts == 1
    exited = log.events("process.exited")
    assert exited[0]["reason"] == "killed by SIGKILL" and exited[0]["next"] == "backoff"


def test_a_recycled_process_is_replaced_within_the_same_tick() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner)
    boot(pool, clock)
    spawner.children[1].code = 12  # memory
    pool.tick()
    assert len(spawner.alive()) == 2
    assert pool.processes[1].state is S.STARTING


def test_a_pool_whose_workers_cannot_boot_goes_fatal_instead_of_looping() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, log = make_pool(clock, spawner, startretries=2)
    for _ in range(50):  # 50 s of a worker dying at once, every time
        pool.tick()
        for child in spawner.alive():
            child.code = 1
        clock.advance(1.0)
    pool.tick()
    assert pool.state is PoolState.FATAL
    assert all(p.state is S.FATAL for p in pool.processes)
    # startretries=2: at most 3 spawns for the process that went fatal; the other gave up with it
    assert len(spawner.children) <= 6
    assert len(log.events("pool.fatal")) == 1


def test_one_boot_failure_exit_code_makes_the_pool_fatal_and_stops_spawning() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner)
    pool.tick()
    spawner.children[0].code = 3
    spawner.children[1].code = 1
    pool.tick()
    assert pool.state is PoolState.FATAL
    spawned = len(spawner.children)
    for _ in range(20):
        clock.advance(1)
        pool.tick()
    assert len(spawner.children) == spawned
    # An operator's reload forgives it
    pool.reconfigure(pool.config)
    pool.tick()
    assert pool.state is PoolState.RUNNING
    assert len(spawner.alive()) == 2


def test_scaling_down_sigterms_the_newest_worker_and_never_sigkills_first() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner, processes=3)
    boot(pool, clock)
    pool.set_target(2)
    pool.tick()
    newest = spawner.children[2]
    assert newest.signals == [signal.SIGTERM]
    assert pool.processes[2].state is S.STOPPING and pool.processes[2].retiring
    clock.advance(9 + KILL_MARGIN_S)
    pool.tick()
    assert newest.signals == [signal.SIGTERM]
    newest.code = 0
    pool.tick()
    assert [p.name for p in pool.processes] == ["default.1", "default.2"]
    assert len(spawner.children) == 3  # not replaced


def test_a_worker_that_ignores_sigterm_is_killed_after_stop_wait() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, log = make_pool(clock, spawner, stop_wait_s=10.0)
    boot(pool, clock)
    pool.hold(True, "shutdown")
    pool.tick()
    assert all(c.signals == [signal.SIGTERM] for c in spawner.children)
    clock.advance(10 + KILL_MARGIN_S - 0.1)
    pool.tick()
    assert all(c.signals == [signal.SIGTERM] for c in spawner.children)
    clock.advance(0.1)
    pool.tick()
    assert all(c.signals == [signal.SIGTERM, signal.SIGKILL] for c in spawner.children)
    for child in spawner.children:
        child.code = -9
    pool.tick()
    assert pool.drained and pool.processes == []
    assert len(log.events("process.killed")) == 2


def test_hold_empties_the_pool_and_release_fills_it_again() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner)
    boot(pool, clock)
    pool.hold(True, "paused")
    pool.tick()
    for child in spawner.children:
        child.code = 0
    pool.tick()
    assert pool.processes == [] and pool.state is PoolState.PAUSED
    clock.advance(60)
    pool.tick()
    assert len(spawner.children) == 2  # nothing respawned while held
    pool.hold(False)
    pool.tick()
    assert len(spawner.alive()) == 2


def test_a_reload_rolls_one_worker_at_a_time_onto_the_new_configuration() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner, processes=3)
    boot(pool, clock)
    pool.reconfigure(PoolConfig(name="default", queues=("default", "low"), processes=3, stop_wait_s=10.0))
    stopped_at_once = []
    for _ in range(30):
        pool.tick()
        stopping = [p for p in pool.processes if p.state is S.STOPPING]
        stopped_at_once.append(len(stopping))
        for p in stopping:
            assert p.child is not None
            p.child.code = 0  # type: ignore[attr-defined]
        clock.advance(0.5)
    assert max(stopped_at_once) == 1
    assert all(p.generation == 1 and p.state is S.RUNNING for p in pool.processes)
    assert len(spawner.children) == 6
    assert spawner.commands[-1].argv == ("work", "default")
    # Never fewer than two of the three running during the roll
    assert len(spawner.alive()) == 3


# ----------------------------------------------------------------------------- when the backoff resets


def crash_after(process: Process, clock: FakeClock, spawner: FakeSpawner, ran_s: float, code: int) -> float:
    """Spawn ``process``, let it live ``ran_s`` (promoted as the master's ticks would), end it with
    ``code``; return the delay before its next spawn."""
    process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
    clock.advance(ran_s)
    spawner.children[-1].code = None
    process.poll(clock.now, POLICY)
    spawner.children[-1].code = code
    exit_ = process.poll(clock.now, POLICY)
    assert exit_ is not None
    clock.advance(exit_.delay_s)
    return exit_.delay_s


def test_a_process_that_ran_long_enough_gets_the_base_delay_on_its_next_crash() -> None:
    # Given a worker whose quick crashes doubled its delay to the cap
    clock, spawner = FakeClock(), FakeSpawner()
    process = Process("p.1", "p")
    quick = [crash_after(process, clock, spawner, 2, -signal.SIGKILL) for _ in range(4)]
    assert quick == [1.0, 2.0, 4.0, 5.0]
    # When it then runs for longer than the settled time and crashes
    delay = crash_after(process, clock, spawner, POLICY.settled_s + 17, -signal.SIGKILL)
    # Then it waits the base delay, not a doubled one
    assert delay == POLICY.backoff_s
    # And a quick crash after that doubles from the base again
    assert crash_after(process, clock, spawner, 2, -signal.SIGKILL) == 2.0


def test_a_backend_outage_after_a_long_run_restarts_after_the_base_delay() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = Process("p.1", "p")
    delays = [crash_after(process, clock, spawner, 31, 14) for _ in range(4)]
    assert delays == [1.0, 1.0, 1.0, 1.0]


def test_the_settled_time_is_never_shorter_than_startsecs() -> None:
    assert RestartPolicy(startsecs=40.0).settled_s == 40.0
    assert RestartPolicy(startsecs=0.5).settled_s == 10.0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_process_killed_from_outside_while_starting_is_no_boot_failure(sig: int) -> None:
    # Given a worker killed by a signal sent from outside in its first second, again and again
    clock, spawner = FakeClock(), FakeSpawner()
    process = Process("p.1", "p")
    states = []
    for _ in range(POLICY.startretries + 3):
        process.spawn(spawner, Command(("work",)), clock, 0, POLICY)
        clock.advance(0.2)
        spawner.children[-1].code = -sig
        exit_ = process.poll(clock.now, POLICY)
        assert exit_ is not None
        states.append(exit_.state)
        clock.advance(exit_.delay_s)
    # Then it is restarted with backoff every time and never counted as a boot failure
    assert states == [S.BACKOFF] * (POLICY.startretries + 3)
    assert process.boot_failures == 0


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT])
def test_a_process_that_crashes_on_its_own_fault_while_starting_is_a_boot_failure(sig: int) -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    process = started(clock, spawner)
    clock.advance(0.2)
    spawner.children[-1].code = -sig
    process.poll(clock.now, POLICY)
    assert process.boot_failures == 1


def test_four_kills_in_the_first_second_do_not_make_the_pool_fatal() -> None:
    clock, spawner = FakeClock(), FakeSpawner()
    pool, log = make_pool(clock, spawner, startretries=3)
    pool.tick()
    for _ in range(4):  # the same slot, killed 0.3 s after each spawn (an OOM killer, an operator)
        clock.advance(0.3)
        child = pool.processes[0].child
        assert isinstance(child, FakeChild)
        child.code = -signal.SIGKILL
        pool.tick()
        assert pool.processes[0].retry_at is not None
        clock.advance(pool.processes[0].retry_at - clock.now)
        pool.tick()
    assert pool.state is PoolState.RUNNING
    assert not log.events("pool.fatal")
    assert len(spawner.alive()) == 2


def test_a_pools_snapshot_is_its_typed_heartbeat() -> None:
    from docmill.supervisor.heartbeat import PoolHeartbeat

    clock, spawner = FakeClock(), FakeSpawner()
    pool, _ = make_pool(clock, spawner)
    boot(pool, clock)

    beat = pool.snapshot(clock.time())

    assert (beat.name, beat.state, beat.target, beat.queues) == ("default", "running", 2, ("default",))
    assert [(p.name, p.state, p.pid) for p in beat.processes] == [
        ("default.1", "running", spawner.children[0].pid),
        ("default.2", "running", spawner.children[1].pid),
    ]
    assert PoolHeartbeat.from_dict(beat.to_dict()) == beat
