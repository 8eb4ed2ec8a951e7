"""The document demo's run: a real supervisor, every sample uploaded, each followed to its end.

``run_demo`` goes phase by phase:

1. fresh storage (``DemoLayout.reset``) and the pools file;
2. ``docmill supervise`` as a child process with the seed's pools and the pipeline's
   handlers (``docmill.documents.jobs:registry``), first, as its workers take seconds
   to boot;
3. the documents context (the database is created and migrated here, once: no worker
   opens it before the first upload, so none races to migrate it);
4. every sample uploaded through ``DocumentService.upload`` with ``auto_approve``;
5. the documents polled until each has ended, ``on_progress`` called on every poll;
6. the supervisor stopped gracefully (SIGTERM; it lets its workers finish);
7. the outcome of each document read back for the report.

Whatever goes wrong, the supervisor is stopped (killed if it will not stop) before
``run_demo`` returns or raises ``DemoError``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from docmill.config import load
from docmill.demo.layout import APP, DemoLayout
from docmill.documents.context import DocumentContext
from docmill.documents.errors import DocumentError, ResultNotReady
from docmill.documents.models import Document
from docmill.documents.pools import SEED_POOLS
from docmill.documents.status import TERMINAL, Status
from docmill.supervisor.command import docmill_executable

SEED_PROCESSES = sum(int(pool["processes"]) for pool in SEED_POOLS.values())

POLL_S = 0.2
DEADLINE_S = 45.0
STOP_WAIT_S = 20.0  # the pools' stop_wait_s plus a margin for the master's own shutdown


class DemoError(Exception):
    """The demo could not finish; the message says what happened and where to look."""


@dataclass(frozen=True)
class DocumentRow:
    """One document as the live progress shows it."""

    name: str
    status: str
    done: int
    total: int
    cost_usd: float


@dataclass(frozen=True)
class DocumentOutcome:
    """Where one sample ended, for the report."""

    name: str
    status: str
    kind: str | None = None
    pages: int | None = None
    words: int | None = None
    title: str | None = None
    summary: str | None = None
    cost_usd: float = 0.0
    processor: str | None = None
    models: tuple[str, ...] = ()
    calls: int = 0
    error_reason: str | None = None
    document_id: int | None = None


@dataclass(frozen=True)
class DemoProgress:
    """What the live view shows on each poll: the documents, and how many workers are up."""

    rows: list[DocumentRow]
    workers_up: int
    workers_total: int


@dataclass
class DemoReport:
    """What the demo did: the outcomes, how long it took, and how the supervisor stopped."""

    layout: DemoLayout
    provider: str
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    supervisor_exit: int | None = None
    supervisor_stop_s: float = 0.0


async def run_demo(
    layout: DemoLayout,
    examples: list[Path],
    env: Mapping[str, str],
    *,
    on_progress: Callable[[DemoProgress], None] = lambda progress: None,
    deadline_s: float = DEADLINE_S,
) -> DemoReport:
    """Run the pipeline on ``examples``; see the module docstring."""
    started = time.monotonic()
    layout.reset()
    layout.write_config()
    settings = load(env=env, config_file=layout.config_path).documents
    provider = settings.llm.resolved_provider() if settings.llm is not None else "extractive"
    report = DemoReport(layout=layout, provider=provider)
    supervisor = _Supervisor(layout, env)
    supervisor.start()
    try:
        context = await DocumentContext.create(settings)
        try:
            uploaded = await _upload(context, examples, report)
            await _follow(context, uploaded, supervisor, on_progress, started + deadline_s)
            report.supervisor_exit, report.supervisor_stop_s = await supervisor.stop()
            for document_id in uploaded:
                report.outcomes.append(await _outcome(context, document_id))
            report.outcomes.sort(key=lambda item: item.name)
        finally:
            await context.aclose()
    finally:
        await supervisor.stop()
    report.wall_s = time.monotonic() - started
    return report


class _Supervisor:
    """``docmill supervise`` on the demo's pools, its output in the demo's log directory."""

    def __init__(self, layout: DemoLayout, env: Mapping[str, str]) -> None:
        self.layout = layout
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        command = [
            *docmill_executable(),
            "supervise",
            "--config",
            str(self.layout.config_path),
            "--connection",
            self.layout.queue_url,
            "--app",
            APP,
            "--quiet",
        ]
        self._log = self.layout.supervisor_log.open("ab")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    async def stop(self) -> tuple[int | None, float]:
        """SIGTERM and wait for the graceful shutdown; SIGKILL past ``STOP_WAIT_S``. (code, seconds)"""
        process, began = self.process, time.monotonic()
        if process is None:
            return None, 0.0
        if self._log is None:  # stopped already
            return process.returncode, 0.0
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
            return process.returncode, time.monotonic() - began
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


async def _upload(context: DocumentContext, examples: list[Path], report: DemoReport) -> list[int]:
    """Upload every sample; a sample the service refuses is reported failed with its reason."""
    ids: list[int] = []
    service = context.service
    for path in examples:
        try:
            document = await service.upload(path.read_bytes(), path.name, {"auto_approve": True})
        except DocumentError as exc:
            report.outcomes.append(DocumentOutcome(name=path.name, status="refused", error_reason=str(exc)))
            continue
        ids.append(document.id)
    return ids


def _row(document: Document) -> DocumentRow:
    return DocumentRow(
        document.name, document.status, document.progress_done, document.progress_total, document.cost_usd
    )


async def _follow(
    context: DocumentContext,
    ids: list[int],
    supervisor: _Supervisor,
    on_progress: Callable[[DemoProgress], None],
    deadline: float,
) -> None:
    """Poll the documents until each has ended (or waits for approval)."""
    settled = TERMINAL | {Status.AWAITING_APPROVAL}
    while True:
        documents = [await context.service.get(document_id) for document_id in ids]
        workers = await context.backend.heartbeats("worker")
        on_progress(DemoProgress([_row(d) for d in documents], len(workers), SEED_PROCESSES))
        if all(Status(document.status) in settled for document in documents):
            return
        code = supervisor.exit_code()
        if code is not None:
            raise DemoError(
                f"the supervisor stopped early (exit {code}); see {supervisor.layout.supervisor_log}"
            )
        if time.monotonic() > deadline:
            waiting = ", ".join(
                f"{d.name} ({d.status})" for d in documents if Status(d.status) not in settled
            )
            where = supervisor.layout.log_dir
            raise DemoError(f"the documents did not finish in time: {waiting}; see the logs in {where}")
        await asyncio.sleep(POLL_S)


async def _outcome(context: DocumentContext, document_id: int) -> DocumentOutcome:
    document = await context.service.get(document_id)
    analysis = document.analysis or {}
    counts = analysis.get("counts") or {}
    outcome = DocumentOutcome(
        name=document.name,
        status=document.status,
        kind=analysis.get("kind"),
        pages=counts.get("pages"),
        words=counts.get("words"),
        title=analysis.get("title"),
        cost_usd=document.cost_usd,
        error_reason=document.error_reason,
        document_id=document.id,
    )
    try:
        result, _ = await context.service.result(document_id)
    except ResultNotReady:
        return outcome
    summary = result.get("summary")
    return replace(
        outcome,
        title=result.get("title") or outcome.title,
        summary=summary if isinstance(summary, str) else None,
        processor=result.get("processor"),
        models=tuple(str(model) for model in result.get("models") or ()),
        calls=int(result.get("usage", {}).get("calls", 0)),
    )
