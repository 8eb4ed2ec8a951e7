"""What a pipeline worker loads before its first job: its handlers, not the tools of other
processes. Alembic is for migrating (``db.upgrade``), the parsers run in the analysis
sandbox's child, and the LLM SDKs load with the first job that asks for a provider."""

from __future__ import annotations

import subprocess
import sys

NOT_AT_BOOT = (
    "alembic",
    "mako",
    "anthropic",
    "charset_normalizer",
    "pypdfium2",
    "docx",
    "docmill.documents.analysis.detect",
    "docmill.documents.analysis.readers",
    "docmill.llm.providers.anthropic",
)


def test_loading_the_pipeline_handlers_leaves_out_what_no_worker_needs_at_boot() -> None:
    code = (
        "import sys\n"
        "import docmill.queue.worker_main\n"
        "import docmill.documents.jobs\n"
        f"print(sorted(m for m in {NOT_AT_BOOT!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
