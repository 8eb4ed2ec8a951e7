"""The Redis backend: several hosts share one Redis (or Redis Cluster).

Every state change of a queue is one Lua script in ``redis_lua/`` whose keys
all carry the queue's hash tag; ``redis_lua/_keys.lua`` documents the key
schema and is prepended to each script. Global keys (known queues, the restart
request, wake-up tokens, heartbeats) are written with plain commands. Queue names
are escaped into keys (``key_part``) so that no name, whatever it holds, shares a
key with another queue or with the backend's own keys; ``connect`` moves the keys
of the first schema once (``_upgrade_keys``).

Two redis-py clients: one for scripts and commands, one for the blocking
``BLPOP`` behind ``wait()``, so a worker waiting for work never delays its own
acknowledgements. The hot paths (dispatch, reserve, acknowledge, the idle
wait) go over each client's connections as raw round trips
(``redis_wire.py``); every call but the blocking wait has a deadline.

A job id carries no queue name, so ``get`` and the by-id failed-store methods
look the id up in every known queue with one pipelined round trip.

Needs Redis 7.0 or later (``PEXPIRE ... NX|GT``, ``ZRANGE ... BYSCORE REV``,
``TIME`` inside scripts with effects replication).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.connection import URL_QUERY_ARGUMENT_PARSERS

from docmill.queue.backend import (
    Backend,
    BackendSettings,
    Completion,
    MinuteMetrics,
    QueueStats,
    Reservation,
)
from docmill.queue.backends import mask_url
from docmill.queue.backends.redis_wire import Connections, round_trip, use_c_packing
from docmill.queue.counters import COUNTER_RETENTION_S, first_minute, minute_of
from docmill.queue.errors import BackendError, BackendUnavailable, ConfigurationError
from docmill.queue.job import WAITING, ErrorInfo, Job, JobState

P = ParamSpec("P")
R = TypeVar("R")

SCRIPTS = (
    "enqueue",
    "notify",
    "rate_take",
    "rate_settle",
    "reserve",
    "extend",
    "complete",
    "retry_later",
    "fail",
    "retry_failed",
    "forget_failed",
    "flush_failed",
    "clear",
    "stats",
    "metrics",
    "record_progress",
    "migrate",
)
CHUNK = 1000  # jobs per script call: bounds script run time and Lua's unpack()
RECLAIM_WAKE_S = 0.05  # wake this long after a lease lapses, so reserve sees it as lapsed
NOTIFY_TOKENS = 16  # wake-up tokens kept per queue: enough to wake that many waiters
NOTIFY_TTL_S = 600
REGISTER_EVERY_S = 60.0
DEFAULT_TIMEOUT_S = 30.0  # longest a call (not the blocking wait) may take; URL: socket_timeout
JOB_FIELDS = ("s", "st", "a", "x", "av", "ra", "r", "lu", "fa", "rt", "e")
SCHEMA = "2"  # the key schema of redis_lua/_keys.lua; P:schema records it once keys moved


def key_part(queue: str) -> str:
    """A queue name as it appears in keys (E in ``_keys.lua``): one-to-one, and brace-free so
    the hash tag ``{E}`` ends where the name ends."""
    return queue.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _glob_escape(text: str) -> str:
    """``text`` as a SCAN MATCH pattern that matches only itself."""
    return "".join("\\" + c if c in "*?[]\\^-" else c for c in text)


def _load_sources() -> dict[str, str]:
    folder = resources.files("docmill.queue.backends").joinpath("redis_lua")
    lib = folder.joinpath("_keys.lua").read_text(encoding="utf-8")
    return {name: lib + folder.joinpath(f"{name}.lua").read_text(encoding="utf-8") for name in SCRIPTS}


def _guarded(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn redis-py errors into the engine's ``BackendError`` tree."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (rexc.ConnectionError, rexc.TimeoutError, TimeoutError) as exc:
            backend = args[0]
            url = mask_url(backend.url) if isinstance(backend, RedisBackend) else "Redis"
            if isinstance(exc, TimeoutError) and isinstance(backend, RedisBackend):
                what = f"no answer within {backend._timeout_s:g} s"
            else:
                what = str(exc)
            raise BackendUnavailable(
                f"lost the connection to Redis at {url} ({what}); check that Redis is up and reachable"
            ) from exc
        except rexc.RedisError as exc:
            raise BackendError(f"Redis refused a queue command: {exc}") from exc

    return wrapper


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _opt_float(value: str | None) -> float | None:
    return float(value) if value else None


def _error(value: str | None) -> ErrorInfo | None:
    return ErrorInfo.from_dict(json.loads(value)) if value else None


def _blpop_timeout(timeout_s: float) -> str:
    return f"{max(timeout_s, 0.001):.3f}"


def _reservation(raw: list[Any]) -> Reservation:
    """Jobs from reserve.lua's reply: {next_at, reserved_at, lease_until, then 7 fields a job}."""
    if not raw:
        return Reservation(jobs=[], next_available_at=None)  # the queue is paused
    reserved_at, lease_until = float(raw[1]), float(raw[2])
    jobs: list[Job] = []
    for i in range(3, len(raw), 7):
        job = Job.from_spec(raw[i + 1])
        job.state = JobState.RESERVED
        job.attempts = int(raw[i + 2])
        job.exceptions = int(raw[i + 3] or 0)
        job.available_at = float(raw[i + 4])
        job.error = _error(raw[i + 5])
        job.reservation = raw[i + 6]
        job.reserved_at = reserved_at
        job.lease_until = lease_until
        jobs.append(job)
    return Reservation(jobs=jobs, next_available_at=_opt_float(raw[0]))


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _error_json(error: ErrorInfo) -> str:
    return _dumps(error.to_dict())


def _waiting_state(available_at: float, now: float) -> JobState:
    return JobState.DELAYED if available_at > now else JobState.PENDING


def _job_from_hash(values: Sequence[str | None], now: float) -> Job | None:
    """A job from ``HMGET`` of ``JOB_FIELDS``; None when the hash is gone."""
    spec, state, attempts, exceptions, available_at, reserved_at, token, lease, finished, runtime, error = (
        values
    )
    if not spec:
        return None
    job = Job.from_spec(spec)
    job.attempts = int(attempts or 0)
    job.exceptions = int(exceptions or 0)
    job.available_at = float(available_at or 0.0)
    job.state = JobState(state) if state else JobState.PENDING
    if job.state in (JobState.PENDING, JobState.DELAYED):
        job.state = _waiting_state(job.available_at, now)
    job.reserved_at = _opt_float(reserved_at)
    job.reservation = token or None
    job.lease_until = _opt_float(lease)
    job.finished_at = _opt_float(finished)
    job.runtime_s = _opt_float(runtime)
    job.error = _error(error)
    return job


def _redis_kwargs(url: str) -> tuple[str, dict[str, Any]]:
    """The URL without docmill's query options (redis-py rejects unknown ones) and without
    ``socket_timeout`` (the backend applies it itself, see ``connect``), and the kept options."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k in URL_QUERY_ARGUMENT_PARSERS]
    passed = [(k, v) for k, v in kept if k != "socket_timeout"]
    return parts._replace(query=urlencode(passed)).geturl(), dict(kept)


class RedisBackend(Backend):
    """Jobs in Redis; see ``redis_lua/_keys.lua`` for the key schema."""

    def __init__(self, url: str, settings: BackendSettings) -> None:
        self.url = url
        self.settings = settings
        self._prefix = settings.prefix
        self._sources = _load_sources()
        self._shas: dict[str, str] = {}
        self._registered: dict[str, float] = {}  # queue -> when this process last added it
        self._redis: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None
        self._fast: Connections | None = None  # the hot paths' connections (redis_wire.py)
        self._fast_blocking: Connections | None = None
        self._timeout_s = DEFAULT_TIMEOUT_S

    # ------------------------------------------------------------ keys
    def _base(self, queue: str) -> str:
        return f"{self._prefix}:q:{{{key_part(queue)}}}"

    def _job_key(self, queue: str, job_id: str) -> str:
        return f"{self._base(queue)}:job:{job_id}"

    def _notify_key(self, queue: str) -> str:
        return f"{self._prefix}:{{wake}}:q:{key_part(queue)}"

    def _wake_key(self, worker_id: str) -> str:
        return f"{self._prefix}:{{wake}}:worker:{worker_id}"

    @property
    def _queues_key(self) -> str:
        return f"{self._prefix}:queues"

    def _hb_key(self, kind: str, member: str | None = None) -> str:
        key = f"{self._prefix}:hb:{kind}"
        return key if member is None else f"{key}:{member}"

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        if self._redis is not None:
            return
        url, query = _redis_kwargs(self.url)
        # A dead server must not hang a worker: every call but the blocking wait has a deadline
        # (``socket_timeout`` in the URL, 30 s by default). The backend sets it around each call
        # itself, because redis-py enforces its own socket_timeout with ``asyncio.wait_for`` on
        # every send (a task and a timer per command) and a timeout block on every reply.
        try:
            self._timeout_s = float(query.get("socket_timeout") or DEFAULT_TIMEOUT_S)
        except ValueError as exc:
            raise ConfigurationError(
                f"queue URL {mask_url(self.url)}: socket_timeout is not a number"
            ) from exc
        options: dict[str, Any] = {"decode_responses": True, "socket_timeout": None}
        if "socket_connect_timeout" not in query:
            options["socket_connect_timeout"] = 5.0
        try:
            command = aioredis.Redis.from_url(url, **options)
        except ValueError as exc:
            raise ConfigurationError(
                f"queue URL {mask_url(self.url)} is not a valid Redis URL: {exc}"
            ) from exc
        use_c_packing(command)
        try:
            async with asyncio.timeout(self._timeout_s):
                await command.execute_command("PING")
                await self._load_scripts(command)
        except (rexc.RedisError, TimeoutError) as exc:
            await command.aclose()
            reason = str(exc).rstrip(".") or f"no answer within {self._timeout_s:g} s"
            raise BackendUnavailable(
                f"cannot use the Redis queue backend at {mask_url(self.url)}: {reason}"
            ) from exc
        self._redis = command
        # Its BLPOP legitimately blocks for its whole timeout: no deadline on this one.
        self._blocking = aioredis.Redis.from_url(url, **options)
        use_c_packing(self._blocking)
        self._fast = Connections(command)
        self._fast_blocking = Connections(self._blocking)
        try:
            await self._upgrade_keys()
        except (rexc.RedisError, TimeoutError) as exc:
            await self.close()
            raise BackendUnavailable(
                f"cannot move the queue keys at {mask_url(self.url)} to the current key schema: {exc}"
            ) from exc

    async def _upgrade_keys(self) -> None:
        """Move every known queue's keys from the first key schema ("Upgrading" in _keys.lua).

        Runs once per Redis database: ``P:schema`` says it is done. Idempotent and safe to
        run from several processes at once (each queue's move is one script).
        """
        schema_key = f"{self._prefix}:schema"
        if await self._cmd("GET", schema_key) == SCHEMA:
            return
        for queue in await self._known_queues():
            old_base = f"{self._prefix}:{{{queue}}}"
            pattern = _glob_escape(old_base) + ":*"
            suffixes = [key[len(old_base) + 1 :] async for key in self._scan(pattern)]
            for i in range(0, len(suffixes), CHUNK):
                chunk = suffixes[i : i + CHUNK]
                await self._send([("EVALSHA", self._shas["migrate"], 1, self._base(queue), old_base, *chunk)])
        old_wakeups = [key async for key in self._scan(_glob_escape(f"{self._prefix}:{{notify}}:") + "*")]
        for i in range(0, len(old_wakeups), CHUNK):
            await self._cmd("UNLINK", *old_wakeups[i : i + CHUNK])
        await self._cmd("SET", schema_key, SCHEMA)

    async def _scan(self, pattern: str) -> AsyncIterator[str]:
        cursor = "0"
        while True:
            cursor, keys = await self._cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            for key in keys:
                yield key
            if str(cursor) == "0":
                return

    async def close(self) -> None:
        for connections in (self._fast, self._fast_blocking):
            if connections is not None:
                await connections.close()
        for client in (self._redis, self._blocking):
            if client is not None:
                await client.aclose()
        self._redis = self._blocking = None
        self._fast = self._fast_blocking = None

    def _connections(self, connections: Connections | None) -> Connections:
        if connections is None:
            raise BackendError(f"the Redis backend at {mask_url(self.url)} is not connected; call connect()")
        return connections

    @property
    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise BackendError(f"the Redis backend at {mask_url(self.url)} is not connected; call connect()")
        return self._redis

    async def _load_scripts(self, client: aioredis.Redis) -> None:
        for name, source in self._sources.items():
            self._shas[name] = client.register_script(source).sha
        pipe = client.pipeline(transaction=False)
        for source in self._sources.values():
            pipe.script_load(source)
        async with asyncio.timeout(self._timeout_s):
            await pipe.execute()

    async def _cmd(self, *args: Any) -> Any:
        async with asyncio.timeout(self._timeout_s):
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _eval(self, script: str, queue: str, *args: Any) -> Any:
        return (await self._send([self._evalsha_command(script, queue, *args)]))[0]

    async def _pipeline(self, build: Callable[[Any], object]) -> list[Any]:
        """Run the commands ``build`` adds to a non-transactional pipeline, in one round trip."""
        for attempt in (1, 2):
            pipe = self._client.pipeline(transaction=False)
            build(pipe)
            try:
                async with asyncio.timeout(self._timeout_s):
                    result: list[Any] = await pipe.execute()
                return result
            except rexc.NoScriptError:
                if attempt == 2:
                    raise
                await self._load_scripts(self._client)
        raise AssertionError("unreachable")

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Raw replies of ``commands`` (scripts, plain commands) sent in one round trip without
        a redis-py pipeline: the hot paths' version of ``_pipeline``."""
        for attempt in (1, 2):
            async with asyncio.timeout(self._timeout_s):
                replies = await round_trip(self._connections(self._fast), commands)
            errors = [reply for reply in replies if isinstance(reply, rexc.ResponseError)]
            if not errors:
                return replies
            if attempt == 2 or not isinstance(errors[0], rexc.NoScriptError):
                raise errors[0]
            await self._load_scripts(self._client)  # Redis restarted or SCRIPT FLUSH: load, send again
        raise AssertionError("unreachable")

    def _evalsha_command(self, script: str, queue: str, *args: Any) -> tuple[Any, ...]:
        return ("EVALSHA", self._shas[script], 1, self._base(queue), *args)

    def _evalsha(self, pipe: Any, script: str, queue: str, *args: Any) -> None:
        pipe.execute_command(*self._evalsha_command(script, queue, *args))

    def _notify_command(self, queue: str, tokens: int = 1) -> tuple[Any, ...]:
        count = max(1, min(tokens, NOTIFY_TOKENS))
        args = (count, NOTIFY_TOKENS, NOTIFY_TTL_S * 1000)
        return ("EVALSHA", self._shas["notify"], 1, self._notify_key(queue), *args)

    def _notify(self, pipe: Any, queue: str, tokens: int = 1) -> None:
        pipe.execute_command(*self._notify_command(queue, tokens))

    def _register_queues_command(self, queues: Iterable[str]) -> tuple[Any, ...] | None:
        """Add queue names to the known-queues set, at most once a minute per name and process.

        Dispatch is the hot path; the set only changes when a new queue appears. The minute's
        refresh puts names back after a Redis restart that lost the set.
        """
        now = time.monotonic()
        stale = [q for q in queues if now - self._registered.get(q, -REGISTER_EVERY_S) >= REGISTER_EVERY_S]
        if not stale:
            return None
        self._registered.update(dict.fromkeys(stale, now))
        return ("SADD", self._queues_key, *stale)

    async def _known_queues(self) -> list[str]:
        return sorted(await self._cmd("SMEMBERS", self._queues_key))

    # ------------------------------------------------------------ producing
    @_guarded
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        if not jobs:
            return []
        by_queue: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(index)
        calls = [(q, idx[i : i + CHUNK]) for q, idx in by_queue.items() for i in range(0, len(idx), CHUNK)]
        head = (_ms(self.settings.unique_lock_ttl_s), _ms(self.settings.tag_retention_s))

        commands: list[tuple[Any, ...]] = []
        for queue, indexes in calls:
            chunk = [jobs[i] for i in indexes]
            meta = [
                [job.id, job.available_at, job.attempts, job.exceptions, job.unique_key or "", job.tags]
                for job in chunk
            ]
            specs = [job.spec_json() for job in chunk]
            commands.append(self._evalsha_command("enqueue", queue, *head, _dumps(meta), *specs))
        if (register := self._register_queues_command(by_queue)) is not None:
            commands.append(register)
        commands += [self._notify_command(queue, len(indexes)) for queue, indexes in by_queue.items()]
        results = await self._send(commands)  # a retried enqueue is idempotent: ids are the job's own
        ids = [""] * len(jobs)
        for (_, indexes), stored in zip(calls, results, strict=False):
            for i, job_id in zip(indexes, stored, strict=True):
                ids[i] = job_id
        return ids

    # ------------------------------------------------------------ consuming
    @_guarded
    async def reserve(self, queue: str, *, worker_id: str, lease_s: float, limit: int = 1) -> Reservation:
        raw = await self._eval("reserve", queue, *self._reserve_args(worker_id, lease_s, limit))
        return _reservation(raw)

    @staticmethod
    def _reserve_args(worker_id: str, lease_s: float, limit: int) -> tuple[str, float, int]:
        return (worker_id, lease_s, max(1, min(limit, CHUNK)))

    @_guarded
    async def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        timeout = await self._wait_timeout(queues, timeout_s)
        if timeout > 0:
            blpop = ("BLPOP", *map(self._notify_key, queues), _blpop_timeout(timeout))
            await self._blocking_client.execute_command(*blpop)  # type: ignore[no-untyped-call]

    interrupts_waits = True

    @_guarded
    async def wait_and_reserve(
        self, queues: Sequence[str], timeout_s: float, *, worker_id: str, lease_s: float, limit: int
    ) -> Reservation | None:
        # BLPOP and the reserve script go out in one pipeline on the blocking connection.
        # Redis runs a blocked client's next command as soon as the BLPOP returns, so the
        # reservation comes back with the wake-up: no second round trip to pick up a job.
        timeout = await self._wait_timeout(queues, timeout_s)
        if timeout <= 0:
            return None
        keys = [*map(self._notify_key, queues), self._wake_key(worker_id)]
        reserve = self._evalsha_command("reserve", queues[0], *self._reserve_args(worker_id, lease_s, limit))
        blpop = ("BLPOP", *keys, _blpop_timeout(timeout))
        woken, raw = await round_trip(self._connections(self._fast_blocking), [blpop, reserve])
        if isinstance(woken, Exception):
            raise woken
        if isinstance(raw, rexc.NoScriptError):  # Redis restarted meanwhile: nothing was reserved
            await self._load_scripts(self._client)
            return None
        if isinstance(raw, Exception):
            raise raw
        return _reservation(raw)

    @_guarded
    async def interrupt_wait(self, worker_id: str) -> None:
        key = self._wake_key(worker_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.rpush(key, "1")
        pipe.pexpire(key, NOTIFY_TTL_S * 1000)  # a worker gone before it waited again leaves no key
        async with asyncio.timeout(self._timeout_s):
            await pipe.execute()

    async def _wait_timeout(self, queues: Sequence[str], timeout_s: float) -> float:
        """How long a wait may block: ``timeout_s``, or less when a delayed job comes due or a
        lease lapses first (a job may become available without an enqueue announcing it)."""
        if not queues or timeout_s <= 0:
            return 0.0

        def build(pipe: Any) -> None:
            pipe.time()
            for queue in queues:
                base = self._base(queue)
                pipe.zrange(f"{base}:waiting", 0, 0, withscores=True)
                pipe.zrange(f"{base}:reserved", 0, 0, withscores=True)
                pipe.exists(f"{base}:paused")

        (seconds, micros), *rest = await self._pipeline(build)
        now = float(seconds) + float(micros) / 1e6
        timeout = timeout_s
        for waiting, reserved, paused in zip(rest[::3], rest[1::3], rest[2::3], strict=True):
            if paused:
                continue
            if waiting:
                timeout = min(timeout, waiting[0][1] - now)
            if reserved:
                timeout = min(timeout, reserved[0][1] - now + RECLAIM_WAKE_S)
        return timeout

    @property
    def _blocking_client(self) -> aioredis.Redis:
        if self._blocking is None:
            raise BackendError(f"the Redis backend at {mask_url(self.url)} is not connected; call connect()")
        return self._blocking

    @_guarded
    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        lost: list[str] = []
        for queue, group in _by_queue(jobs, lambda job: job):
            args: list[Any] = [lease_s]
            for job in group:
                args += (job.id, job.reservation or "")
            raw = await self._eval("extend", queue, *args)
            gone = set(raw[1:])
            lease_until = float(raw[0])
            for job in group:
                if job.id not in gone:
                    job.lease_until = lease_until
            lost += raw[1:]
        return lost

    @_guarded
    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        settings = self.settings
        head = (
            _ms(settings.completed_retention_s),
            settings.completed_max,
            _ms(settings.metrics_retention_s),
        )
        ignored: list[str] = []
        for queue, group in _by_queue(completions, lambda done: done.job):
            batch = [[d.job.id, d.job.reservation or "", d.runtime_s, d.wait_s] for d in group]
            ignored += await self._eval("complete", queue, *head, _dumps(batch))
        return ignored

    @_guarded
    async def retry_later(
        self,
        job: Job,
        *,
        delay_s: float,
        error: ErrorInfo | None,
        count_exception: bool,
        refund_attempt: bool,
    ) -> bool:
        delay_s = max(0.0, delay_s)
        args = (
            job.id,
            job.reservation or "",
            delay_s,
            _error_json(error) if error else "",
            int(count_exception),
            int(refund_attempt),
        )

        def build(pipe: Any) -> None:
            self._evalsha(pipe, "retry_later", job.queue, *args)
            self._notify(pipe, job.queue)

        return bool((await self._pipeline(build))[0])

    @_guarded
    async def record_progress(self, job: Job) -> bool:
        return bool(await self._eval("record_progress", job.queue, job.id, job.reservation or ""))

    @_guarded
    async def fail(self, job: Job, error: ErrorInfo, *, count_exception: bool = False) -> bool:
        retention_ms = _ms(self.settings.metrics_retention_s)
        args = (job.id, job.reservation or "", _error_json(error), retention_ms, int(count_exception))
        return bool(await self._eval("fail", job.queue, *args))

    # ------------------------------------------------------------ failed store
    @_guarded
    async def failed_count(self, queue: str | None = None) -> int:
        queues = [queue] if queue is not None else await self._known_queues()
        counts = await self._pipeline(lambda pipe: [pipe.zcard(f"{self._base(q)}:failed") for q in queues])
        return sum(int(n) for n in counts)

    async def _failed_ids(
        self, queue: str | None, count: int, *, newest_first: bool, skip: int = 0
    ) -> list[tuple[str, str, float]]:
        """Up to ``count`` (queue, id, failed_at) in failure order after the first ``skip``,
        merged across queues. One queue's page is read as it is stored (a deep page costs no
        more than the first); several queues' are merged from the head of each."""
        queues = [queue] if queue is not None else await self._known_queues()
        one = len(queues) == 1
        start, stop = (skip if one else 0), skip + count - 1

        def build(pipe: Any) -> None:
            for q in queues:
                pipe.zrange(f"{self._base(q)}:failed", start, stop, desc=newest_first, withscores=True)

        merged = [
            (q, job_id, score)
            for q, rows in zip(queues, await self._pipeline(build), strict=True)
            for job_id, score in rows
        ]
        merged.sort(key=lambda row: (row[2], row[1]), reverse=newest_first)
        return merged[0 if one else skip :][:count]

    @_guarded
    async def failed_page(self, queue: str | None = None, *, offset: int = 0, limit: int = 50) -> list[Job]:
        if limit <= 0:
            return []
        rows = await self._failed_ids(queue, limit, newest_first=True, skip=offset)
        return await self._fetch([(q, job_id) for q, job_id, _ in rows])

    @_guarded
    async def oldest_failed_ids(self, queue: str | None = None, *, limit: int = 500) -> list[str]:
        if limit <= 0:
            return []
        return [job_id for _, job_id, _ in await self._failed_ids(queue, limit, newest_first=False)]

    @_guarded
    async def retry_failed(self, job_ids: Sequence[str]) -> int:
        located = await self._locate(job_ids)
        moved = 0
        for queue, ids in located.items():
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]

                def build(pipe: Any, queue: str = queue, chunk: list[str] = chunk) -> None:
                    self._evalsha(pipe, "retry_failed", queue, _ms(self.settings.unique_lock_ttl_s), *chunk)
                    self._notify(pipe, queue, len(chunk))

                moved += int((await self._pipeline(build))[0])
        return moved

    @_guarded
    async def forget_failed(self, job_id: str) -> bool:
        located = await self._locate([job_id])
        return any([await self._eval("forget_failed", queue, job_id) for queue in located])

    @_guarded
    async def flush_failed(self, queue: str | None = None, *, older_than_s: float | None = None) -> int:
        queues = [queue] if queue is not None else await self._known_queues()
        older = "" if older_than_s is None else older_than_s
        return sum([await self._drain("flush_failed", q, older, CHUNK) for q in queues])

    async def _drain(self, script: str, queue: str, *args: Any) -> int:
        """Call a script that deletes up to CHUNK items until it deletes fewer."""
        total = 0
        while True:
            n = int(await self._eval(script, queue, *args))
            total += n
            if n < CHUNK:
                return total

    # ------------------------------------------------------------ control
    @_guarded
    async def pause(self, queue: str) -> None:
        await self._pipeline(
            lambda pipe: (pipe.set(f"{self._base(queue)}:paused", "1"), pipe.sadd(self._queues_key, queue))
        )

    @_guarded
    async def resume(self, queue: str) -> None:
        def build(pipe: Any) -> None:
            pipe.delete(f"{self._base(queue)}:paused")
            self._notify(pipe, queue)

        await self._pipeline(build)

    @_guarded
    async def paused_queues(self) -> set[str]:
        queues = await self._known_queues()
        flags = await self._pipeline(lambda pipe: [pipe.exists(f"{self._base(q)}:paused") for q in queues])
        return {q for q, flag in zip(queues, flags, strict=True) if flag}

    @_guarded
    async def clear(self, queue: str) -> int:
        return await self._drain("clear", queue, CHUNK)

    @_guarded
    async def request_restart(self) -> float:
        seconds, micros = await self._cmd("TIME")
        at = int(seconds) + int(micros) / 1e6
        await self._cmd("SET", f"{self._prefix}:restart", repr(at))
        return at

    @_guarded
    async def restart_requested_at(self) -> float | None:
        return _opt_float(await self._cmd("GET", f"{self._prefix}:restart"))

    # ------------------------------------------------------------ observability
    @_guarded
    async def queues(self) -> list[str]:
        return await self._known_queues()

    @_guarded
    async def stats(self, queue: str) -> QueueStats:
        pending, delayed, reserved, failed, paused, oldest, now = await self._eval("stats", queue)
        return QueueStats(
            queue=queue,
            pending=int(pending),
            delayed=int(delayed),
            reserved=int(reserved),
            failed=int(failed),
            paused=bool(paused),
            oldest_pending_age_s=max(0.0, float(now) - float(oldest)) if oldest else None,
        )

    @_guarded
    async def metrics(self, queue: str, *, minutes: int = 60) -> list[MinuteMetrics]:
        if minutes <= 0:
            return []
        raw = await self._eval("metrics", queue, minutes)
        return [
            MinuteMetrics(
                minute=int(raw[i]),
                completed=int(raw[i + 1]),
                failed=int(raw[i + 2]),
                runtime_s_total=float(raw[i + 3]) / 1000,
                wait_s_total=float(raw[i + 4]) / 1000,
            )
            for i in range(0, len(raw), 5)
        ]

    @_guarded
    async def recent_completed(self, queue: str, *, limit: int = 50) -> list[Job]:
        if limit <= 0:
            return []
        key = f"{self._base(queue)}:completed"
        horizon = time.time() - self.settings.completed_retention_s
        ids = await self._cmd("ZRANGE", key, "+inf", f"({horizon!r}", "BYSCORE", "REV", "LIMIT", 0, limit)
        return await self._fetch([(queue, job_id) for job_id in ids])

    @_guarded
    async def pending_page(self, queue: str, *, offset: int = 0, limit: int = 50) -> list[Job]:
        if limit <= 0:
            return []
        start = max(0, offset)
        # :waiting orders by available_at, then id (equal scores sort by member): reserve's order.
        ids = await self._cmd("ZRANGE", f"{self._base(queue)}:waiting", start, start + limit - 1)
        jobs = await self._fetch([(queue, job_id) for job_id in ids])
        return [job for job in jobs if job.state in WAITING]  # reserved since the ZRANGE: gone

    @_guarded
    async def get(self, job_id: str) -> Job | None:
        queues = await self._known_queues()
        rows = await self._pipeline(
            lambda pipe: [pipe.hmget(self._job_key(q, job_id), JOB_FIELDS) for q in queues]
        )
        now = time.time()
        for row in rows:
            job = _job_from_hash(row, now)
            if job is not None:
                return job
        return None

    @_guarded
    async def find_by_tag(self, tag: str, *, limit: int = 100) -> list[Job]:
        queues = await self._known_queues()
        tagged = await self._pipeline(
            lambda pipe: [pipe.smembers(f"{self._base(q)}:tag:{tag}") for q in queues]
        )
        refs = [(q, job_id) for q, ids in zip(queues, tagged, strict=True) for job_id in ids]
        found = await self._fetch(refs)
        held = {job.id for job in found}
        gone = [(q, job_id) for q, job_id in refs if job_id not in held]
        if gone:  # keep busy tags (whose TTL keeps being refreshed) from growing forever
            await self._pipeline(lambda pipe: [pipe.srem(f"{self._base(q)}:tag:{tag}", i) for q, i in gone])
        found.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        return found[:limit] if limit > 0 else []

    async def _fetch(self, refs: Sequence[tuple[str, str]]) -> list[Job]:
        """The jobs named by (queue, id), in that order, skipping those no longer held."""
        if not refs:
            return []
        rows = await self._pipeline(
            lambda pipe: [pipe.hmget(self._job_key(q, job_id), JOB_FIELDS) for q, job_id in refs]
        )
        now = time.time()
        return [job for row in rows if (job := _job_from_hash(row, now)) is not None]

    async def _locate(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """queue -> the given ids whose job hash lives in that queue."""
        queues = await self._known_queues()
        refs = [(q, job_id) for job_id in dict.fromkeys(job_ids) for q in queues]
        if not refs:
            return {}
        found = await self._pipeline(lambda pipe: [pipe.exists(self._job_key(q, i)) for q, i in refs])
        located: dict[str, list[str]] = {}
        for (queue, job_id), exists in zip(refs, found, strict=True):
            if exists:
                located.setdefault(queue, []).append(job_id)
        return located

    # ------------------------------------------------------------ heartbeats
    # ------------------------------------------------------------ flags
    @_guarded
    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        key = f"{self._prefix}:flag:{name}"
        if data is None:
            await self._cmd("DEL", key)
        else:
            await self._cmd("SET", key, json.dumps(dict(data), default=str))

    @_guarded
    async def get_flag(self, name: str) -> dict[str, Any] | None:
        value = await self._cmd("GET", f"{self._prefix}:flag:{name}")
        return None if value is None else dict(json.loads(value))

    # ------------------------------------------------------------ rate limits
    @_guarded
    async def rate_take(
        self,
        key: str,
        costs: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> float:
        args: list[Any] = [repr(float(window_s)), len(costs)]
        for name, cost in costs.items():
            args += [name, repr(float(cost)), repr(float(capacities[name]))]
        # The buckets get their own hash tag ("rate~<key>"), never a queue's.
        return float(await self._eval("rate_take", f"rate~{key}", *args))

    @_guarded
    async def rate_settle(
        self,
        key: str,
        charges: Mapping[str, float],
        capacities: Mapping[str, float],
        window_s: float,
    ) -> None:
        args: list[Any] = [repr(float(window_s)), len(charges)]
        for name, charge in charges.items():
            args += [name, repr(float(charge)), repr(float(capacities[name]))]
        await self._eval("rate_settle", f"rate~{key}", *args)

    # ------------------------------------------------------------ counters
    def _counter_key(self, key: str, minute: int) -> str:
        return f"{self._prefix}:{{count~{key}}}:{minute}"

    @_guarded
    async def counter_add(self, key: str, field: str, amount: int = 1) -> None:
        # The minute comes from this host's clock: a few seconds of skew only move an
        # addition into the next minute's count, which every reader sums anyway.
        minute_key = self._counter_key(key, minute_of(time.time()))

        def build(pipe: Any) -> None:
            pipe.hincrby(minute_key, field, amount)
            pipe.pexpire(minute_key, _ms(COUNTER_RETENTION_S))

        await self._pipeline(build)

    @_guarded
    async def counter_totals(self, key: str, minutes: int) -> dict[str, int]:
        now = time.time()
        first = max(first_minute(now, minutes), minute_of(now - COUNTER_RETENTION_S))
        starts = range(first, minute_of(now) + 1, 60)
        rows = await self._pipeline(lambda pipe: [pipe.hgetall(self._counter_key(key, m)) for m in starts])
        totals: dict[str, int] = {}
        for row in rows:
            for field, count in row.items():
                totals[field] = totals.get(field, 0) + int(count)
        return totals

    @_guarded
    async def put_heartbeat(self, kind: str, member: str, data: Mapping[str, Any], ttl_s: float) -> None:
        index, ttl_ms = self._hb_key(kind), _ms(ttl_s)

        def build(pipe: Any) -> None:
            pipe.set(self._hb_key(kind, member), json.dumps(dict(data), default=str), px=ttl_ms)
            pipe.zadd(index, {member: time.time() + ttl_s})
            # The index lives as long as its longest-lived member.
            pipe.pexpire(index, ttl_ms, nx=True)
            pipe.pexpire(index, ttl_ms, gt=True)

        await self._pipeline(build)

    @_guarded
    async def heartbeats(self, kind: str) -> list[dict[str, Any]]:
        members: list[str] = await self._cmd("ZRANGE", self._hb_key(kind), 0, -1)
        if not members:
            return []
        # The data key's own TTL decides liveness; the index only enumerates.
        values = await self._cmd("MGET", *[self._hb_key(kind, m) for m in members])
        gone = [m for m, value in zip(members, values, strict=True) if value is None]
        if gone:
            await self._cmd("ZREM", self._hb_key(kind), *gone)
        live = sorted((m, value) for m, value in zip(members, values, strict=True) if value is not None)
        return [json.loads(value) for _, value in live]

    @_guarded
    async def delete_heartbeat(self, kind: str, member: str) -> None:
        await self._pipeline(
            lambda pipe: (pipe.delete(self._hb_key(kind, member)), pipe.zrem(self._hb_key(kind), member))
        )


T = TypeVar("T")


def _by_queue(items: Iterable[T], job_of: Callable[[T], Job]) -> list[tuple[str, list[T]]]:
    """Items grouped by their job's queue, in chunks of at most CHUNK, order kept per queue."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(job_of(item).queue, []).append(item)
    return [(q, group[i : i + CHUNK]) for q, group in groups.items() for i in range(0, len(group), CHUNK)]
