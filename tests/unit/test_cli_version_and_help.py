"""`docmill --version`, and `docmill queue work --help` in the style of every other command."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from docmill import __version__
from docmill.cli.main import app
from docmill.queue.worker_main import build_parser

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def test_version_prints_the_version_and_exits() -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"docmill {__version__}\n"


def test_queue_work_help_is_the_typer_help_of_the_workers_options() -> None:
    result = runner.invoke(app, ["queue", "work", "--help"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "Usage: docmill queue work [OPTIONS]" in result.output
    assert "╭─ Options ─" in result.output  # the panel every command's help has
    shown = set(re.findall(r"│ (--[a-z-]+)", result.output))
    documented = {opt for action in build_parser()._actions for opt in action.option_strings if opt != "-h"}
    assert shown == documented


def test_queue_work_help_speaks_in_sentences_with_the_value_kinds() -> None:
    result = runner.invoke(app, ["queue", "work", "--help"], env=WIDE)

    line = next(line for line in result.output.splitlines() if "│ --timeout " in line)
    assert re.search(r"--timeout +SECONDS +Seconds a job may run \(default: 60\)\.", line), line
    assert re.search(r"--loop +auto\|uvloop\|asyncio ", result.output)
