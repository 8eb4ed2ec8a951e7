"""A stored file the workers' user may not read fails its document with that reason, not as a
parser crash (an upload made by root under a deploy whose workers run as another user)."""

from __future__ import annotations

import os
from pathlib import Path

from docmill.documents.analysis.errors import UNREADABLE_REASON, AnalysisFailed, FailureCode
from docmill.documents.analysis.sandbox import SandboxLimits, run_in_child


def test_a_stored_file_the_worker_may_not_read_fails_with_that_reason(tmp_path: Path) -> None:
    stored = tmp_path / "private.md"
    stored.write_text("# Minutes\n\nRead me.\n")
    stored.chmod(0o600)
    tmp_path.chmod(0o755)

    if os.geteuid() != 0:
        stored.chmod(0o000)
    assert analyse_as_unprivileged(stored) == f"{FailureCode.UNREADABLE.value}|{UNREADABLE_REASON}"


def analyse_as_unprivileged(path: Path) -> str:
    """What ``run_in_child`` raises, as ``code|reason``, from a process that is not root (root
    reads anything): a forked child drops to ``nobody`` first when the tests run as root."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        outcome = "analysed"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            run_in_child(path, SandboxLimits(time_limit_s=30, memory_limit_mb=256))
        except AnalysisFailed as exc:
            outcome = f"{exc.code.value}|{exc.reason}"
        except BaseException as exc:
            outcome = f"error|{exc!r}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read().decode()
    os.waitpid(pid, 0)
    return outcome
