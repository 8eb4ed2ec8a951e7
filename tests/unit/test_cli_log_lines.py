"""``docmill queue logs`` shows each stored JSON line as one readable line."""

from __future__ import annotations

import json

from docmill.cli.log_lines import readable
from docmill.supervisor.logs import child_line

TS = 1_795_806_962.123  # 2026-11-27T19:16:02.123Z


def test_a_worker_event_reads_like_the_workers_own_text_log() -> None:
    stored = child_line(
        "default",
        "default.1",
        4242,
        "stdout",
        json.dumps({"ts": TS, "level": "info", "event": "job.done", "id": "0193a1b2", "error": "a b"}),
    )

    assert readable(stored.rstrip("\n")) == (
        '2026-11-27T19:16:02.123Z info default.1[4242] job.done id=0193a1b2 error="a b"'
    )


def test_a_line_the_worker_printed_shows_its_stream() -> None:
    record = {
        "ts": TS,
        "process": "default.1",
        "pid": 4242,
        "stream": "stderr",
        "line": "Traceback (most recent",
    }

    assert (
        readable(json.dumps(record))
        == "2026-11-27T19:16:02.123Z stderr default.1[4242] Traceback (most recent"
    )


def test_the_masters_own_events_have_no_process() -> None:
    line = json.dumps({"ts": TS, "level": "warning", "event": "pool.fatal", "pool": "default"})

    assert readable(line) == "2026-11-27T19:16:02.123Z warning pool.fatal pool=default"


def test_a_line_that_is_not_json_is_shown_as_it_is() -> None:
    for line in ("2026-11-27T19:16:02.123Z info master.started pid=1", "{not json", '["a list"]'):
        assert readable(line) == line
