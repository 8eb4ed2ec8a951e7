"""Handlers get their dependencies from the worker that runs them (arq's ``ctx``).

A registry's start-up hooks run before the first job, its shut-down hooks after the last;
a handler or failure hook registered with ``context=True`` receives the worker's
``WorkerContext``, whose backend and client are the worker's own.
"""

from __future__ import annotations

from typing import Any

from docmill.queue import (
    Client,
    ConfigurationError,
    ErrorInfo,
    Fail,
    Job,
    JobState,
    Registry,
    WorkerContext,
    WorkerOptions,
)
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.events import CapturedEventLog
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker
from docmill.queue.worker_main import load_apps


def make_worker(backend: MemoryBackend, registry: Registry) -> Worker:
    return Worker(
        backend,
        registry,
        WorkerOptions(sleep_s=0.05, stop_when_empty=True, memory_mb=0),
        log=CapturedEventLog(),
        worker_id="w-1",
    )


async def test_hooks_run_around_the_jobs_and_handlers_receive_the_workers_context() -> None:
    # Given a registry whose start-up hook opens a resource its handlers use
    backend, registry, seen = MemoryBackend(), Registry(), []

    @registry.on_startup
    async def open_resource(ctx: WorkerContext) -> None:
        seen.append(("startup", ctx.worker_id))
        ctx.state["resource"] = "opened"

    @registry.on_shutdown
    def close_resource(ctx: WorkerContext) -> None:  # sync hooks work too
        seen.append(("shutdown", ctx.state.pop("resource")))

    @registry.handler(name="uses", context=True)
    async def uses(ctx: WorkerContext, value: int) -> None:
        seen.append(("job", ctx.state["resource"], value, ctx.backend is backend))

    await backend.connect()
    await Client(backend, registry).dispatch("uses", 7)

    # When the worker runs until the queue is empty
    reason = await make_worker(backend, registry).run()

    # Then the hooks ran once each, around the job, and the job saw the worker's backend
    assert reason is WorkerStopReason.EMPTY
    assert seen == [("startup", "w-1"), ("job", "opened", 7, True), ("shutdown", "opened")]


async def test_a_job_dispatched_through_the_context_goes_to_the_workers_backend() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.handler(name="first", context=True)
    async def first(ctx: WorkerContext) -> None:
        await ctx.client.dispatch("second")

    @registry.handler(name="second")
    async def second() -> None:
        return None

    await backend.connect()
    first_id = await Client(backend, registry).dispatch("first")
    worker = make_worker(backend, registry)

    await worker.run()

    done = [e["name"] for e in worker.log.events("job.done")]  # type: ignore[attr-defined]
    assert done == ["first", "second"]
    first_job = await backend.get(first_id)
    assert first_job is not None and first_job.state is JobState.COMPLETED


async def test_a_sync_handler_gets_the_context_in_its_thread() -> None:
    backend, registry, seen = MemoryBackend(), Registry(), []

    @registry.handler(name="sync", context=True)
    def sync(ctx: WorkerContext, value: str) -> None:
        seen.append((ctx.worker_id, value))

    await backend.connect()
    await Client(backend, registry).dispatch("sync", "x")
    await make_worker(backend, registry).run()

    assert seen == [("w-1", "x")]


async def test_a_failure_hook_that_asks_for_it_receives_the_context() -> None:
    backend, registry, seen = MemoryBackend(), Registry(), []

    @registry.handler(name="doomed")
    async def doomed() -> None:
        raise Fail("no retry can help")

    @registry.on_failed("doomed", context=True)
    async def record(ctx: WorkerContext, job: Job, error: ErrorInfo) -> None:
        seen.append((ctx.worker_id, job.name, error.type))

    await backend.connect()
    job_id = await Client(backend, registry).dispatch("doomed")
    await make_worker(backend, registry).run()

    assert seen == [("w-1", "doomed", "Fail")]
    job = await backend.get(job_id)
    assert job is not None and job.state is JobState.FAILED


async def test_a_start_up_hook_with_a_configuration_error_is_a_boot_failure_and_takes_no_job() -> None:
    backend, registry, ran = MemoryBackend(), Registry(), []

    @registry.on_startup
    def bad(ctx: WorkerContext) -> None:
        raise ConfigurationError("DATABASE_URL names no known database")

    @registry.on_shutdown
    def cleanup(ctx: WorkerContext) -> None:
        ran.append("cleanup")

    @registry.handler(name="job")
    async def job() -> None:
        ran.append("job")

    await backend.connect()
    job_id = await Client(backend, registry).dispatch("job")
    worker = make_worker(backend, registry)

    reason = await worker.run()

    assert reason is WorkerStopReason.BOOT_FAILURE
    assert ran == ["cleanup"]
    [failed] = worker.log.events("worker.startup_failed")  # type: ignore[attr-defined]
    assert failed["error"] == "ConfigurationError: DATABASE_URL names no known database"
    pending = await backend.get(job_id)
    assert pending is not None and pending.state is JobState.PENDING


async def test_a_start_up_hook_that_cannot_reach_a_dependency_asks_for_a_restart() -> None:
    backend, registry = MemoryBackend(), Registry()

    @registry.on_startup
    async def unreachable(ctx: WorkerContext) -> None:
        raise ConnectionRefusedError("database is not up yet")

    await backend.connect()

    assert await make_worker(backend, registry).run() is WorkerStopReason.BACKEND_LOST


def test_a_worker_given_several_apps_runs_every_apps_hooks(tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "app_one.py").write_text(
        "from docmill.queue import Registry\nregistry = Registry()\n"
        "@registry.on_startup\ndef one(ctx): pass\n"
        "@registry.handler(name='one.job', context=True)\nasync def job(ctx): pass\n"
    )
    (tmp_path / "app_two.py").write_text(
        "from docmill.queue import Registry\nregistry = Registry()\n"
        "@registry.on_shutdown\ndef two(ctx): pass\n"
    )
    monkeypatch.chdir(tmp_path)

    merged = load_apps(["app_one:registry,app_two:registry"])

    assert [h.__name__ for h in merged.startup_hooks] == ["one"]
    assert [h.__name__ for h in merged.shutdown_hooks] == ["two"]
    assert merged.get("one.job").takes_context
