"""`python -m docmill ...` is the `docmill` command."""

from docmill.cli.entry import run

run()
