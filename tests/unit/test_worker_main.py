"""The worker's entry point, its log lines, and where its backend URL comes from."""

from __future__ import annotations

import io
import json
import sys

import pytest

from docmill.queue import ConfigurationError
from docmill.queue.connection import DEFAULT_QUEUE_URL, queue_url_from_env
from docmill.queue.events import EventLog
from docmill.queue.worker_main import build_parser, event_loop_runner, main, options_from_args


def test_key_value_lines_quote_values_with_spaces() -> None:
    out = io.StringIO()
    log = EventLog(out, clock=lambda: 0.0)
    log.info("job.retry", queue="default", id="j1", attempt="1/3", delay_s=5, error="ValueError: bad input")
    assert out.getvalue() == (
        "1970-01-01T00:00:00.000Z info job.retry queue=default id=j1 attempt=1/3 delay_s=5 "
        'error="ValueError: bad input"\n'
    )


def test_json_lines_carry_the_same_fields() -> None:
    out = io.StringIO()
    EventLog(out, json_lines=True).warning("job.lease_lost", queue="q", id="j1")
    record = json.loads(out.getvalue())
    assert {k: v for k, v in record.items() if k != "ts"} == {
        "level": "warning",
        "event": "job.lease_lost",
        "queue": "q",
        "id": "j1",
    }


def test_events_below_the_level_are_not_written() -> None:
    out = io.StringIO()
    log = EventLog(out, level="warning")
    log.info("job.done", id="j1")
    assert out.getvalue() == "" and not log.info_enabled


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, DEFAULT_QUEUE_URL),
        ({"DOCMILL_QUEUE_URL": "redis://h:1/2", "QUEUE_CONNECTION": "sqlite"}, "redis://h:1/2"),
        ({"QUEUE_CONNECTION": "redis"}, "redis://127.0.0.1:6379/0"),
        ({"QUEUE_CONNECTION": "redis", "REDIS_HOST": "redis", "REDIS_PORT": "6380"}, "redis://redis:6380/0"),
        (
            {"QUEUE_CONNECTION": "redis", "REDIS_HOST": "r", "REDIS_PASSWORD": "p@ss"},
            "redis://:p%40ss@r:6379/0",
        ),
        ({"QUEUE_CONNECTION": "redis", "REDIS_PASSWORD": "null"}, "redis://127.0.0.1:6379/0"),
        ({"QUEUE_CONNECTION": "sqlite"}, DEFAULT_QUEUE_URL),
    ],
)
def test_queue_url_from_env(env: dict[str, str], url: str) -> None:
    assert queue_url_from_env(env) == url


def test_an_unknown_queue_connection_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_CONNECTION='beanstalkd'"):
        queue_url_from_env({"QUEUE_CONNECTION": "beanstalkd"})


def test_command_line_becomes_worker_options() -> None:
    args = build_parser().parse_args(
        ["--queue", "high, low", "--concurrency", "4", "--tries", "3", "--backoff", "1,5,30",
         "--timeout", "300", "--max-time", "3600", "--lease", "10", "--grace", "5", "--stop-when-empty"]
    )  # fmt: skip
    options = options_from_args(args)
    assert options.queues == ("high", "low")
    assert (options.concurrency, options.tries, options.backoff_s) == (4, 3, (1, 5, 30))
    assert (options.timeout_s, options.max_time_s, options.lease_s, options.stop_grace_s) == (
        300,
        3600,
        10,
        5,
    )
    assert options.stop_when_empty


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "many", "--app", "x"],
        ["--concurrency", "0", "--app", "tests"],
        ["--backoff", "soon", "--app", "tests"],
        ["--app", "no_such_module_anywhere:registry", "--connection", "memory://"],
        ["--app", "docmill.queue:Registry", "--connection", "memory://"],
        ["--connection", "memory://"],
    ],
)
def test_boot_failures_exit_with_the_boot_failure_code(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCMILL_APP", raising=False)
    assert main(argv) == 3
    lines = capsys.readouterr().out.splitlines()
    assert " error worker.boot_failed " in lines[0]
    assert lines[-1].endswith(" error worker.stopped reason=BOOT_FAILURE exit_code=3")


async def _loop_kind() -> str:
    import asyncio

    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@pytest.mark.parametrize(
    ("kind", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is a dependency everywhere but Windows")
def test_the_worker_runs_on_uvloop_unless_asked_for_asyncio(kind: str, expected: str) -> None:
    with event_loop_runner(kind) as runner:
        assert runner.run(_loop_kind()) == expected


def test_asking_for_uvloop_where_it_is_missing_is_a_boot_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        event_loop_runner("uvloop")
    with event_loop_runner("auto") as runner:
        assert runner.run(_loop_kind()) == "asyncio"
