"""`docmill supervise` with real worker processes and real signals, counting every job.

Each test runs masters in subprocesses (each in its own directory, so each has
its own ``storage/logs``), drives them with signals and the operator commands,
and reads what they report through the backend's heartbeats.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import wait_for
from docmill.queue import Backend, Client, Dispatch, JobOptions, backend_from_url

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
IGNORED_ENV = {"DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "DOCMILL_CONFIG", "DOCMILL_APP"}
# Registers `supervise` and the `queue status|stop|start|logs|config` commands when the CLI's
# entry point does not yet, then runs the CLI.
LAUNCHER = """
from docmill.cli import main, queue, queue_supervise, supervise

if "supervise" not in {c.name for c in main.app.registered_commands}:
    supervise.register(main.app)
if "status" not in {c.name for c in queue.app.registered_commands}:
    queue_supervise.register(queue.app)
main.run()
"""
BASE_CONFIG = """
[supervisor]
app = ["supervise_handlers:registry"]
heartbeat_s = 0.5
control_poll_s = 0.5
tick_s = 0.1

[defaults]
sleep_s = 0.5
lease_s = 2
startsecs = 0.5
restart_backoff_s = 0.2
stop_wait_s = 10
"""


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'queue.db'}"


class Cluster:
    """Masters started by a test; every one still running at the end is killed with its workers."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.launcher = root / "launcher.py"
        self.launcher.write_text(LAUNCHER)
        self.masters: list[subprocess.Popen[bytes]] = []
        self.out = root / "done.txt"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).strip(os.pathsep)
        env.update(COLUMNS="120", NO_COLOR="1", TERM="dumb")
        return env

    def start(self, name: str, config: str, *extra: str, supervisor: str = "") -> subprocess.Popen[bytes]:
        home = self.root / name
        home.mkdir(exist_ok=True)
        self.write_config(name, config, supervisor=supervisor)
        log = (home / "master.out").open("wb")
        master = subprocess.Popen(
            [sys.executable, str(self.launcher), "supervise", "--connection", self.url, *extra],
            cwd=home,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.masters.append(master)
        return master

    def write_config(self, name: str, config: str, *, supervisor: str = "") -> None:
        text = BASE_CONFIG.replace("[supervisor]\n", f"[supervisor]\n{supervisor}\n") + config
        (self.root / name / "docmill.toml").write_text(text)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(self.launcher), "queue", *args, "--connection", self.url]
        return subprocess.run(
            command, capture_output=True, text=True, env=self.env(), timeout=30, cwd=self.root
        )

    def status(self) -> tuple[int, dict[str, Any]]:
        result = self.cli("status", "--json")
        return result.returncode, json.loads(result.stdout)

    def run(self, action: Callable[[Backend], Awaitable[T]]) -> T:
        async def go() -> T:
            backend = backend_from_url(self.url)
            await backend.connect()
            try:
                return await action(backend)
            finally:
                await backend.close()

        return asyncio.run(go())

    def dispatch(self, count: int, seconds: float, queue: str = "default", start: int = 1) -> list[int]:
        numbers = list(range(start, start + count))
        items = [
            Dispatch("supervise.work", (n, seconds, str(self.out)), {}, JobOptions(queue=queue, tries=3))
            for n in numbers
        ]
        self.run(lambda backend: Client(backend).dispatch_many(items))
        return numbers

    def done(self) -> list[int]:
        if not self.out.exists():
            return []
        return sorted(int(line) for line in self.out.read_text().split())

    def masters_seen(self) -> list[dict[str, Any]]:
        return self.run(lambda backend: backend.heartbeats("master"))

    def processes(self, master: subprocess.Popen[bytes], pool: str = "default") -> list[dict[str, Any]]:
        for beat in self.masters_seen():
            if beat["pid"] == master.pid:
                for entry in beat["pools"]:
                    if entry["name"] == pool:
                        return list(entry["processes"])
        return []

    def pool_state(self, master: subprocess.Popen[bytes], pool: str = "default") -> str | None:
        for beat in self.masters_seen():
            if beat["pid"] == master.pid:
                for entry in beat["pools"]:
                    if entry["name"] == pool:
                        return str(entry["state"])
        return None

    def running_pids(self, master: subprocess.Popen[bytes], pool: str = "default") -> list[int]:
        return [p["pid"] for p in self.processes(master, pool) if p["state"] == "running"]

    def master_log(self, name: str) -> str:
        return (self.root / name / "storage" / "logs" / "supervisor.log").read_text()

    def stop_all(self) -> None:
        for master in self.masters:
            if master.poll() is None:
                master.send_signal(signal.SIGTERM)
                master.send_signal(signal.SIGTERM)  # a second one kills the workers at once
        for master in self.masters:
            try:
                master.wait(15)
            except subprocess.TimeoutExpired:
                master.kill()


@pytest.fixture
def cluster_for(tmp_path: Path) -> Iterator[Callable[[str], Cluster]]:
    made: list[Cluster] = []

    def make(url: str) -> Cluster:
        made.append(Cluster(tmp_path, url))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop_all()


def reserved(cluster: Cluster, queue: str = "default") -> int:
    async def read(backend: Backend) -> int:
        return (await backend.stats(queue)).reserved

    return cluster.run(read)


# ----------------------------------------------------------------------------- crashes


def test_a_worker_killed_with_sigkill_is_restarted_and_its_job_completes(
    cluster_for: Callable[[str], Cluster], queue_url: str
) -> None:
    # Given a master with one worker running a 3 s job
    cluster = cluster_for(queue_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 1\n")
    first = wait_for(lambda: cluster.running_pids(master), 10, "the worker to run")[0]
    cluster.dispatch(1, 3.0)
    wait_for(lambda: reserved(cluster) == 1, 5, "the job to be reserved")

    # When the worker is killed with SIGKILL
    os.kill(first, signal.SIGKILL)

    # Then the master starts a new one, and the job (back after its 2 s lease) completes
    replacement = wait_for(
        lambda: [p for p in cluster.running_pids(master) if p != first], 10, "a replacement worker"
    )
    assert replacement
    wait_for(lambda: cluster.done() == [1], 12, "the job to complete")
    assert master.poll() is None
    log = cluster.master_log("host-a")
    assert (
        f'process.exited pool=default process=default.1 pid={first} code=-9 reason="killed by SIGKILL"' in log
    )


def test_workers_stop_when_their_master_is_killed_with_sigkill(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    # Given a master with two running workers
    cluster = cluster_for(sqlite_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 2\n")
    pids = wait_for(
        lambda: len(cluster.running_pids(master)) == 2 and cluster.running_pids(master), 10, "2 workers"
    )

    # When the master dies without a chance to stop them (OOM killer, kill -9)
    master.kill()
    master.wait()

    # Then the workers do not go on unsupervised: each is told and stops
    wait_for(lambda: all(gone(pid) for pid in pids), 15, "the orphaned workers to stop")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_workers_of_a_master_killed_with_sigkill_finish_their_running_jobs_and_each_runs_once(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    # Given two workers of concurrency 4, busy with 8 jobs of 6 s, and 4 more jobs queued
    cluster = cluster_for(sqlite_url)
    config = "[pools.default]\nprocesses = 2\nconcurrency = 4\n"
    master = cluster.start("host-a", config)
    pids = wait_for(
        lambda: len(cluster.running_pids(master)) == 2 and cluster.running_pids(master), 10, "2 workers"
    )
    numbers = cluster.dispatch(12, 6.0)
    wait_for(lambda: reserved(cluster) >= 8, 5, "8 jobs in flight")
    time.sleep(1.0)  # every running job has started its 6 s

    # When the master dies without a chance to stop them (its parent-death signal reaches each
    # worker once per thread of the master)
    master.kill()
    master.wait()

    # Then the workers finish the running jobs, within their grace, and exit
    wait_for(lambda: all(gone(pid) for pid in pids), 20, "the orphaned workers to stop")
    finished_by_orphans = cluster.done()
    assert len(finished_by_orphans) >= 8
    assert len(set(finished_by_orphans)) == len(finished_by_orphans)
    assert reserved(cluster) == 0  # what they held ahead is back in the queue, not leased

    # And a new master runs the rest: every job ran exactly once
    cluster.start("host-b", config)
    wait_for(lambda: len(cluster.done()) >= len(numbers), 20, "every job to complete")
    time.sleep(1.0)  # a duplicate would show up now
    assert cluster.done() == numbers


def test_a_worker_that_cannot_load_its_app_makes_the_pool_fatal_without_looping(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    cluster = cluster_for(sqlite_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 2\n", "--app", "no_such_module:registry")
    wait_for(lambda: cluster.pool_state(master) == "fatal", 10, "the pool to go fatal")
    time.sleep(2)  # a looping master would have respawned many times by now
    processes = cluster.processes(master)
    assert {p["state"] for p in processes} == {"fatal"}
    assert all(p["restarts"] == 0 for p in processes)
    assert all(p["last_exit"]["code"] == 3 for p in processes if p["last_exit"])
    log = cluster.master_log("host-a")
    assert log.count("process.spawned") == 2
    assert log.count("pool.fatal") == 1
    code, report = cluster.status()
    assert code == 0 and report["masters"][0]["pools"][0]["state"] == "fatal"
    assert "boot_failure" in report["masters"][0]["pools"][0]["fatal_reason"]
    assert master.poll() is None  # the master stays up and reports


def test_a_worker_that_crashes_at_every_boot_goes_fatal_after_startretries(
    cluster_for: Callable[[str], Cluster], sqlite_url: str, tmp_path: Path
) -> None:
    # A "worker" that dies with exit 1 at once: boot failures, not the worker's exit 3.
    crasher = tmp_path / "crash.sh"
    crasher.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    crasher.chmod(0o755)
    cluster = cluster_for(sqlite_url)
    master = cluster.start(
        "host-a",
        "[pools.default]\nprocesses = 1\nstartretries = 2\n",
        supervisor=f'worker_command = ["{crasher}"]',
    )
    wait_for(lambda: cluster.pool_state(master) == "fatal", 15, "the pool to go fatal")
    log = cluster.master_log("host-a")
    assert "3 boot failures in a row, last exit 1" in log
    assert log.count("process.spawned") == 3
    pool_log = (cluster.root / "host-a" / "storage" / "logs" / "default.log").read_text()
    assert '"stream": "stderr", "line": "cannot start"' in pool_log


# ----------------------------------------------------------------------------- stopping


def test_sigterm_to_the_master_with_jobs_in_flight_loses_none(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    # Given two workers of concurrency 2 busy with 2 s jobs
    cluster = cluster_for(sqlite_url)
    config = "[pools.default]\nprocesses = 2\nconcurrency = 2\n"
    master = cluster.start("host-a", config)
    wait_for(lambda: len(cluster.running_pids(master)) == 2, 10, "two workers")
    numbers = cluster.dispatch(10, 2.0)
    wait_for(lambda: reserved(cluster) >= 3, 5, "jobs in flight")

    # When the master gets SIGTERM
    master.send_signal(signal.SIGTERM)

    # Then it waits for the running jobs and exits 0, with no job lost and none left reserved
    assert master.wait(15) == 0
    in_flight_done = cluster.done()
    assert len(in_flight_done) >= 3
    assert reserved(cluster) == 0
    assert "master.stopped" in cluster.master_log("host-a")
    assert "process.killed" not in cluster.master_log("host-a")

    # And a new master finishes the rest
    cluster.start("host-b", config)
    wait_for(lambda: sorted(set(cluster.done())) == numbers, 15, "every job to complete")


def test_queue_restart_replaces_every_worker_and_loses_no_job(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    cluster = cluster_for(sqlite_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 2\n")
    before = set(
        wait_for(
            lambda: len(cluster.running_pids(master)) == 2 and cluster.running_pids(master), 10, "workers"
        )
    )
    numbers = cluster.dispatch(6, 1.0)
    wait_for(lambda: reserved(cluster) >= 1, 5, "a job in flight")

    result = cluster.cli("restart")
    assert result.returncode == 0, result.stderr

    wait_for(
        lambda: len(cluster.running_pids(master)) == 2 and not before & set(cluster.running_pids(master)),
        15,
        "two new workers",
    )
    wait_for(lambda: sorted(set(cluster.done())) == numbers, 15, "every job to complete")
    assert all(p["restarts"] >= 1 for p in cluster.processes(master))
    assert "process.exited pool=default process=default.1" in cluster.master_log("host-a")


def test_queue_stop_and_start_hold_every_master_at_zero_workers_and_back(
    cluster_for: Callable[[str], Cluster], queue_url: str
) -> None:
    # Given two masters (standing for two hosts) on one backend
    cluster = cluster_for(queue_url)
    a = cluster.start("host-a", "[pools.default]\nprocesses = 1\n")
    b = cluster.start("host-b", "[pools.default]\nprocesses = 2\n")
    wait_for(lambda: len(cluster.running_pids(a)) == 1 and len(cluster.running_pids(b)) == 2, 10, "workers")
    assert cluster.status()[0] == 0

    # When the operator stops the workers
    result = cluster.cli("stop")
    assert result.returncode == 0, result.stderr

    # Then both masters stay up with zero workers, and status says stopped (exit 1)
    wait_for(lambda: not cluster.processes(a) and not cluster.processes(b), 10, "zero workers")
    code, report = cluster.status()
    assert code == 1 and report["state"] == "stopped"
    assert {m["state"] for m in report["masters"]} == {"stopped"}
    assert report["workers"] == []
    cluster.dispatch(2, 0.1)
    time.sleep(1.5)
    assert cluster.done() == []  # nobody takes jobs while stopped
    assert a.poll() is None and b.poll() is None

    # When the operator starts them again, both masters start their workers and the jobs run
    assert cluster.cli("start").returncode == 0
    wait_for(
        lambda: len(cluster.running_pids(a)) == 1 and len(cluster.running_pids(b)) == 2, 10, "workers again"
    )
    wait_for(lambda: cluster.done() == [1, 2], 10, "the jobs dispatched while stopped")
    assert cluster.status()[0] == 0


def test_sigusr2_pauses_this_master_and_sigcont_continues_it(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    cluster = cluster_for(sqlite_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 2\n")
    wait_for(lambda: len(cluster.running_pids(master)) == 2, 10, "workers")
    master.send_signal(signal.SIGUSR2)
    wait_for(lambda: not cluster.processes(master), 10, "zero workers")
    code, report = cluster.status()
    assert (code, report["state"]) == (1, "paused")
    master.send_signal(signal.SIGCONT)
    wait_for(lambda: len(cluster.running_pids(master)) == 2, 10, "workers again")
    assert cluster.status()[0] == 0


def test_sighup_reloads_the_configuration_one_worker_at_a_time(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    cluster = cluster_for(sqlite_url)
    master = cluster.start("host-a", "[pools.default]\nprocesses = 2\n")
    before = set(
        wait_for(
            lambda: len(cluster.running_pids(master)) == 2 and cluster.running_pids(master), 10, "workers"
        )
    )
    cluster.write_config("host-a", '[pools.default]\nprocesses = 3\nqueues = ["default", "low"]\n')
    master.send_signal(signal.SIGHUP)
    wait_for(
        lambda: len(cluster.running_pids(master)) == 3 and not before & set(cluster.running_pids(master)),
        15,
        "three workers on the new configuration",
    )
    assert all(p["generation"] == 1 for p in cluster.processes(master))
    log = cluster.master_log("host-a")
    assert "master.reloaded" in log
    assert log.count("reason=reload") == 2
    cluster.dispatch(1, 0.1, queue="low")
    wait_for(lambda: cluster.done() == [1], 10, "a job on the new queue")


def test_status_without_any_master_is_inactive(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    cluster = cluster_for(sqlite_url)
    code, report = cluster.status()
    assert (code, report["state"], report["masters"]) == (2, "inactive", [])


def test_status_local_reports_only_this_hosts_master(
    cluster_for: Callable[[str], Cluster], sqlite_url: str
) -> None:
    # Given a running master on another host only (its heartbeat, as that host would write it)
    cluster = cluster_for(sqlite_url)
    beat = {"host": "elsewhere", "pid": 4242, "state": "running", "pools": [], "started": time.time()}
    cluster.run(lambda backend: backend.put_heartbeat("master", "elsewhere:4242", beat, 60))

    # Then the cluster is running, but this host, asked alone, has no master (a container's health check)
    assert cluster.cli("status", "--json").returncode == 0
    local = cluster.cli("status", "--local", "--json")
    assert local.returncode == 2
    assert json.loads(local.stdout)["masters"] == []
