"""The pipeline's worker processes: start time, resident memory at boot and after 100 documents,
and how often the pools' default memory limit recycles them.

    uv run python bench/worker_memory.py --label before --save /tmp/wm-before.json
    uv run python bench/worker_memory.py --label after --save /tmp/wm-after.json
    uv run python bench/worker_memory.py --compare /tmp/wm-before.json /tmp/wm-after.json
    uv run python bench/worker_memory.py --docs 20 --boots 1 --passes growth   # quicker

Every run uses a fresh directory: an SQLite queue (``DOCMILL_QUEUE_URL``), the documents
database (``DATABASE_URL``) and files (``DOCMILL_STORAGE``) under it, all three set
explicitly, with a real key (``CLAUDE_API_KEY``) and ``ANTHROPIC_BASE_URL`` pointed at the
Messages API emulator (``docmill.testing``), so processing goes through the real ``anthropic``
SDK. Uploads carry ``auto_approve`` and a ``callback_url`` on a local receiver
(``DOCMILL_WEBHOOK_ALLOW_PRIVATE=1``), so every document makes one job on each of the three
default pools: ``document-analysis``, ``document-processing``, ``default`` (its webhook).

Workers run with the command line ``docmill supervise`` gives them (``worker_command`` of the
default pools: ``docmill queue work --app docmill.documents.jobs:registry --queue <q>
--concurrency 1 --timeout 300 --tries 3 --sleep 3 --max-time 3600 --max-jobs 0 --memory 128
...``), spawned from the ``docmill`` script beside this interpreter, never through ``uv run``
(whose process would be a parent, not the worker). Memory is the VmRSS of the pid the worker
writes in its ``worker.started`` line, read from ``/proc/<pid>/status``; a worker with a
different pid than the spawned one is reported. This script restarts the workers itself,
as the supervisor does, so each exit is seen with its code: 12 is a memory recycle.

1. **boot** (``--boots`` rounds after one unmeasured round, in which the workers write
   their bytecode; recycling off so that one job runs): one document is uploaded, then one
   worker per pool is started in pipeline order (analysis, processing, webhook), each alone,
   and stopped after its first job. Printed per pool: spawn to
   ``worker.started``, spawn to the end of the first job, that job's runtime, RSS at
   ``worker.started`` and right after the first job.
2. **growth** (``--memory 0``): the default pools at their default sizes (default x2,
   document-analysis x1, document-processing x2) take ``--docs`` documents; RSS of every
   worker is sampled every ``--sample`` seconds. Printed per pool: RSS at boot, after its
   first job, at the end (after the documents), and the highest sample, with the documents'
   wall time.
3. **recycle**: the same with each pool's default ``memory_mb`` (``PoolConfig``), or with
   ``--recycle-mb`` (``--recycle-mb 128``: the default before it was raised): how many times
   each pool's workers exited for memory (code 12) and were started again, and the wall time.

Nothing is asserted: the figures and the settings they ran with are printed (``--json``
and ``--save`` for the raw numbers). The machine's load average is printed at the start and
the end of each phase: other work on the host moves the timings, not the memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.server
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from docmill.documents.context import DocumentContext
from docmill.documents.models import Document
from docmill.documents.settings import DocumentSettings
from docmill.supervisor.command import worker_command
from docmill.supervisor.config import PoolConfig, SupervisorConfig
from docmill.testing import AnthropicEmulator, EmulatorConfig, RateLimits

APP = "docmill.documents.jobs:registry"
MODEL = "claude-haiku-4-5"
POOLS = ("document-analysis", "document-processing", "default")  # pipeline order
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "documents"
# The samples that complete (the truncated PDF fails at analysis and makes no processing job).
SAMPLES = (
    "meeting-notes.md",
    "procurement-report-ru.txt",
    "quarterly-report.pdf",
    "racking-agreement.docx",
    "shipping-terms.html",
)
MEMORY_EXIT = 12
# Inherited variables that would change what the workers do; the run sets its own.
DROPPED_PREFIXES = ("DOCMILL_", "DOCUMENT_", "ANALYSIS_JOB_", "PROCESSING_JOB_", "CLAUDE_", "ANTHROPIC_")
DROPPED = {"DATABASE_URL", "QUEUE_CONNECTION", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"}


def seed_pools() -> dict[str, dict[str, Any]]:
    """The default pools ``docmill supervise`` runs (name -> queues, processes); every other
    setting is ``PoolConfig``'s default, as it is when ``docmill.toml`` sets nothing."""
    try:
        from docmill.documents.pools import SEED_POOLS
    except ImportError:  # older layout: the supervisor held them
        from docmill.supervisor.config import SEED_POOLS  # type: ignore[attr-defined,no-redef]

        return {name: {"queues": (name,), "processes": n} for name, n in SEED_POOLS.items()}
    return {name: dict(spec) for name, spec in SEED_POOLS.items()}


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB (the unit the worker's ``--memory`` check uses)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------------- one worker process
@dataclass
class Worker:
    """One spawned worker: its log lines are read by a thread that notes times and RSS."""

    pool: str
    popen: subprocess.Popen[bytes]
    spawned: float
    log_path: Path
    pid: int | None = None  # from worker.started
    started_s: float | None = None  # spawn -> worker.started
    boot_rss: float | None = None
    first_job_s: float | None = None  # spawn -> the first job's end
    first_job_runtime_ms: float | None = None
    first_job_rss: float | None = None
    runtimes_ms: list[float] = field(default_factory=list)
    jobs: int = 0
    releases: int = 0  # jobs put back without an attempt spent (rate limits)
    peak_rss: float = 0.0
    last_rss: float | None = None
    exit_code: int | None = None
    stop_reason: str | None = None
    started_event: threading.Event = field(default_factory=threading.Event)
    job_event: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def read(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("ab") as log, self.popen.stdout as out:
            for raw in iter(out.readline, b""):
                now = time.monotonic()
                log.write(raw)
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(line, dict):
                    continue
                event = line.get("event")
                if event == "worker.started":
                    self.pid = int(line.get("pid") or self.popen.pid)
                    self.boot_rss = rss_mb(self.pid)
                    self.started_s = now - self.spawned
                    self.started_event.set()
                elif event in ("job.done", "job.failed", "job.released"):
                    rss = rss_mb(self.pid or self.popen.pid)
                    if event == "job.released":
                        self.releases += 1
                    else:
                        self.jobs += 1
                    runtime = line.get("runtime_ms")
                    if self.first_job_s is None:
                        self.first_job_s = now - self.spawned
                        self.first_job_rss = rss
                        self.first_job_runtime_ms = runtime
                        self.job_event.set()
                    elif isinstance(runtime, int | float):
                        self.runtimes_ms.append(float(runtime))
                elif event == "worker.stopped":
                    self.stop_reason = line.get("reason")

    def sample(self) -> float | None:
        rss = rss_mb(self.pid or self.popen.pid)
        if rss is not None:
            self.last_rss = rss
            self.peak_rss = max(self.peak_rss, rss)
        return rss

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        if self.reader is not None:
            self.reader.join(5)
        self.exit_code = self.popen.returncode
        return self.exit_code


class Runner:
    """The run's directory, environment, emulator, webhook receiver, and the workers' spawner."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="bench-worker-memory-"))
        self.logs = self.root / "logs"
        self.logs.mkdir()
        api_key = f"sk-ant-bench-{secrets.token_hex(16)}"
        self.emulator = AnthropicEmulator(
            EmulatorConfig(
                api_key=api_key,
                latency_s=args.latency,
                limits=RateLimits(1_000_000, 1_000_000_000, 1_000_000_000),
            )
        )
        self.emulator.start()
        self.hooks = 0
        self.hooks_lock = threading.Lock()
        self.receiver = self._start_receiver()
        self.api_key = api_key
        self.counter = 0
        self.workers: list[Worker] = []  # every worker spawned, stopped at the end whatever happens
        self.use_dir("boot")

    def use_dir(self, name: str) -> None:
        """A fresh queue, documents database and storage under ``root/name`` for the next phase."""
        here = self.root / name
        here.mkdir()
        self.queue_url = f"sqlite:///{here / 'queue.db'}"
        storage = here / "storage"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in DROPPED and not k.startswith(DROPPED_PREFIXES) and not k.startswith("MALLOC_")
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            DOCMILL_QUEUE_URL=self.queue_url,
            DOCMILL_STORAGE=str(storage),
            DATABASE_URL=f"sqlite:///{storage / 'docmill.db'}",
            CLAUDE_API_KEY=self.api_key,
            ANTHROPIC_BASE_URL=self.emulator.url,
            CLAUDE_DEFAULT_MODEL=MODEL,
            DOCMILL_WEBHOOK_ALLOW_PRIVATE="1",
        )
        for extra in self.args.env:
            key, _, value = extra.partition("=")
            env[key] = value
        self.env = env
        self.cwd = here
        self.settings = DocumentSettings.from_env(env)
        # Each pool as `docmill supervise` builds it with no docmill.toml: the seed's pools with
        # their own settings (memory_mb included), else PoolConfig's defaults.
        pools = {
            name: PoolConfig(
                name=name,
                queues=tuple(spec["queues"]),
                **{key: value for key, value in spec.items() if key != "queues"},
            )
            for name, spec in seed_pools().items()
        }
        self.config = SupervisorConfig(connection=self.queue_url, apps=(APP,), pools=pools)
        with self.hooks_lock:
            self.hooks = 0

    def _start_receiver(self) -> http.server.ThreadingHTTPServer:
        runner = self

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with runner.hooks_lock:
                    runner.hooks += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=server.serve_forever, daemon=True, name="webhooks").start()
        return server

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.server_address[1]}/hook"

    def pool(self, name: str, memory_mb: int | None = None) -> PoolConfig:
        pool = self.config.pools[name]
        if self.args.concurrency:
            pool = dataclasses.replace(pool, concurrency=self.args.concurrency)
        return pool if memory_mb is None else dataclasses.replace(pool, memory_mb=memory_mb)

    def argv(self, pool: PoolConfig) -> tuple[tuple[str, ...], dict[str, str]]:
        command = worker_command(self.config, pool)
        return command.argv, {**self.env, **command.env}

    def spawn(self, pool: PoolConfig) -> Worker:
        argv, env = self.argv(pool)
        self.counter += 1
        log_path = self.logs / f"{pool.name}.{self.counter}.log"
        spawned = time.monotonic()
        popen = subprocess.Popen(
            list(argv),
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(pool=pool.name, popen=popen, spawned=spawned, log_path=log_path)
        worker.reader = threading.Thread(target=worker.read, daemon=True, name=f"read-{pool.name}")
        worker.reader.start()
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            if worker.popen.poll() is None:
                worker.stop()
        self.receiver.shutdown()
        self.emulator.stop()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ documents
    def samples(self) -> Iterator[tuple[str, bytes]]:
        files = [(name, (EXAMPLES / name).read_bytes()) for name in SAMPLES]
        while True:
            yield from files

    async def upload(self, n: int) -> None:
        context = await DocumentContext.create(self.settings)  # migrates the database first
        try:
            source = self.samples()
            for _ in range(n):
                name, data = next(source)
                options = {"auto_approve": True, "callback_url": self.callback_url}
                await context.service.upload(data, name, options, force=True)
        finally:
            await context.aclose()

    async def counts(self) -> dict[str, int]:
        context = await DocumentContext.create(self.settings, migrate=False)
        try:
            by_status = select(Document.status, func.count(Document.id)).group_by(Document.status)
            rows = await context.db.run(lambda s: dict(s.execute(by_status).all()))
        finally:
            await context.aclose()
        return {str(k): int(v) for k, v in rows.items()}


# ---------------------------------------------------------------------- phases
def boot_phase(runner: Runner, rounds: int) -> list[dict[str, Any]]:
    """``rounds`` measured rounds after one that is not: the first run of each module writes
    its bytecode, and a first worker that compiles is slower and a few MB larger."""
    rows: list[dict[str, Any]] = []
    for number in range(-1, rounds):
        asyncio.run(runner.upload(1))
        for name in POOLS:
            worker = runner.spawn(runner.pool(name, memory_mb=0))
            try:
                if not worker.started_event.wait(120):
                    raise RuntimeError(f"{name}: no worker.started within 120 s (log: {worker.log_path})")
                if not worker.job_event.wait(180):
                    raise RuntimeError(f"{name}: no job ended within 180 s (log: {worker.log_path})")
            finally:
                worker.stop()
            if number < 0:
                print(f"  warm-up {name:<20} {worker.boot_rss} -> {worker.first_job_rss} MB", flush=True)
                continue
            row = {
                "round": number + 1,
                "pool": name,
                "spawned_pid": worker.popen.pid,
                "worker_pid": worker.pid,
                "started_s": worker.started_s,
                "first_job_s": worker.first_job_s,
                "first_job_runtime_ms": worker.first_job_runtime_ms,
                "boot_rss_mb": worker.boot_rss,
                "first_job_rss_mb": worker.first_job_rss,
            }
            rows.append(row)
            print(
                f"  boot {number + 1} {name:<20} started {worker.started_s:5.2f}s  first job ended "
                f"{worker.first_job_s:5.2f}s (ran {worker.first_job_runtime_ms} ms)  RSS "
                f"{worker.boot_rss:6.1f} -> {worker.first_job_rss:6.1f} MB  pid {worker.pid}"
                + ("" if worker.pid == worker.popen.pid else f" (spawned {worker.popen.pid})"),
                flush=True,
            )
    return rows


def pipeline_phase(runner: Runner, kind: str, docs: int) -> dict[str, Any]:
    """``kind`` "growth": recycling off; "recycle": each pool's default memory_mb, or
    ``--recycle-mb``."""
    limit = 0 if kind == "growth" else runner.args.recycle_mb
    pools = {name: runner.pool(name, memory_mb=limit) for name in POOLS}
    live: list[Worker] = []
    ended: list[Worker] = []
    recycles = {name: 0 for name in POOLS}
    other_exits: dict[str, list[int]] = {name: [] for name in POOLS}
    # The database exists before the workers start, as it does on every start but a deployment's
    # first: a worker that applies a migration keeps alembic loaded for its lifetime.
    asyncio.run(runner.upload(0))
    for pool in pools.values():
        live += [runner.spawn(pool) for _ in range(pool.processes)]
    for worker in live:
        if not worker.started_event.wait(120):
            raise RuntimeError(f"{worker.pool}: no worker.started within 120 s (log: {worker.log_path})")
    load_before = loadavg()
    started = time.monotonic()
    asyncio.run(runner.upload(docs))
    uploaded_s = time.monotonic() - started
    last_print = 0.0
    done = False
    counts: dict[str, int] = {}
    while True:
        for worker in list(live):
            worker.sample()
            code = worker.popen.poll()
            if code is None:
                continue
            worker.stop()
            live.remove(worker)
            ended.append(worker)
            if code == MEMORY_EXIT:
                recycles[worker.pool] += 1
            else:
                other_exits[worker.pool].append(code)
            live.append(runner.spawn(pools[worker.pool]))  # as the supervisor does: at once
        elapsed = time.monotonic() - started
        if elapsed - last_print >= 5 or done:
            counts = asyncio.run(runner.counts())
            finished = counts.get("completed", 0) + counts.get("failed", 0)
            done = finished >= docs and runner.hooks >= finished
            if elapsed - last_print >= 15:
                print(
                    f"  {kind} {elapsed:6.1f}s  {finished}/{docs} documents ended, {runner.hooks} webhooks, "
                    f"recycles {sum(recycles.values())}",
                    flush=True,
                )
                last_print = elapsed
            if done or elapsed > runner.args.timeout:
                break
        time.sleep(runner.args.sample)
    wall_s = time.monotonic() - started
    for worker in live:
        worker.sample()
    final = {w.pool: [] for w in live}  # type: dict[str, list[float]]
    for worker in live:
        if worker.last_rss is not None:
            final[worker.pool].append(worker.last_rss)
    load_after = loadavg()
    for worker in live:
        worker.stop()
    everyone = ended + live
    per_pool: dict[str, Any] = {}
    for name in POOLS:
        mine = [w for w in everyone if w.pool == name]
        boot = [w.boot_rss for w in mine if w.boot_rss is not None]
        first = [w.first_job_rss for w in mine if w.first_job_rss is not None]
        runtimes = [r for w in mine for r in w.runtimes_ms]
        per_pool[name] = {
            "processes": pools[name].processes,
            "memory_mb": pools[name].memory_mb,
            "spawns": len(mine),
            "recycles": recycles[name],
            "other_exits": other_exits[name],
            "jobs": sum(w.jobs for w in mine),
            "releases": sum(w.releases for w in mine),
            "boot_rss_mb": boot,
            "first_job_rss_mb": first,
            "final_rss_mb": final.get(name, []),
            "peak_rss_mb": max((w.peak_rss for w in mine), default=None),
            "first_job_runtime_ms": [w.first_job_runtime_ms for w in mine if w.first_job_runtime_ms],
            "later_job_runtime_ms_median": statistics.median(runtimes) if runtimes else None,
            "started_s": [w.started_s for w in mine if w.started_s is not None],
        }
    return {
        "kind": kind,
        "docs": docs,
        "completed": counts.get("completed", 0),
        "failed": counts.get("failed", 0),
        "webhooks": runner.hooks,
        "upload_s": uploaded_s,
        "wall_s": wall_s,
        "timed_out": not done,
        "load_before": load_before,
        "load_after": load_after,
        "pools": per_pool,
    }


# ---------------------------------------------------------------------- printing
def _span(values: list[float | None], fmt: str = "{:.1f}") -> str:
    got = sorted(v for v in values if v is not None)
    if not got:
        return "-"
    if len(got) == 1 or fmt.format(got[0]) == fmt.format(got[-1]):
        return fmt.format(got[0])
    return f"{fmt.format(got[0])}-{fmt.format(got[-1])}"


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(f"\n== {report['label']}: {report['when']}, git {s['git']}, Python {s['python']}")
    print(
        f"   {s['cpus']} CPUs; emulator {s['latency_s']:g} s a call; RSS sampled every {s['sample_s']:g} s; "
        f"documents: {', '.join(SAMPLES)} in turn, auto-approved, with a callback"
    )
    print(f"   worker command ({s['pool_settings']}):\n     {s['command']}")
    if s["env_extra"]:
        print(f"   extra environment: {' '.join(s['env_extra'])}")
    boots = report.get("boot") or []
    if boots:
        print(
            f"\n   Boot, one worker alone, recycling off ({len(boots) // len(POOLS)} rounds; ranges; "
            f"load {report['boot_load'][0]} -> {report['boot_load'][1]})"
        )
        print(
            "   | pool | spawn -> worker.started | spawn -> first job ended | first job ran "
            "| RSS at start | RSS after first job |"
        )
        print("   |---|---|---|---|---|---|")
        for name in POOLS:
            rows = [r for r in boots if r["pool"] == name]
            print(
                f"   | {name} | {_span([r['started_s'] for r in rows], '{:.2f}')} s "
                f"| {_span([r['first_job_s'] for r in rows], '{:.2f}')} s "
                f"| {_span([r['first_job_runtime_ms'] for r in rows], '{:.0f}')} ms "
                f"| {_span([r['boot_rss_mb'] for r in rows])} MB "
                f"| {_span([r['first_job_rss_mb'] for r in rows])} MB |"
            )
    for phase in report.get("pipeline") or []:
        limits = sorted({p["memory_mb"] for p in phase["pools"].values()})
        title = (
            "recycling off (--memory 0)"
            if phase["kind"] == "growth"
            else f"--memory {'/'.join(str(m) for m in limits)}"
        )
        print(
            f"\n   {phase['docs']} documents, the default pools, {title}: {phase['completed']} completed, "
            f"{phase['failed']} failed, {phase['webhooks']} webhooks in {phase['wall_s']:.1f} s"
            + (" (TIMED OUT)" if phase["timed_out"] else "")
            + f"; load {phase['load_before']} -> {phase['load_after']}"
        )
        print(
            "   | pool | processes | memory_mb | jobs | RSS at boot | after first job | after the documents "
            "| highest | recycles for memory | other exits | jobs released | later jobs' median runtime |"
        )
        print("   |---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in POOLS:
            p = phase["pools"][name]
            median = p["later_job_runtime_ms_median"]
            print(
                f"   | {name} | {p['processes']} | {p['memory_mb']} | {p['jobs']} "
                f"| {_span(p['boot_rss_mb'])} MB | {_span(p['first_job_rss_mb'])} MB "
                f"| {_span(p['final_rss_mb'])} MB "
                f"| {p['peak_rss_mb'] if p['peak_rss_mb'] is None else round(p['peak_rss_mb'], 1)} MB "
                f"| {p['recycles']} | {p['other_exits'] or '-'} | {p.get('releases', '-')} "
                f"| {'-' if median is None else f'{median:.0f} ms'} |"
            )


def print_comparison(before: dict[str, Any], after: dict[str, Any]) -> None:
    a, b = before["label"], after["label"]
    print(f"\n== {a} -> {b}")
    print(f"   | pool | figure | {a} | {b} |")
    print("   |---|---|---|---|")

    def boot(report: dict[str, Any], name: str, key: str) -> list[float | None]:
        return [r[key] for r in report.get("boot") or [] if r["pool"] == name]

    def phase(report: dict[str, Any], kind: str) -> dict[str, Any] | None:
        return next((p for p in report.get("pipeline") or [] if p["kind"] == kind), None)

    for name in POOLS:
        for key, label, fmt, unit in (
            ("started_s", "spawn -> worker.started", "{:.2f}", "s"),
            ("first_job_s", "spawn -> first job ended", "{:.2f}", "s"),
            ("boot_rss_mb", "RSS at start", "{:.1f}", "MB"),
            ("first_job_rss_mb", "RSS after first job", "{:.1f}", "MB"),
        ):
            print(
                f"   | {name} | {label} | {_span(boot(before, name, key), fmt)} {unit} "
                f"| {_span(boot(after, name, key), fmt)} {unit} |"
            )
        g1, g2 = phase(before, "growth"), phase(after, "growth")
        if g1 and g2:
            final1, final2 = g1["pools"][name]["final_rss_mb"], g2["pools"][name]["final_rss_mb"]
            print(
                f"   | {name} | RSS after {g1['docs']} / {g2['docs']} documents "
                f"| {_span(final1)} MB | {_span(final2)} MB |"
            )
            peak1, peak2 = g1["pools"][name]["peak_rss_mb"], g2["pools"][name]["peak_rss_mb"]
            print(f"   | {name} | highest RSS | {_span([peak1])} MB | {_span([peak2])} MB |")
        r1, r2 = phase(before, "recycle"), phase(after, "recycle")
        if r1 and r2:
            print(
                f"   | {name} | recycles for memory (limit {r1['pools'][name]['memory_mb']} MB) "
                f"| {r1['pools'][name]['recycles']} | {r2['pools'][name]['recycles']} |"
            )
    for kind in ("growth", "recycle"):
        p1, p2 = phase(before, kind), phase(after, kind)
        if p1 and p2:
            print(f"   | all | {kind}: documents' wall time | {p1['wall_s']:.1f} s | {p2['wall_s']:.1f} s |")


def git_describe() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="run", help="names this run in the output (e.g. before, after)")
    parser.add_argument("--docs", type=int, default=100, help="documents per pipeline pass (default 100)")
    parser.add_argument("--boots", type=int, default=3, help="boot rounds per pool (default 3)")
    parser.add_argument(
        "--passes", default="growth,recycle", help="pipeline passes: growth (memory 0), recycle (defaults)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="emulator seconds a call (default 0.05)")
    parser.add_argument(
        "--recycle-mb",
        type=int,
        default=None,
        help="the recycle pass's memory limit for every pool (default: each pool's default memory_mb)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="jobs at once per worker (default: the pools' own, 1)"
    )
    parser.add_argument("--sample", type=float, default=0.25, help="seconds between RSS samples")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a pass is given up")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra worker env")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, databases)")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument("--save", type=Path, help="write the raw figures to this JSON file")
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two --save files; no run"
    )
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        print_report(before)
        print_report(after)
        print_comparison(before, after)
        return
    runner = Runner(args)
    try:
        sample_pool = runner.pool("document-processing")
        argv, _ = runner.argv(sample_pool)
        report: dict[str, Any] = {
            "label": args.label,
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "settings": {
                "git": git_describe(),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "latency_s": args.latency,
                "sample_s": args.sample,
                "docs": args.docs,
                "boots": args.boots,
                "env_extra": args.env,
                "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
                "pool_settings": ", ".join(
                    f"{p.name} x{p.processes} concurrency={p.concurrency} memory_mb={p.memory_mb}"
                    for p in (runner.pool(name) for name in runner.config.pools)
                ),
            },
        }
        print(f"{args.label}: directory {runner.root}, emulator {runner.emulator.url}", flush=True)
        if args.boots:
            load_before = loadavg()
            report["boot"] = boot_phase(runner, args.boots)
            report["boot_load"] = [load_before, loadavg()]
        report["pipeline"] = []
        for kind in [k.strip() for k in args.passes.split(",") if k.strip()]:
            if kind not in ("growth", "recycle"):
                raise SystemExit(f"--passes: unknown pass {kind!r}; use growth, recycle")
            runner.use_dir(kind)
            report["pipeline"].append(pipeline_phase(runner, kind, args.docs))
    finally:
        runner.close()
    print_report(report)
    if args.save:
        args.save.write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
