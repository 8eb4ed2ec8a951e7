"""Redis-specific behaviour of the Redis backend (the shared contract is in the conformance suite).

What only Redis has: hash slots (every script must stay inside one queue's
slot, or it breaks on Redis Cluster), keys that must expire, a second
connection for blocking waits, server time, and a server that can go away.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from conftest import require_program
from docmill.queue import (
    Backend,
    BackendError,
    BackendUnavailable,
    Completion,
    ErrorInfo,
    Job,
    JobOptions,
    JobState,
    backend_from_url,
)
from docmill.queue.backends.redis import SCRIPTS, RedisBackend

pytestmark = pytest.mark.redis

BOOM = ErrorInfo("RuntimeError", "boom", "Traceback ...")


def make_job(queue: str = "default", **options: Any) -> Job:
    return Job.build("tests.echo", [1], options=JobOptions(queue=queue, **options))


async def reserve_one(backend: Backend, queue: str = "default", lease_s: float = 30.0) -> Job:
    reservation = await backend.reserve(queue, worker_id="w1", lease_s=lease_s)
    assert len(reservation.jobs) == 1, reservation
    return reservation.jobs[0]


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    opened = backend_from_url(redis_url)
    assert isinstance(opened, RedisBackend)
    await opened.connect()
    yield opened
    await opened.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test database, to look at keys behind the backend's back."""
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    yield client
    client.close()


async def exercise_every_operation(backend: Backend, other: Backend) -> None:
    """Dispatch, delay, unique, tags, reserve, extend, complete, fail, retry, release,
    lost leases, control, observability and heartbeats, on two queues."""
    await backend.enqueue(
        [
            make_job(tags=("document:1",)),
            make_job(unique_key="doc:1", tags=("document:1", "tenant:7")),
            make_job(delay_s=3600),
            make_job("other", unique_key="doc:1"),
            *[make_job("bulk") for _ in range(30)],
        ]
    )
    first, second = (await backend.reserve("default", worker_id="w1", lease_s=30.0, limit=2)).jobs
    await backend.extend([first], 30.0)
    await backend.complete([Completion(first, runtime_s=0.01, wait_s=0.02)])
    await backend.retry_later(second, delay_s=0, error=BOOM, count_exception=True, refund_attempt=False)
    again = await reserve_one(backend)
    await backend.fail(again, BOOM)
    await backend.retry_failed([again.id])
    released = await reserve_one(backend)
    await backend.record_progress(released)
    await backend.retry_later(released, delay_s=3600, error=None, count_exception=False, refund_attempt=True)
    await backend.fail(await reserve_one(backend, "other"), BOOM)
    lapsing = await backend.reserve("bulk", worker_id="dead", lease_s=0.1, limit=5)
    await asyncio.sleep(0.2)
    done = await backend.reserve("bulk", worker_id="w2", lease_s=30.0, limit=20)
    await other.complete([Completion(job, 0.001, 0.001) for job in done.jobs])
    assert len(lapsing.jobs) == 5
    await backend.enqueue([make_job("failing") for _ in range(3)])
    for _ in range(3):
        await backend.fail(await reserve_one(backend, "failing"), BOOM)
    failed_ids = await backend.oldest_failed_ids("failing")
    await backend.forget_failed(failed_ids[0])
    await backend.flush_failed("failing", older_than_s=0)
    await backend.enqueue([make_job("cleared", unique_key="doc:9"), make_job("cleared", delay_s=60)])
    await backend.clear("cleared")
    await backend.pause("paused")
    await backend.pause("default")
    await backend.resume("default")
    await backend.request_restart()
    await backend.put_heartbeat("worker", "host:1", {"pid": 1}, 30)
    await backend.set_flag("workers_stopped", {"by": "test"})
    await backend.rate_take(
        "llm:model", {"requests": 1, "input_tokens": 500}, {"requests": 10, "input_tokens": 1e5}, 60
    )
    await backend.rate_settle("llm:model", {"input_tokens": -200}, {"input_tokens": 1e5}, 60)
    await backend.put_heartbeat("worker", "host:2", {"pid": 2}, 30)
    await backend.delete_heartbeat("worker", "host:2")
    for queue in await backend.queues():
        await backend.stats(queue)
        await backend.metrics(queue)
        await backend.recent_completed(queue)
    await backend.failed_page()
    await backend.failed_count()
    await backend.paused_queues()
    await backend.get(first.id)
    await backend.find_by_tag("document:1")
    await backend.heartbeats("worker")
    await backend.wait(["default", "other"], timeout_s=0.01)
    await backend.interrupt_wait("host:3")  # a wake-up token for a worker that never waits again
    await backend.wait_and_reserve(["default"], 0.01, worker_id="host:4", lease_s=30.0, limit=1)


# ---------------------------------------------------------------- hash slots


class Monitor:
    """Records every command the server runs (MONITOR), on a raw connection of its own."""

    ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.lines: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(b"MONITOR\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"+OK")
        self._writer = writer

        async def collect() -> None:
            while line := await reader.readline():
                self.lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))

        self._task = asyncio.create_task(collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.2)  # let the last lines arrive
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()

    def scripts(self, prefix: str) -> list[tuple[str, str, list[list[str]]]]:
        """(sha, KEYS[1], commands run inside the script) for each of our EVALSHA calls.

        A script runs atomically, so the commands it issued are exactly the
        ``lua`` lines that follow its EVALSHA line.
        """
        found: list[tuple[str, str, list[list[str]]]] = []
        current: list[list[str]] | None = None
        for line in self.lines:
            head, _, rest = line.partition("] ")
            args = self.ARG.findall(rest)
            if head.endswith(" lua"):
                if current is not None:
                    current.append(args)
                continue
            current = None
            if args and args[0].upper() == "EVALSHA" and args[3].startswith(prefix + ":"):
                current = []
                found.append((args[1], args[3], current))
        return found


async def test_every_script_touches_only_keys_in_the_slot_of_its_declared_key(
    backend: RedisBackend, redis_url: str, redis_prefix: str
) -> None:
    other = backend_from_url(redis_url)
    await other.connect()
    try:
        async with Monitor(redis_url) as monitor:
            await exercise_every_operation(backend, other)
    finally:
        await other.close()

    calls = monitor.scripts(redis_prefix)
    names = {sha: name for name, sha in backend._shas.items()}
    # migrate.lua runs only when keys of the first schema are found: test_redis_key_upgrade.py
    everyday = set(SCRIPTS) - {"migrate"}
    assert {names[sha] for sha, _, _ in calls} == everyday, "the scenario must run every script"
    touched = 0
    for sha, declared, commands in calls:
        for command in commands:
            keys = [arg for arg in command[1:] if arg.startswith(redis_prefix)]
            for key in keys:
                # A queue script stays under its base key; notify.lua touches exactly its list.
                inside = key == declared if names[sha] == "notify" else key.startswith(declared + ":")
                assert inside, f"{names[sha]} touched {key} outside {declared}"
                assert key_slot(key.encode()) == key_slot(declared.encode()), (names[sha], key)
                touched += 1
    assert touched > 100


async def test_all_keys_of_one_queue_share_a_slot_and_wakeup_lists_share_one_too(
    backend: RedisBackend, redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    other = backend_from_url(redis_url)
    await other.connect()
    try:
        await exercise_every_operation(backend, other)
    finally:
        await other.close()

    slots: dict[str, set[int]] = {}
    for key in raw.scan_iter(match=f"{redis_prefix}:*", count=1000):
        rest = key[len(redis_prefix) + 1 :]
        if rest.startswith(("{", "q:{")):
            group = rest[rest.index("{") + 1 : rest.index("}")]
            name = f"queue {group}" if rest.startswith("q:") else group
            slots.setdefault(name, set()).add(key_slot(key.encode()))
    assert {"queue default", "queue other", "queue bulk", "wake"} <= set(slots)
    assert all(len(found) == 1 for found in slots.values()), slots


# ---------------------------------------------------------------- key TTLs


def permanent(key: str, prefix: str, raw: redis.Redis) -> bool:
    """Whether the key schema (redis_lua/_keys.lua) lets ``key`` live without a TTL."""
    rest = key[len(prefix) + 1 :]
    if rest in ("queues", "restart", "schema") or rest.startswith("flag:"):
        return True
    match = re.fullmatch(r"(q:)?\{([^}]*)\}:(.*)", rest)
    assert match, f"{key} fits no entry of the key schema"
    in_queue, group, suffix = match.groups()
    if not in_queue:
        assert group == "wake" or group.startswith("rate~"), f"{key} fits no entry of the key schema"
        return False
    if suffix in ("waiting", "reserved", "failed", "seq", "paused"):
        return True
    if suffix.startswith("job:"):
        return raw.hget(key, "st") in {"pending", "delayed", "reserved", "failed"}
    assert re.match(r"(completed$|unique:|tag:|m:\d+$)", suffix), f"{key} fits no entry of the key schema"
    return False


async def test_every_key_that_is_not_permanent_carries_a_ttl(
    backend: RedisBackend, redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    other = backend_from_url(redis_url + "&completed_max=5")
    await other.connect()
    try:
        await exercise_every_operation(backend, other)
    finally:
        await other.close()

    keys = sorted(raw.scan_iter(match=f"{redis_prefix}:*", count=1000))
    kinds = {re.sub(r":job:.*|:unique:.*|:tag:.*|:m:.*|:hb:.*", lambda m: m.group(0)[:4], k) for k in keys}
    assert len(kinds) > 10, kinds  # the scenario really created every kind of key
    leaking = [key for key in keys if raw.pttl(key) == -1 and not permanent(key, redis_prefix, raw)]
    assert leaking == []
    assert any(raw.pttl(key) > 0 for key in keys if ":job:" in key)  # completed jobs expire


async def test_completed_jobs_trimmed_by_completed_max_lose_their_hash_at_once(
    redis_url: str, redis_prefix: str, raw: redis.Redis
) -> None:
    backend = backend_from_url(redis_url + "&completed_max=3")
    await backend.connect()
    try:
        await backend.enqueue([make_job() for _ in range(10)])
        jobs = (await backend.reserve("default", worker_id="w1", lease_s=30, limit=10)).jobs
        await backend.complete([Completion(job, 0.01, 0.01) for job in jobs])
    finally:
        await backend.close()

    job_keys = list(raw.scan_iter(match=f"{redis_prefix}:q:{{default}}:job:*"))
    assert len(job_keys) == 3
    assert raw.zcard(f"{redis_prefix}:q:{{default}}:completed") == 3


# ---------------------------------------------------------------- leases and tokens


async def test_leases_are_measured_on_the_redis_clock(backend: RedisBackend, raw: redis.Redis) -> None:
    await backend.enqueue([make_job()])
    seconds, micros = raw.time()
    server_now = seconds + micros / 1e6

    job = await reserve_one(backend, lease_s=30.0)

    assert job.reserved_at == pytest.approx(server_now, abs=0.5)
    assert job.lease_until == pytest.approx(server_now + 30.0, abs=0.5)
    stored = await backend.get(job.id)
    assert stored is not None and stored.lease_until == pytest.approx(job.lease_until, abs=1e-5)


async def test_a_token_is_never_reused_even_when_a_refund_brings_attempts_back(backend: RedisBackend) -> None:
    # Given a job released with a refund, so its attempts go 1 -> 0 -> 1
    await backend.enqueue([make_job()])
    first = await reserve_one(backend)
    assert await backend.retry_later(first, delay_s=0, error=None, count_exception=False, refund_attempt=True)
    second = await reserve_one(backend)
    assert first.attempts == second.attempts == 1

    # Then the first reservation's token no longer works
    assert first.reservation != second.reservation
    assert await backend.complete([Completion(first, 0.1, 0.1)]) == [first.id]
    assert await backend.complete([Completion(second, 0.1, 0.1)]) == []


async def test_extend_moves_the_lease_in_storage_and_on_the_job(backend: RedisBackend) -> None:
    await backend.enqueue([make_job()])
    job = await reserve_one(backend, lease_s=1.0)
    before = job.lease_until

    assert await backend.extend([job], 60.0) == []

    assert job.lease_until is not None and before is not None and job.lease_until > before + 50
    stored = await backend.get(job.id)
    assert stored is not None and stored.lease_until == pytest.approx(job.lease_until, abs=1e-5)


async def test_a_batch_of_completions_across_queues_reports_only_the_stale_ones(
    backend: RedisBackend,
) -> None:
    await backend.enqueue([make_job("a"), make_job("a"), make_job("b")])
    a_jobs = (await backend.reserve("a", worker_id="w1", lease_s=30, limit=2)).jobs
    b_job = await reserve_one(backend, "b")
    stale = a_jobs[1].copy(reservation="w0:1")

    ignored = await backend.complete([Completion(j, 0.1, 0.1) for j in (a_jobs[0], stale, b_job)])

    assert ignored == [stale.id]
    states = [(await backend.get(j.id)) for j in (a_jobs[0], a_jobs[1], b_job)]
    assert [s.state for s in states if s] == [JobState.COMPLETED, JobState.RESERVED, JobState.COMPLETED]


# ---------------------------------------------------------------- wake-ups


async def test_wait_wakes_within_a_fraction_of_a_second_of_an_enqueue_elsewhere(
    backend: RedisBackend, redis_url: str
) -> None:
    producer = backend_from_url(redis_url)
    await producer.connect()
    try:
        waiter = asyncio.create_task(backend.wait(["a", "b", "c"], timeout_s=10))
        await asyncio.sleep(0.2)
        assert not waiter.done()

        started = time.monotonic()
        await producer.enqueue([make_job("b")])
        await asyncio.wait_for(waiter, timeout=3)
        latency = time.monotonic() - started
    finally:
        await producer.close()
    assert latency < 0.5  # typically ~5 ms; generous for a loaded CI machine


async def test_a_blocked_wait_does_not_delay_acknowledgements(backend: RedisBackend) -> None:
    await backend.enqueue([make_job("busy")])
    job = await reserve_one(backend, "busy")
    waiter = asyncio.create_task(backend.wait(["idle"], timeout_s=5))
    await asyncio.sleep(0.1)

    started = time.monotonic()
    assert await backend.complete([Completion(job, 0.01, 0.01)]) == []
    assert time.monotonic() - started < 0.5
    assert not waiter.done()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter


async def test_wait_wakes_when_a_delayed_job_falls_due(backend: RedisBackend) -> None:
    await backend.enqueue([make_job(delay_s=0.3)])
    assert (await backend.reserve("default", worker_id="w1", lease_s=30)).jobs == []
    # The enqueue left a wake-up token; take it so only the due time can wake us.
    await backend.wait(["default"], timeout_s=0.05)

    started = time.monotonic()
    await backend.wait(["default"], timeout_s=10)

    assert time.monotonic() - started < 1.0
    assert len((await backend.reserve("default", worker_id="w1", lease_s=30)).jobs) == 1


async def test_wake_up_tokens_are_bounded_and_expire(
    backend: RedisBackend, redis_prefix: str, raw: redis.Redis
) -> None:
    for _ in range(5):
        await backend.enqueue([make_job() for _ in range(100)])

    key = f"{redis_prefix}:{{wake}}:q:default"
    assert 1 <= raw.llen(key) <= 16
    assert raw.ttl(key) > 0


# ---------------------------------------------------------------- availability


async def test_connect_to_a_port_where_nothing_listens_raises_backend_unavailable_with_the_masked_url() -> (
    None
):
    backend = backend_from_url("redis://:s3cret@127.0.0.1:1/0?prefix=x")

    with pytest.raises(BackendUnavailable) as caught:
        await backend.connect()

    message = str(caught.value)
    assert "redis://:***@127.0.0.1:1/0" in message
    assert "s3cret" not in message


def start_redis_server(port: int, directory: Any) -> subprocess.Popen[bytes]:
    """A redis-server on ``port`` that keeps nothing on disk, once it answers."""
    binary = require_program("redis-server", "Debian's redis-server; .ci/run installs it")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    return proc


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway redis-server of our own, so a test may kill it or flush its scripts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = start_redis_server(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0?prefix=private", proc
    proc.kill()
    proc.wait()


async def test_losing_the_server_during_operation_raises_a_backend_error(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = private_redis
    backend = backend_from_url(url)
    await backend.connect()
    await backend.enqueue([make_job()])

    proc.kill()
    proc.wait()

    with pytest.raises(BackendError) as caught:
        await backend.stats("default")
    assert isinstance(caught.value, BackendUnavailable)
    assert url.split("?")[0] in str(caught.value)
    await backend.close()


async def test_a_server_that_stops_answering_fails_each_call_at_the_url_s_socket_timeout(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    # Given a backend with a short socket_timeout, connected to a server that then freezes
    url, proc = private_redis
    backend = backend_from_url(f"{url}&socket_timeout=0.5")
    await backend.connect()
    await backend.enqueue([make_job()])
    proc.send_signal(signal.SIGSTOP)
    try:
        # When a dispatch, a reservation and a plain command are made
        for call in (
            lambda: backend.enqueue([make_job()]),
            lambda: backend.reserve("default", worker_id="w", lease_s=30),
            lambda: backend.stats("default"),
        ):
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as caught:
                await call()

            # Then each fails after about the timeout, saying so
            assert 0.4 <= time.monotonic() - started < 3
            assert "no answer within 0.5 s" in str(caught.value)
    finally:
        proc.send_signal(signal.SIGCONT)
        await backend.close()


async def test_a_restarted_server_is_reached_again_on_the_next_call_without_an_error(
    private_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Any
) -> None:
    # Given a connected backend whose idle connections (several) all point at a server that
    # then restarts
    url, proc = private_redis
    port = int(url.split(":")[2].split("/")[0])
    backend = backend_from_url(url)
    await backend.connect()
    await asyncio.gather(*(backend.enqueue([make_job()]) for _ in range(5)))
    proc.kill()
    proc.wait()
    again = start_redis_server(port, tmp_path)
    try:
        # When the backend is used again: dispatch, reserve, and acknowledge
        [job_id] = await backend.enqueue([make_job()])
        job = await reserve_one(backend)

        # Then each call reconnects (and loads its scripts) instead of failing
        assert job.id == job_id
        assert await backend.complete([Completion(job, runtime_s=0.01, wait_s=0.0)]) == []
    finally:
        await backend.close()
        again.kill()
        again.wait()


async def test_closing_the_backend_closes_every_connection_it_opened(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, _ = private_redis
    port = int(url.split(":")[2].split("/")[0])
    observer = redis.Redis(port=port)
    backend = backend_from_url(url)
    await backend.connect()
    await asyncio.gather(*(backend.enqueue([make_job()]) for _ in range(5)))
    await reserve_one(backend)
    assert len(observer.client_list()) > 2

    await backend.close()

    deadline = time.monotonic() + 5
    while len(observer.client_list()) > 1:  # the observer's own
        assert time.monotonic() < deadline, observer.client_list()
        time.sleep(0.05)
    observer.close()


async def test_scripts_are_loaded_again_after_the_server_forgot_them(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, _ = private_redis
    backend = backend_from_url(url)
    await backend.connect()
    try:
        client = aioredis.Redis.from_url(url.split("?")[0])
        await client.script_flush()
        await client.aclose()

        # A pipelined script call (enqueue) and a plain one (reserve) both recover.
        [job_id] = await backend.enqueue([make_job()])
        assert (await reserve_one(backend)).id == job_id
    finally:
        await backend.close()


async def test_find_by_tag_drops_ids_of_jobs_no_longer_held_from_the_tag_set(
    backend: RedisBackend, redis_prefix: str, raw: redis.Redis
) -> None:
    kept, forgotten = make_job(tags=("document:42",)), make_job(tags=("document:42",))
    await backend.enqueue([kept, forgotten])
    await backend.clear("default")
    await backend.enqueue([kept.copy(id=kept.id + "x")])

    found = await backend.find_by_tag("document:42")

    assert [job.id for job in found] == [kept.id + "x"]
    assert raw.smembers(f"{redis_prefix}:q:{{default}}:tag:document:42") == {kept.id + "x"}
