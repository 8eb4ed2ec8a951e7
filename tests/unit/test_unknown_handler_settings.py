"""How long a job of an unknown handler waits, set each way a user sets it: the worker's
flag, and ``docmill.toml`` (``[defaults]``, a pool, the environment) through the command
line ``docmill supervise`` gives each worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import InvalidConfiguration, load
from docmill.queue import WorkerOptions
from docmill.queue.worker_main import build_parser, main, options_from_args
from docmill.supervisor.command import worker_command


def worker_options(argv: list[str]) -> WorkerOptions:
    return options_from_args(build_parser().parse_args(argv))


def pool_worker_options(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Each pool's wait, as its worker process parses the command the supervisor builds."""
    path = tmp_path / "docmill.toml"
    path.write_text(toml)
    config = load(config_file=path, env=env or {}).supervisor
    waits = {}
    for name, pool in config.pools.items():
        argv = list(worker_command(config, pool).argv)
        waits[name] = worker_options(argv[argv.index("work") + 1 :]).unknown_handler_wait_s
    return waits


def test_the_worker_flag_sets_the_wait() -> None:
    assert worker_options([]).unknown_handler_wait_s == 300
    assert worker_options(["--unknown-handler-wait", "45"]).unknown_handler_wait_s == 45
    assert worker_options(["--unknown-handler-wait", "0"]).unknown_handler_wait_s == 0


def test_a_negative_flag_is_a_boot_failure_in_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--unknown-handler-wait", "-5", "--app", "docmill.demo_jobs:registry"]) == 3
    assert "the unknown-handler wait must be 0 or more seconds, got -5.0" in capsys.readouterr().out


def test_defaults_and_pools_of_docmill_toml_reach_each_worker(tmp_path: Path) -> None:
    toml = """
[defaults]
unknown_handler_wait_s = 120

[pools.mail]
queues = ["mail"]

[pools.reports]
queues = ["reports"]
unknown_handler_wait_s = 0
"""
    assert pool_worker_options(tmp_path, toml) == {"mail": 120, "reports": 0}


def test_without_a_setting_the_worker_default_applies(tmp_path: Path) -> None:
    assert pool_worker_options(tmp_path, '[pools.mail]\nqueues = ["mail"]\n') == {"mail": 300}


def test_the_environment_overrides_the_file_for_one_pool(tmp_path: Path) -> None:
    toml = '[defaults]\nunknown_handler_wait_s = 120\n[pools.mail]\nqueues = ["mail"]\n'
    env = {"DOCMILL_POOL_MAIL_UNKNOWN_HANDLER_WAIT_S": "15"}
    assert pool_worker_options(tmp_path, toml, env) == {"mail": 15}


def test_a_negative_wait_in_the_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "docmill.toml"
    path.write_text('[pools.mail]\nqueues = ["mail"]\nunknown_handler_wait_s = -1\n')
    with pytest.raises(
        InvalidConfiguration, match=r"pool mail: unknown_handler_wait_s=-1.0 \(file .*\) must not"
    ):
        load(config_file=path, env={})
