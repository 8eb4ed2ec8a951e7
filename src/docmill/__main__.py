"""`python -m docmill ...` is the `docmill` command."""

from docmill.cli.main import run

run()
