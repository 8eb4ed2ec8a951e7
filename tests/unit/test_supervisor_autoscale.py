"""balance = "auto": the decisions, on a fake clock."""

from __future__ import annotations

from docmill.supervisor.autoscale import (
    DEFAULT_RUNTIME_S,
    AutoScaler,
    QueueLoad,
    desired_processes,
    estimated_wait_s,
)
from docmill.supervisor.config import PoolConfig


def pool(**overrides: object) -> PoolConfig:
    values: dict[str, object] = {
        "balance": "auto",
        "min_processes": 1,
        "max_processes": 8,
        "max_shift": 1,
        "cooldown_s": 3.0,
        "target_wait_s": 10.0,
        "concurrency": 1,
    }
    values.update(overrides)
    return PoolConfig(name="p", queues=("a", "b"), **values)  # type: ignore[arg-type]


def loads(ready_a: int, ready_b: int = 0, runtime_s: float | None = 2.0) -> list[QueueLoad]:
    return [QueueLoad("a", ready_a, runtime_s), QueueLoad("b", ready_b, runtime_s)]


def test_wait_is_ready_jobs_times_runtime_over_processes_and_concurrency() -> None:
    assert estimated_wait_s(loads(10, 5, 2.0), processes=3, concurrency=2) == 5.0
    assert estimated_wait_s(loads(0), processes=3, concurrency=2) == 0.0
    assert estimated_wait_s([QueueLoad("a", 4, None)], 1, 1) == 4 * DEFAULT_RUNTIME_S


def test_desired_is_the_fewest_processes_that_meet_the_target_wait_within_bounds() -> None:
    config = pool()
    assert desired_processes(loads(0), config) == 1  # never below min_processes
    assert desired_processes(loads(5), config) == 1  # 10 s of work: one process meets 10 s
    assert desired_processes(loads(6), config) == 2  # 12 s
    assert desired_processes(loads(20, 10), config) == 6
    assert desired_processes(loads(1000), config) == 8  # never above max_processes
    assert desired_processes(loads(20, 10), pool(concurrency=3)) == 2


def test_it_starts_at_min_processes_and_steps_up_by_max_shift_once_per_cooldown() -> None:
    config = pool(min_processes=2, max_shift=2)
    scaler = AutoScaler(config)
    assert scaler.target == 2
    now = 100.0
    targets = []
    for _ in range(8):
        decision = scaler.decide(now, loads(1000), config)
        targets.append((decision.target, decision.reason))
        now += 1.5
    assert targets == [
        (4, "up"),
        (4, "cooldown"),
        (6, "up"),
        (6, "cooldown"),
        (8, "up"),
        (8, "steady"),
        (8, "steady"),
        (8, "steady"),
    ]


def test_it_steps_down_to_min_processes_when_the_queues_empty() -> None:
    config = pool(max_shift=3)
    scaler = AutoScaler(config)
    now = 0.0
    for _ in range(10):
        scaler.decide(now, loads(1000), config)
        now += 3.0
    assert scaler.target == 8
    seen = []
    for _ in range(5):
        seen.append(scaler.decide(now, loads(0), config).target)
        now += 3.0
    assert seen == [5, 2, 1, 1, 1]


def test_a_change_inside_the_cooldown_waits_for_it() -> None:
    config = pool(cooldown_s=10.0)
    scaler = AutoScaler(config)
    assert scaler.decide(0.0, loads(100), config).target == 2
    assert scaler.decide(9.9, loads(100), config).reason == "cooldown"
    assert scaler.decide(9.9, loads(0), config).reason == "cooldown"
    assert scaler.decide(10.0, loads(100), config).target == 3


def test_new_bounds_after_a_reload_apply_at_once() -> None:
    config = pool()
    scaler = AutoScaler(config)
    now = 0.0
    for _ in range(5):
        scaler.decide(now, loads(1000), config)
        now += 3.0
    assert scaler.target == 6
    smaller = pool(max_processes=3)
    assert scaler.decide(now, loads(1000), smaller).target == 3
    assert scaler.decide(now + 100, loads(0), pool(min_processes=4)).target == 4
