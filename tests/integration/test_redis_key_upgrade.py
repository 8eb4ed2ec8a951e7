"""The Redis key schema: keys of the first schema are moved on connect, and a script that meets
a key of the wrong type stops before its first write.

The first schema put queue Q's keys under ``P:{Q}:`` and the wake-up lists under
``P:{notify}:Q``, so a queue named ``failed`` had its wake-up list on the failed store of a
queue named ``notify``; a failure filed there was lost. The keys below are written with raw
commands exactly as the first schema's scripts wrote them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.crc import key_slot

from docmill.queue import BackendError, Completion, ErrorInfo, Job, JobOptions, JobState, backend_from_url
from docmill.queue.backends.redis import RedisBackend

pytestmark = pytest.mark.redis

BOOM = ErrorInfo("RuntimeError", "boom", "Traceback ...")
NOW = 1_700_000_000.0


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def opened(redis_url: str) -> AsyncIterator[list[RedisBackend]]:
    backends: list[RedisBackend] = []
    yield backends
    for backend in backends:
        await backend.close()


async def connect(redis_url: str, opened: list[RedisBackend]) -> RedisBackend:
    backend = backend_from_url(redis_url)
    assert isinstance(backend, RedisBackend)
    await backend.connect()
    opened.append(backend)
    return backend


def first_schema_job(raw: redis.Redis, p: str, queue: str, state: str, **fields: str) -> Job:
    """A job hash as the first schema stored it, under ``P:{queue}:job:<id>``."""
    job = Job.build("tests.echo", [1], options=JobOptions(queue=queue, tags=("document:7",)), now=NOW)
    values = {"s": job.spec_json(), "st": state, "a": "1", "x": "1", "av": f"{NOW:.6f}", "u": ""}
    raw.hset(f"{p}:{{{queue}}}:job:{job.id}", mapping={**values, **fields})
    raw.sadd(f"{p}:{{{queue}}}:tag:document:7", job.id)
    return job


def write_first_schema(raw: redis.Redis, p: str) -> dict[str, Job]:
    """The state the first schema left after the repro: a job on `notify` failed while a
    queue `failed` existed, and the failure could not be filed."""
    waiting = first_schema_job(raw, p, "default", "pending")
    raw.zadd(f"{p}:{{default}}:waiting", {waiting.id: NOW})
    raw.set(f"{p}:{{default}}:seq", "41")
    raw.hset(f"{p}:{{default}}:m:{int(time.time()) // 60 * 60}", mapping={"completed": "3"})
    on_failed = first_schema_job(raw, p, "failed", "pending")
    raw.zadd(f"{p}:{{failed}}:waiting", {on_failed.id: NOW})
    # The wake-up list of queue `failed` sits where `notify` keeps its failed store ...
    raw.rpush(f"{p}:{{notify}}:failed", "1")
    raw.rpush(f"{p}:{{notify}}:default", "1")
    raw.rpush(f"{p}:{{notify}}:worker:host:1", "1")
    # ... so fail.lua stopped after marking the job failed, before filing it.
    orphan = first_schema_job(raw, p, "notify", "failed", fa=f"{NOW + 5:.6f}", e='{"type": "Fail"}')
    raw.sadd(f"{p}:queues", "default", "failed", "notify")
    return {"waiting": waiting, "on_failed": on_failed, "orphan": orphan}


async def test_keys_of_the_first_schema_are_moved_on_connect_and_an_orphaned_failure_is_filed(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    # Given a database written by the first key schema
    jobs = write_first_schema(raw, redis_prefix)

    # When this docmill connects to it
    backend = await connect(redis_url, opened)

    # Then the failure lost by the first schema is in the failed store, and can be retried
    assert [job.id for job in await backend.failed_page()] == [jobs["orphan"].id]
    assert await backend.retry_failed([jobs["orphan"].id]) == 1
    assert (await backend.stats("notify")).pending == 1
    # And every waiting job, tag, counter and metric moved with its queue
    for queue, key in (("default", "waiting"), ("failed", "on_failed")):
        [job] = (await backend.reserve(queue, worker_id="w", lease_s=30)).jobs
        assert (job.id, job.attempts, job.exceptions) == (jobs[key].id, 2, 1)
    assert {job.id for job in await backend.find_by_tag("document:7")} == {j.id for j in jobs.values()}
    assert (await backend.metrics("default", minutes=2))[-1].completed == 3
    assert raw.get(f"{redis_prefix}:q:{{default}}:seq") == "42"
    # And no key of the first schema is left
    left = [key for key in raw.scan_iter(match=f"{redis_prefix}:{{*", count=1000)]
    assert [key for key in left if not key.startswith(f"{redis_prefix}:{{wake}}:")] == []
    assert raw.get(f"{redis_prefix}:schema") == "2"


async def test_the_upgrade_runs_once_and_a_second_process_finds_nothing_to_move(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    write_first_schema(raw, redis_prefix)
    first = await connect(redis_url, opened)
    await first.enqueue([Job.build("tests.echo", options=JobOptions(queue="default"))])
    before = {key: raw.type(key) for key in raw.scan_iter(match=f"{redis_prefix}:*")}

    await connect(redis_url, opened)

    assert {key: raw.type(key) for key in raw.scan_iter(match=f"{redis_prefix}:*")} == before
    assert (await first.stats("default")).pending == 2
    assert await first.failed_count() == 1


async def test_keys_of_the_first_schema_written_after_the_upgrade_began_are_merged(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    # Given an old worker that left a waiting job behind after a new one already used the queue
    backend = await connect(redis_url, opened)
    new = Job.build("tests.echo", options=JobOptions(queue="default"))
    await backend.enqueue([new])
    old = first_schema_job(raw, redis_prefix, "default", "pending")
    raw.zadd(f"{redis_prefix}:{{default}}:waiting", {old.id: NOW})
    raw.delete(f"{redis_prefix}:schema")

    # When a process connects again
    await connect(redis_url, opened)

    # Then both jobs wait on the queue
    reserved = (await backend.reserve("default", worker_id="w", lease_s=30, limit=5)).jobs
    assert {job.id for job in reserved} == {new.id, old.id}


async def test_the_upgrade_script_stays_in_the_slot_of_its_queue(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    # Every old key of a queue whose name needs no escape shares the new keys' slot
    write_first_schema(raw, redis_prefix)
    old = [key for key in raw.scan_iter(match=f"{redis_prefix}:{{*", count=1000) if "{notify}:" not in key]
    await connect(redis_url, opened)
    for key in old:
        queue = key[key.index("{") + 1 : key.index("}")]
        assert key_slot(key.encode()) == key_slot(f"{redis_prefix}:q:{{{queue}}}".encode()), key


# ---------------------------------------------------------------- type checks


async def test_a_script_that_meets_a_key_of_the_wrong_type_changes_nothing(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    # Given a foreign list where the failed store of queue `default` belongs
    backend = await connect(redis_url, opened)
    job = Job.build("tests.echo", options=JobOptions(queue="default", unique_key="doc:1"))
    await backend.enqueue([job])
    [reserved] = (await backend.reserve("default", worker_id="w", lease_s=30)).jobs
    raw.rpush(f"{redis_prefix}:q:{{default}}:failed", "foreign")
    before = raw.hgetall(f"{redis_prefix}:q:{{default}}:job:{job.id}")

    # When the worker reports the failure
    wrong_type = r"WRONGTYPE docmill key \S+:failed holds a list where a zset belongs"
    with pytest.raises(BackendError, match=wrong_type):
        await backend.fail(reserved, BOOM)

    # Then the job is exactly as it was: reserved, its lease and unique key held
    assert raw.hgetall(f"{redis_prefix}:q:{{default}}:job:{job.id}") == before
    assert raw.zscore(f"{redis_prefix}:q:{{default}}:reserved", job.id) is not None
    assert raw.get(f"{redis_prefix}:q:{{default}}:unique:doc:1") == job.id
    stored = await backend.get(job.id)
    assert stored is not None and stored.state is JobState.RESERVED


async def test_a_batch_completion_checks_every_job_before_completing_any(
    redis_url: str, redis_prefix: str, raw: redis.Redis, opened: list[RedisBackend]
) -> None:
    backend = await connect(redis_url, opened)
    jobs = [Job.build("tests.echo", options=JobOptions(queue="default")) for _ in range(3)]
    await backend.enqueue(jobs)
    reserved = (await backend.reserve("default", worker_id="w", lease_s=30, limit=3)).jobs
    # A foreign string where the third job's hash belongs
    raw.delete(f"{redis_prefix}:q:{{default}}:job:{reserved[2].id}")
    raw.set(f"{redis_prefix}:q:{{default}}:job:{reserved[2].id}", "foreign")

    with pytest.raises(BackendError, match="WRONGTYPE"):
        await backend.complete([Completion(job, 0.1, 0.1) for job in reserved])

    assert raw.zcard(f"{redis_prefix}:q:{{default}}:reserved") == 3
    assert not raw.exists(f"{redis_prefix}:q:{{default}}:completed")
    states = [await backend.get(job.id) for job in reserved[:2]]
    assert [job.state for job in states if job is not None] == [JobState.RESERVED] * 2
