"""`docmill demo` end to end: a real supervisor runs the document pipeline on the sample documents.

The demo runs in an empty working directory, so it must find the samples on its own
(the installed package or the source checkout) and keep everything it writes under
``storage/demo/`` there.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

DOCMILL = str(Path(sys.executable).parent / "docmill")
EXAMPLES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "examples" / "documents").iterdir())
BROKEN = "broken-truncated.pdf"
BROKEN_REASON = "The PDF is incomplete (the file ends too early); upload the complete file."
# Settings of the caller that would change what the demo does.
IGNORED_ENV = {
    "CLAUDE_API_KEY",
    "ANTHROPIC_API_KEY",
    "DOCMILL_LLM_PROVIDER",
    "DATABASE_URL",
    "DOCMILL_QUEUE_URL",
    "QUEUE_CONNECTION",
    "DOCMILL_CONFIG",
    "DOCMILL_APP",
    "DOCMILL_STORAGE",
    "PYTHONDONTWRITEBYTECODE",
}


def cells(row: str) -> list[str]:
    """The cells of one line of the table (it has no outer border; a folded line's first
    cells are blank)."""
    return [cell.strip() for cell in row.rstrip().rstrip("│").split("│")]


def result_rows(output: str) -> dict[str, list[str]]:
    """Each row of the results table by document name, the lines its cells fold onto joined."""
    table = output[output.index("Results") :]
    rows: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in table.splitlines():
        if "│" not in line:
            continue
        row = cells(line)
        if row[0]:
            last = rows[row[0]] = row
        elif last is not None:  # a folded line: its cells continue the row above
            row += [""] * (len(last) - len(row))
            last[:] = [f"{a} {b}".strip() for a, b in zip(last, row, strict=False)]
    return rows


def logs(cwd: Path) -> str:
    """The tail of the supervisor's and the workers' logs, to explain a failed run."""
    parts = []
    for log in sorted((cwd / "storage" / "demo" / "logs").glob("*")):
        parts.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "\n".join(parts)


def test_the_demo_processes_every_sample_and_shows_why_the_broken_one_failed(tmp_path: Path) -> None:
    # Given an empty working directory but for a file left by an earlier run
    (tmp_path / "storage" / "demo").mkdir(parents=True)
    (tmp_path / "storage" / "demo" / "left-over.db").write_text("old")

    # When the demo runs there without an API key
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
    env.update(COLUMNS="120", NO_COLOR="1", TERM="dumb")
    result = subprocess.run(
        [DOCMILL, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr + logs(tmp_path)

    # Then it started from fresh storage with the offline processor
    assert not (tmp_path / "storage" / "demo" / "left-over.db").exists()
    assert out.startswith(f"Processing {len(EXAMPLES)} documents from ")
    assert "model: the offline extractive processor (set CLAUDE_API_KEY to use Claude)." in out

    # And every sample completed but the broken one, which shows its reason
    rows = result_rows(out)
    assert sorted(rows) == EXAMPLES
    for name, row in rows.items():
        _name, kind, _size, status, snippet, cost, processor = row
        if name == BROKEN:
            assert (status, snippet, cost, processor) == ("failed", "-", "$0.0000", "-")
            continue
        assert status == "completed", row
        assert kind in {"pdf", "docx", "html", "markdown", "text"} and snippet not in ("", "-")
        assert (cost, processor) == ("$0.0000", "extractive (offline)")
    assert rows["quarterly-report.pdf"][1:3] == ["pdf", "4 pp, 525 words"]
    summary = re.search(
        r"^(\d+) of (\d+) documents completed \((\d+) model calls, \$0\.0000\), 1 failed", out, re.M
    )
    assert summary is not None and summary.group(1, 2) == (str(len(EXAMPLES) - 1), str(len(EXAMPLES)))
    assert f"{BROKEN} failed: {BROKEN_REASON}" in out.splitlines()

    # And the supervisor ran the seed's pools and stopped gracefully
    assert re.search(r"^Stopped the supervisor gracefully \(exit 0, [\d.]+s\)\.$", out, re.M)
    master_log = (tmp_path / "storage" / "demo" / "logs" / "supervisor.log").read_text()
    assert 'pools="default=2,document-analysis=1,document-processing=2"' in master_log
    assert "master.stopped" in master_log
    jobs_done = [
        json.loads(line)["name"]
        for name in ("document-analysis.log", "document-processing.log")
        for line in (tmp_path / "storage" / "demo" / "logs" / name).read_text().splitlines()
        if '"job.done"' in line
    ]
    assert jobs_done.count("documents.analyze") == len(EXAMPLES)
    assert jobs_done.count("documents.process") == len(EXAMPLES) - 1

    # And what it stored is where the next steps point
    with sqlite3.connect(tmp_path / "storage" / "demo" / "docmill.db") as db:
        stored = dict(db.execute("SELECT name, status FROM documents").fetchall())
    assert stored == {name: "failed" if name == BROKEN else "completed" for name in EXAMPLES}
    assert "  export DOCMILL_STORAGE=storage/demo DOCMILL_QUEUE_URL=sqlite:///storage/demo/queue.db" in out
    assert "  uv run docmill queue status" in out.splitlines()
    assert "  uv run docmill documents list" in out.splitlines()
    assert "http://127.0.0.1:8000/docs" in out
