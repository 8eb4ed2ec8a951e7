"""A private Redis stopped and started again under ``docmill supervise`` while jobs flow.

The outage outlasts everything a worker used to count on: its backend grace (after
which a worker exited 14 and dropped the acks it could not send), the connect grace of
the workers started meanwhile, and many times the jobs' lease. Every job must still run
exactly once: none lost, none run again because its ack was dropped or its lapsed
lease was reclaimed before its worker could deliver the ack.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_supervise import Cluster

from conftest import require_program, wait_for
from docmill.queue import Backend, Client, Dispatch, backend_from_url
from docmill.queue.backend import Completion, QueueStats

JOBS = 6000
# Far beyond the backend and connect graces below (2 s) and the lease (2 s), and beyond the
# ~27 s a worker stopping for BACKEND_LOST used to keep retrying its acks before dropping them.
OUTAGE_S = 40.0
GRACE_S = "2"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def queue_stats(backend: Backend) -> QueueStats:
    return await backend.stats("default")


class PrivateRedis:
    """A redis-server of this test's own, on its own port, with an append-only file."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "yes", "--dir", str(self.directory)]
        log = (self.directory / "redis.out").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _answers(self.port), 10, "the private redis-server to answer")

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits; clients see refused connections."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(require_program("redis-server", "Debian's redis-server"), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_redis_outage_longer_than_every_grace_loses_no_job_and_runs_none_twice(
    private_redis: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given workers that give up on an unreachable backend after 2 s (when they hold nothing)
    monkeypatch.setenv("DOCMILL_BACKEND_GRACE_S", GRACE_S)
    monkeypatch.setenv("DOCMILL_CONNECT_GRACE_S", GRACE_S)
    cluster = Cluster(tmp_path, private_redis.url)
    try:
        master = cluster.start("host-a", "[pools.default]\nprocesses = 2\nconcurrency = 8\n")
        wait_for(lambda: len(cluster.running_pids(master)) == 2, 15, "two workers")
        # And 6,000 short jobs flowing through them
        numbers = cluster.dispatch(JOBS, 0.01)
        wait_for(lambda: len(cluster.done()) >= JOBS // 5, 60, "a fifth of the jobs to finish")

        # When Redis stops for longer than every grace and lease, and comes back
        private_redis.stop()
        time.sleep(OUTAGE_S)
        private_redis.start()

        # Then every job completes, and each exactly once
        wait_for(lambda: len(cluster.done()) >= JOBS, 180, "every job to complete")
        # And the backend agrees: nothing left to run (a job whose ack was dropped would be
        # waiting or running again, and would soon finish a second time)
        wait_for(lambda: cluster.run(queue_stats).size == 0, 30, "the queue to be empty")
        time.sleep(3.0)
        assert cluster.run(queue_stats).size == 0
        counts = Counter(cluster.done())
        lost = [n for n in numbers if n not in counts]
        repeated = {n: c for n, c in counts.items() if c > 1}
        assert not lost, f"{len(lost)} jobs lost"
        assert not repeated, f"{len(repeated)} jobs ran more than once"
        assert master.poll() is None
    finally:
        cluster.stop_all()
        if os.environ.get("DOCMILL_KEEP_LOGS"):
            print((tmp_path / "host-a" / "storage" / "logs" / "default.log").read_text()[-5000:])


def test_a_restarted_redis_hands_out_no_lapsed_lease_before_its_workers_could_reach_it(
    private_redis: PrivateRedis,
) -> None:
    async def connected() -> Backend:
        backend = backend_from_url(private_redis.url)
        await backend.connect()
        return backend

    async def scenario() -> None:
        # Given a job reserved under a short lease
        backend = await connected()
        await Client(backend).dispatch_many([Dispatch("noop")])
        held = (await backend.reserve("default", worker_id="first", lease_s=0.5, limit=1)).jobs
        assert len(held) == 1
        await backend.close()

        # When Redis is down for longer than the lease, and starts again
        private_redis.stop()
        await asyncio.sleep(1.0)
        private_redis.start()

        # Then another worker's reservation (or a status poll) does not hand the job out
        # again at once: its worker gets the time to deliver its ack, which Redis takes
        backend = await connected()
        try:
            assert (await backend.reserve("default", worker_id="second", lease_s=30, limit=1)).jobs == []
            assert (await backend.stats("default")).reserved == 1
            assert await backend.complete([Completion(held[0], runtime_s=0.1, wait_s=0.0)]) == []
            stats = await backend.stats("default")
            assert (stats.pending, stats.reserved) == (0, 0)
        finally:
            await backend.close()

    asyncio.run(scenario())
