"""The console script's entry: `docmill queue work` skips the Typer app; the rest use it."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_entry(*argv: str) -> str:
    """Run ``docmill ARGV`` through the entry point in a fresh interpreter, with the worker's
    ``run`` replaced by one that prints what it got and whether Typer or Rich were loaded."""
    code = (
        "import sys\n"
        f"sys.argv = ['docmill', *{list(argv)!r}]\n"
        "import docmill.queue.worker_main as worker_main\n"
        "def fake(argv, default_url=None):\n"
        "    loaded = sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules)\n"
        "    print('worker', argv, loaded, default_url.__name__ if default_url else None)\n"
        "    raise SystemExit(0)\n"
        "worker_main.run = fake\n"
        "from docmill.cli.entry import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_queue_work_runs_the_worker_without_loading_the_cli() -> None:
    out = run_entry("queue", "work", "--queue", "a,b", "--concurrency", "3")
    assert out.strip() == "worker ['--queue', 'a,b', '--concurrency', '3'] [] configured_queue_url"


@pytest.mark.parametrize("argv", [("queue", "--help"), ("--help",), ("queue", "work", "--help")])
def test_other_commands_go_to_the_typer_app(argv: tuple[str, ...]) -> None:
    out = run_entry(*argv)
    assert "worker" not in out.split()[:1]
    assert "Usage" in out and "queue" in out
