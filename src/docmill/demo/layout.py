"""Where the demo's files live, the environment its processes share, and its pools file.

Everything sits under ``storage/demo/`` in the working directory and is deleted at the
start of each run::

    storage/demo/docmill.db       the documents database (SQLite)
    storage/demo/queue.db         the job queues (SQLite)
    storage/demo/documents/       the uploaded files, content-addressed
    storage/demo/docmill.toml     the pools ``docmill supervise`` runs
    storage/demo/logs/            the supervisor's and the workers' logs

The sample documents are looked for in the installed package (``docmill/demo/examples``,
shipped by the wheel) and then in the source checkout (``examples/documents``), so the
demo runs from any directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from docmill.documents.pools import PIPELINE_APP, SEED_POOLS

APP = PIPELINE_APP
# The seed's pools: pool (and queue) -> worker processes, one job at a time each.
KEY_VARIABLES = ("CLAUDE_API_KEY", "ANTHROPIC_API_KEY")
# Settings of the caller's environment that would point the demo at other storage.
_REPLACED = ("DOCMILL_STORAGE", "DATABASE_URL", "DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "DOCMILL_CONFIG")

_PACKAGED = Path(__file__).resolve().parent / "examples"
_CHECKOUT = Path(__file__).resolve().parents[3] / "examples" / "documents"


def find_examples(explicit: Path | None = None) -> Path | None:
    """The directory of sample documents: ``explicit``, else the packaged copy, else the checkout's."""
    candidates = [explicit] if explicit is not None else [_PACKAGED, _CHECKOUT]
    for candidate in candidates:
        if candidate is not None and candidate.is_dir() and any(p.is_file() for p in candidate.iterdir()):
            return candidate
    return None


@dataclass(frozen=True)
class DemoLayout:
    """The demo's paths under ``root`` (relative to the working directory by default)."""

    root: Path = Path("storage") / "demo"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.root / 'docmill.db').as_posix()}"

    @property
    def queue_url(self) -> str:
        return f"sqlite:///{(self.root / 'queue.db').as_posix()}"

    @property
    def config_path(self) -> Path:
        return self.root / "docmill.toml"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_log(self) -> Path:
        return self.log_dir / "supervise.out"

    def reset(self) -> None:
        """Delete the previous run's files and make the directories of this one."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` pointed at the demo's storage; the LLM is Claude with a key, else offline.

        An explicit ``DOCMILL_LLM_PROVIDER`` in ``base`` is kept.
        """
        env = {name: value for name, value in base.items() if name not in _REPLACED}
        env.update(
            DOCMILL_STORAGE=self.root.as_posix(),
            DATABASE_URL=self.database_url,
            DOCMILL_QUEUE_URL=self.queue_url,
            PYTHONUNBUFFERED="1",
        )
        if not env.get("DOCMILL_LLM_PROVIDER", "").strip():
            has_key = any(env.get(name, "").strip() for name in KEY_VARIABLES)
            env["DOCMILL_LLM_PROVIDER"] = "anthropic" if has_key else "extractive"
        return env

    def write_config(self) -> Path:
        """The pools file: the seed's pools and limits, polling and shutdown tuned for a short run."""
        pools = "\n".join(
            f'[pools.{name}]\nqueues = ["{name}"]\nprocesses = {pool["processes"]}\n'
            for name, pool in SEED_POOLS.items()
        )
        self.config_path.write_text(
            f"""# Written by `docmill demo`; the seed's pools on this host.
[supervisor]
app = ["{APP}"]
log_dir = "{self.log_dir.as_posix()}"
heartbeat_s = 1
control_poll_s = 0.5
tick_s = 0.1

[defaults]
concurrency = 1
timeout_s = 300
max_time_s = 3600
tries = 3
sleep_s = 0.1
stop_wait_s = 15
startsecs = 0.5

{pools}"""
        )
        return self.config_path
