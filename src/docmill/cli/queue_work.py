"""`docmill queue work`: one worker process (the seed's `queue:work`).

The console script sends `docmill queue work` to ``docmill.queue.worker_main``
before Typer is even imported (``docmill.cli.entry``). This command is the way
in for callers of the Typer app itself (``docmill.cli.main.app``, as in tests):
it replaces this process with the lean worker (same pid, so a supervisor's
signals still reach it), so that a running worker does not keep Typer and Rich
in memory. Options and their help live in ``worker_main``'s parser alone;
`docmill queue work --help` shows them as Typer shows every other command's
(``print_help`` builds a Typer command from the parser, for the help only).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from typing import Annotated, Any

import typer

# Asking for help: the console script sends these to the Typer app, not to the lean worker.
HELP_FLAGS = frozenset({"--help", "-h"})

# The console script's way into the worker (``docmill.cli.entry.work``), for the exec'd process.
_WORKER = "import sys; from docmill.cli.entry import work; work(sys.argv[1:])"


def register(app: typer.Typer) -> None:
    @app.command(
        "work",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def work(ctx: typer.Context) -> None:
        """Process jobs from the queues; `docmill queue work --help` lists the options."""
        if HELP_FLAGS.intersection(ctx.args):
            print_help()
            return
        argv = [sys.executable, "-c", _WORKER, *ctx.args]
        sys.stdout.flush()
        sys.stderr.flush()
        if os.name == "posix":
            os.execv(sys.executable, argv)
        from docmill.cli.entry import work as run  # no exec elsewhere: run in this process

        run(list(ctx.args))


def print_help() -> None:
    """Print the worker's options (``worker_main.build_parser``) in the Typer style of every command."""
    from docmill.queue.worker_main import build_parser

    parser = build_parser()
    params = [_parameter(action) for action in parser._actions if not _is_help(action)]

    def work(**_: Any) -> None:
        """Never called: this command only renders its help."""

    work.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    helper = typer.Typer(add_completion=False, help=parser.description)
    helper.command(help=parser.description)(work)
    try:
        helper(["--help"], prog_name="docmill queue work")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def _is_help(action: argparse.Action) -> bool:
    return not action.option_strings or bool(HELP_FLAGS.intersection(action.option_strings))


def _parameter(action: argparse.Action) -> inspect.Parameter:
    """A Typer option equivalent to an argparse one: same flags, value type, metavar and help."""
    help_text = _sentence(action.help or "")
    if action.nargs == 0:  # store_true
        annotation: Any = bool
        default: Any = False
        option = typer.Option(*action.option_strings, help=help_text, show_default=False)
    else:
        annotation = list[str] if isinstance(action, argparse._AppendAction) else (action.type or str)
        default = None
        metavar = _metavar(action)
        option = typer.Option(*action.option_strings, help=help_text, metavar=metavar, show_default=False)
    return inspect.Parameter(
        action.dest,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation | None if default is None else annotation, option],
    )


def _metavar(action: argparse.Action) -> str:
    """What the value is: its few choices, a number of seconds, an integer, or text."""
    if action.choices:
        choices = "|".join(str(c) for c in action.choices)
        return choices if len(choices) <= 20 else action.dest.upper()
    if action.type is float:
        return "SECONDS" if "second" in (action.help or "") else "FLOAT"
    return "INTEGER" if action.type is int else "TEXT"


def _sentence(text: str) -> str:
    """argparse's help is lowercase without a full stop; the other commands' help is sentences."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
