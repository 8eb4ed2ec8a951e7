"""When a worker back from a backend outage may reserve again, on a fake clock."""

from __future__ import annotations

from docmill.queue.outage import RETRY_CAP_S, OutageGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_shorter_than_a_sixth_of_the_lease_lapses_nothing_and_pauses_nothing() -> None:
    clock = FakeClock()
    gate = OutageGate(lease_s=30, monotonic=clock)
    assert not gate.long_outage(down_since=clock.now - 4.9)
    gate.recovered(down_s=4.9)
    assert gate.wait_s() == 0.0


def test_after_a_long_outage_reserving_waits_until_every_worker_could_deliver() -> None:
    clock = FakeClock()
    gate = OutageGate(lease_s=30, monotonic=clock)
    assert gate.long_outage(down_since=clock.now - 5.0)
    gate.recovered(down_s=90.0)
    # Longer than the longest wait between two tries of any worker's acks and renewals
    assert gate.settle_s > RETRY_CAP_S and gate.settle_s > 30 / 9
    assert gate.wait_s() == gate.settle_s
    clock.now += gate.settle_s - 1
    assert gate.wait_s() == 1.0
    clock.now += 1
    assert gate.wait_s() == 0.0


def test_a_long_lease_settles_longer_than_its_renewals_retry() -> None:
    gate = OutageGate(lease_s=300, monotonic=FakeClock())
    assert gate.settle_s > 300 / 9


def test_no_outage_is_no_long_outage() -> None:
    assert not OutageGate(lease_s=30, monotonic=FakeClock()).long_outage(down_since=None)
