"""``docmill supervise`` wired to the real world: log files, piped children, signals."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO, cast

from docmill.queue.events import EventLog
from docmill.supervisor.children import PipedSpawner
from docmill.supervisor.config import SupervisorConfig
from docmill.supervisor.logs import SUPERVISOR_LOG, LogFiles, Tee
from docmill.supervisor.master import Master


def supervise(
    config: SupervisorConfig,
    *,
    reload: Callable[[], SupervisorConfig] | None = None,
    json_lines: bool = False,
    echo: bool = True,
) -> int:
    """Run the master until it is shut down; return its exit code.

    The master's own events go to ``<log_dir>/supervisor.log`` (and to stderr
    with ``echo``); each pool's workers' output goes to ``<log_dir>/<pool>.log``.
    """
    files = LogFiles(config.log_dir, config.log_max_bytes, config.log_backups)
    own = files.file(SUPERVISOR_LOG)
    stream = cast(TextIO, Tee(own, sys.stderr) if echo else own)
    log = EventLog(stream, json_lines=json_lines)
    master = Master(config, spawner=PipedSpawner(files), log=log, reload=reload)
    try:
        return asyncio.run(master.run())
    finally:
        files.close()
