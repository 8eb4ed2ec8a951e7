"""Analysing untrusted files in a child process with hard time and memory limits.

``analyze_file`` starts ``python -m docmill.documents.analysis.child`` in its own
session, hands it a JSON request, and waits at most ``time_limit_s``. The child caps its
own address space (``RLIMIT_AS``) and CPU time (``RLIMIT_CPU``) before it reads a byte
of the file. Whatever happens in the child (a parser that loops, eats memory, or
crashes in native code) the parent gets a ``DocumentStructure`` or an ``AnalysisFailed``
with a one-sentence reason, and carries on:

    outcome in the child                         -> FailureCode
    reply {"ok": false, ...}                     -> the code and reason it sent
    still running at time_limit_s                -> TIME_LIMIT (process group killed)
    killed by SIGXCPU (CPU limit)                -> TIME_LIMIT
    MemoryError, or died saying "out of memory"  -> MEMORY_LIMIT
    any other death, or an unreadable reply      -> CRASHED

``command`` is the seam for tests: any program that speaks the child protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Only what the parent needs: the parsers (and the child module that imports them) are loaded
# in the child process alone, never in the worker that starts it.
from docmill.documents.analysis.chunking import ChunkingOptions
from docmill.documents.analysis.errors import (
    CRASH_REASON,
    UNREADABLE_REASON,
    AnalysisFailed,
    FailureCode,
    memory_reason,
)
from docmill.documents.analysis.model import DocumentStructure

CHILD_MODULE = "docmill.documents.analysis.child"
NOT_FOUND_REASON = "The file to analyse does not exist any more; upload it again."
DEFAULT_MODEL_CONTEXT_TOKENS = 200_000


def time_limit_reason(time_limit_s: float) -> str:
    return (
        f"Analysing the document took longer than {time_limit_s:g} seconds, so it was stopped; "
        "upload a smaller or simpler file."
    )


@dataclass(frozen=True)
class SandboxLimits:
    """Hard limits for one analysis: wall time, address space, and input size."""

    time_limit_s: float = 60.0
    memory_limit_mb: int = 512
    max_file_mb: int = 100


@dataclass(frozen=True)
class ChildRequest:
    """What the parent asks the child; sent as JSON on the child's stdin."""

    path: str
    filename: str | None
    chunk_tokens: int
    memory_limit_mb: int
    cpu_limit_s: int
    max_file_bytes: int


@dataclass(frozen=True)
class ChildResult:
    """A successful analysis and what it cost the child."""

    structure: DocumentStructure
    elapsed_s: float
    peak_rss_mb: float


def analyze_file(
    path: str | os.PathLike[str],
    *,
    chunk_tokens: int | None = None,
    model_context_tokens: int = DEFAULT_MODEL_CONTEXT_TOKENS,
    time_limit_s: float = 60.0,
    memory_limit_mb: int = 512,
    filename: str | None = None,
) -> DocumentStructure:
    """Analyse an untrusted file in a limited child process; raise ``AnalysisFailed`` if it fails.

    Chunks are ``chunk_tokens`` long when given, else sized for ``model_context_tokens``
    (see ``ChunkingOptions.for_model``). ``filename`` is the name the user gave the file
    (default: the path's name); it only shapes warnings and failure reasons.
    """
    chunking = (
        ChunkingOptions(chunk_tokens) if chunk_tokens else ChunkingOptions.for_model(model_context_tokens)
    )
    limits = SandboxLimits(time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb)
    return run_in_child(Path(path), limits, chunking=chunking, filename=filename).structure


def run_in_child(
    path: Path,
    limits: SandboxLimits,
    *,
    chunking: ChunkingOptions | None = None,
    filename: str | None = None,
    command: Sequence[str] | None = None,
) -> ChildResult:
    """Run one analysis in a child process under ``limits``; see the module docstring."""
    try:
        if not path.is_file():
            raise AnalysisFailed(FailureCode.NOT_FOUND, NOT_FOUND_REASON)
        readable = os.access(path, os.R_OK)
    except PermissionError:  # a directory on the way that this user may not enter
        readable = False
    if not readable:
        raise AnalysisFailed(FailureCode.UNREADABLE, UNREADABLE_REASON)
    request = ChildRequest(
        path=str(path.resolve()),
        filename=filename if filename is not None else path.name,
        chunk_tokens=(chunking or ChunkingOptions()).chunk_tokens,
        memory_limit_mb=limits.memory_limit_mb,
        cpu_limit_s=max(1, int(limits.time_limit_s) + 1),
        max_file_bytes=limits.max_file_mb * 1024 * 1024,
    )
    argv = list(command) if command is not None else [sys.executable, "-m", CHILD_MODULE]
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(json.dumps(asdict(request)).encode(), timeout=limits.time_limit_s)
    except subprocess.TimeoutExpired:
        _kill(child)
        child.communicate()
        raise AnalysisFailed(FailureCode.TIME_LIMIT, time_limit_reason(limits.time_limit_s)) from None
    finally:
        if child.poll() is None:
            _kill(child)
            child.wait()
    reply = _parse(stdout)
    if reply is None:
        raise _death(child.returncode, stderr, limits)
    if not reply.get("ok"):
        raise AnalysisFailed(FailureCode(reply["code"]), reply["reason"])
    stats = reply.get("stats", {})
    return ChildResult(
        structure=DocumentStructure.from_dict(reply["structure"]),
        elapsed_s=time.perf_counter() - started,
        peak_rss_mb=stats.get("peak_rss_kb", 0) / 1024,
    )


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill the child and anything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _parse(stdout: bytes) -> dict[str, Any] | None:
    try:
        reply = json.loads(stdout)
    except (ValueError, UnicodeDecodeError):
        return None
    return reply if isinstance(reply, dict) and "ok" in reply else None


def _death(returncode: int, stderr: bytes, limits: SandboxLimits) -> AnalysisFailed:
    """Name the failure of a child that died without a reply."""
    if returncode == -signal.SIGXCPU:
        return AnalysisFailed(FailureCode.TIME_LIMIT, time_limit_reason(limits.time_limit_s))
    tail = stderr[-4096:].lower()
    if b"memoryerror" in tail or b"out of memory" in tail or b"cannot allocate memory" in tail:
        return AnalysisFailed(FailureCode.MEMORY_LIMIT, memory_reason(limits.memory_limit_mb))
    return AnalysisFailed(FailureCode.CRASHED, CRASH_REASON)
