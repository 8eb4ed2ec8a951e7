"""`docmill demo`: the document pipeline on this host, from upload to result, with nothing to set up.

``layout`` decides where the demo's files live (a fresh ``storage/demo/`` each run), its
environment and the supervisor's pools file; ``run`` starts ``docmill supervise`` on them,
uploads the sample documents through ``DocumentService`` and follows them to their end;
``render`` draws the live progress and the report. The CLI command is a thin wrapper
(``docmill.cli.demo``).
"""

from __future__ import annotations

from docmill.demo.layout import DemoLayout, find_examples
from docmill.demo.run import DemoError, DemoProgress, DemoReport, DocumentOutcome, run_demo

__all__ = [
    "DemoError",
    "DemoLayout",
    "DemoProgress",
    "DemoReport",
    "DocumentOutcome",
    "find_examples",
    "run_demo",
]
