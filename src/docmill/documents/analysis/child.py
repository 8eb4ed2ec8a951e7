"""The sandbox child: runs ``python -m docmill.documents.analysis.child``.

Protocol: the parent writes one JSON request to stdin (see ``sandbox.ChildRequest``);
the child applies its resource limits, analyses the file and writes one JSON reply to
its original stdout: ``{"ok": true, "structure": {...}, "stats": {...}}`` or
``{"ok": false, "code": "...", "reason": "..."}``. Everything else the process prints,
including what native libraries write to file descriptor 1, goes to stderr, so the
reply cannot be corrupted.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.chunking import ChunkingOptions
from docmill.documents.analysis.errors import CRASH_REASON, AnalysisFailed, FailureCode, memory_reason

MB = 1024 * 1024


def apply_limits(memory_limit_mb: int, cpu_limit_s: int) -> None:
    """Cap this process's address space and CPU time, and forbid core dumps."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit_mb * MB, memory_limit_mb * MB))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit_s, cpu_limit_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Analyse the requested file and build the reply (never raises)."""
    started = time.perf_counter()
    try:
        with open(request["path"], "rb") as stream:
            data = stream.read(request["max_file_bytes"] + 1)
        if len(data) > request["max_file_bytes"]:
            max_mb = request["max_file_bytes"] // MB
            raise AnalysisFailed(
                FailureCode.TOO_LARGE, f"The file is larger than {max_mb} MB; upload a smaller one."
            )
        structure = analyze_bytes(
            data,
            filename=request.get("filename"),
            chunking=ChunkingOptions(request["chunk_tokens"]),
        )
        del data
        reply: dict[str, Any] = {"ok": True, "structure": structure.to_dict()}
    except AnalysisFailed as exc:
        return {"ok": False, "code": exc.code.value, "reason": exc.reason}
    except MemoryError:
        return {
            "ok": False,
            "code": FailureCode.MEMORY_LIMIT.value,
            "reason": memory_reason(request["memory_limit_mb"]),
        }
    except RecursionError:
        return {"ok": False, "code": FailureCode.CORRUPT.value, "reason": CRASH_REASON}
    except Exception as exc:  # a parser bug must still end as a typed failure
        print(f"analysis.child.error {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"ok": False, "code": FailureCode.CRASHED.value, "reason": CRASH_REASON}
    # The OCR engine runs as a process of its own; its peak counts too.
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    reply["stats"] = {"elapsed_s": time.perf_counter() - started, "peak_rss_kb": peak}
    return reply


def main() -> None:
    reply_channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    request = json.loads(sys.stdin.buffer.read())
    apply_limits(request["memory_limit_mb"], request["cpu_limit_s"])
    reply = handle(request)
    try:
        encoded = json.dumps(reply, ensure_ascii=False).encode("utf-8")
    except MemoryError:
        reply = {"ok": False, "code": "memory_limit", "reason": memory_reason(request["memory_limit_mb"])}
        encoded = json.dumps(reply).encode("utf-8")
    reply_channel.write(encoded)
    reply_channel.flush()


if __name__ == "__main__":
    main()
