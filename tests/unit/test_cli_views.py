"""Every `queue` table rendered at 40, 80 and 200 columns, exactly (``docmill.cli.views``).

The expected output is in ``rendered/<table>-<width>.txt``, each line without trailing
spaces. After a deliberate change of the layout, look at the new output and update them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from docmill.cli.tables import Sheet
from docmill.cli.views import (
    config_sheet,
    job_sheet,
    masters_sheet,
    monitor_sheet,
    queues_sheet,
    workers_sheet,
)
from docmill.queue import ErrorInfo, Job, JobState
from docmill.queue.heartbeat import WorkerHeartbeat
from docmill.queue.summary import QueueSummary
from docmill.supervisor.heartbeat import MasterHeartbeat
from docmill.supervisor.status import cluster_status

NOW = 1_800_000_000.0
RENDERED = Path(__file__).parent / "rendered"

JOBS = [
    Job(
        id="0193a1b2c3d4e5f6a7b8c9",
        name="docmill.documents.jobs:analyze_section",
        queue="document-analysis",
        tries=3,
        attempts=1,
        state=JobState.RESERVED,
        created_at=NOW - 42,
    ),
    Job(id="0193a1b2c3d4e5f6a7b8ca", name="mail.send", queue="default", created_at=NOW - 3 * 3600),
]
FAILED = [
    Job(
        id="0193a1b2c3d4e5f6a7b8cb",
        name="reports.render",
        queue="reports",
        tries=3,
        attempts=3,
        state=JobState.FAILED,
        finished_at=NOW - 300,
        error=ErrorInfo("ValueError", "page 3 is unreadable: the scan is blank", "Traceback ..."),
    )
]
QUEUES = [
    QueueSummary("default", 1234, 0, 2, 5, False, 12.5, 90, 1, 3, 1.5, 0.443, 2.0),
    QueueSummary("document-analysis", 0, 3, 0, 0, True, None),
]
MASTER = MasterHeartbeat.from_dict(
    {
        "member": "web-1:100",
        "host": "web-1",
        "pid": 100,
        "state": "running",
        "started": NOW - 7200,
        "pools": [
            {
                "name": "default",
                "state": "running",
                "target": 2,
                "processes": [
                    {
                        "name": "default.1",
                        "state": "running",
                        "pid": 101,
                        "started": NOW - 600,
                        "restarts": 1,
                    },
                    {"name": "default.2", "state": "backoff", "pid": None, "restarts": 4},
                ],
            },
            {
                "name": "document-analysis",
                "state": "fatal",
                "target": 1,
                "fatal_reason": "exit 3 (boot_failure) 3 times in a row",
                "processes": [],
            },
        ],
    }
)
WORKER = WorkerHeartbeat.from_dict(
    {
        "worker_id": "w1",
        "host": "web-1",
        "pid": 101,
        "state": "busy",
        "jobs": [{"id": "0193a1b2c3d4e5f6a7b8c9", "name": "reports.render"}],
        "jobs_done": 12345,
        "memory_mb": 61.4,
    }
)
STATUS = cluster_status([MASTER], [WORKER], None, NOW, QUEUES)
CONFIG = [
    ("connection", "sqlite:////srv/docmill/storage/queue.db", "env DOCMILL_QUEUE_URL"),
    ("pools.document-analysis.max_processes", "4", "docmill.toml"),
    ("pools.document-analysis.restart_backoff_max_s", "60", "default"),
]

SHEETS = {
    "jobs": job_sheet(JOBS, now=NOW),
    "failed": job_sheet(FAILED, failed=True, now=NOW),
    "monitor": monitor_sheet(QUEUES, over=["default"]),
    "masters": masters_sheet(STATUS.masters),
    "workers": workers_sheet(STATUS.workers),
    "queues": queues_sheet(STATUS.queues),
    "config": config_sheet(CONFIG, "docmill.toml"),
}


def render(sheet: Sheet, width: int | None) -> str:
    console = Console(width=width or 80, file=io.StringIO(), color_system=None)
    console.print(sheet.render(width), crop=False)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


@pytest.mark.parametrize("width", [40, 80, 200])
@pytest.mark.parametrize("name", sorted(SHEETS))
def test_each_table_renders_exactly_at_40_80_and_200_columns(name: str, width: int) -> None:
    expected = (RENDERED / f"{name}-{width}.txt").read_text(encoding="utf-8")

    assert render(SHEETS[name], width) == expected


def test_the_rendered_files_are_exactly_the_tables_tested() -> None:
    assert sorted(p.stem for p in RENDERED.glob("*.txt")) == sorted(
        f"{name}-{width}" for name in SHEETS for width in (40, 80, 200)
    )


def test_ids_and_durations_are_never_cut() -> None:
    for width in (40, 80, 200):
        jobs = render(SHEETS["jobs"], width) + render(SHEETS["failed"], width)
        monitor = render(SHEETS["monitor"], width)
        assert all(job.id in jobs for job in JOBS + FAILED)
        assert "443ms" in monitor and "2.00s" in monitor


def test_at_80_columns_the_config_keeps_each_key_whole_and_folds_the_values() -> None:
    lines = render(SHEETS["config"], 80).splitlines()

    assert lines[8].startswith("pools.document-analysis.restart_backoff_max_s │ 60")
    assert max(len(line) for line in lines) <= 80


def test_output_to_a_pipe_gets_one_line_per_row_however_wide() -> None:
    # Given output that is no terminal and has no COLUMNS: the width is unbounded
    lines = render(SHEETS["config"], None).splitlines()

    assert len(lines) == 6 and lines[1].startswith("Key ")
    assert "sqlite:////srv/docmill/storage/queue.db │ env DOCMILL_QUEUE_URL" in lines[3]
