"""`docmill documents show` prints the section tree a real analysis worker found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOCMILL = str(Path(sys.executable).parent / "docmill")

MANUAL = """\
Pump Manual
===========

Read before use.

Installation
------------

<table><tr><td>Bolt</td><td>M8</td></tr></table>

### Wiring

Connect the motor.

Maintenance
-----------

Oil it yearly.
"""


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCMILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_show_prints_the_tree_after_a_worker_analysed_the_document(tmp_path: Path) -> None:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCMILL_", "DOCUMENT_", "REDIS_", "CLAUDE_", "ANTHROPIC_", "OPENAI_"))
        and key not in {"DATABASE_URL", "QUEUE_CONNECTION"}
    }
    storage = tmp_path / "storage"
    env = {
        **inherited,
        "DOCMILL_STORAGE": str(storage),
        "DOCMILL_QUEUE_URL": f"sqlite:///{storage / 'queue.db'}",
        "COLUMNS": "100",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    manual = tmp_path / "manual.md"
    manual.write_text(MANUAL, encoding="utf-8")
    submitted = run(env, tmp_path, "submit", str(manual))
    assert submitted.returncode == 0, submitted.stderr
    worker = run(
        env, tmp_path, "queue", "work", "--queue", "document-analysis", "--app",
        "docmill.documents.jobs:registry", "--stop-when-empty",
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr

    shown = run(env, tmp_path, "documents", "show", "1")

    assert shown.returncode == 0, shown.stderr
    lines = [line.rstrip() for line in shown.stdout.splitlines()]
    tree = lines[lines.index("Pump Manual") :]
    assert tree == [
        "Pump Manual",
        "└── Pump Manual  3 words",
        "    ├── Installation  2 words",
        "    │   └── Wiring  3 words",
        "    └── Maintenance  3 words",
    ]
    assert any(line.startswith("Analysis") and "1 tables" in line for line in lines)
