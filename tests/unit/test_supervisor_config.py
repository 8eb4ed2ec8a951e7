"""The pools' configuration as ``docmill.config.load`` builds it: default < file < environment <
flags, each value with its source; secrets masked. The supervisor itself knows no pools: the
seed's three come from the documents layer (``docmill.documents.pools``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from docmill.config import InvalidConfiguration, load
from docmill.supervisor.config import SupervisorConfig
from docmill.supervisor.config import load_config as load_supervisor_config

SupervisorConfigError = InvalidConfiguration


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str],
    connection: str | None = None,
    apps: list[str] | tuple[str, ...] = (),
) -> SupervisorConfig:
    return load(config_file=path, env=env, connection=connection, apps=apps).supervisor


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docmill.toml"
    path.write_text(text)
    return path


def test_without_a_file_the_pools_are_the_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert {name: p.processes for name, p in config.pools.items()} == {
        "default": 2,
        "document-analysis": 1,
        "document-processing": 2,
    }
    for pool in config.pools.values():
        assert pool.queues == (pool.name,)
        assert (pool.timeout_s, pool.max_time_s, pool.tries, pool.sleep_s) == (300, 3600, 3, 3)
        assert pool.stop_wait_s == 3600
    assert config.connection == "sqlite:///storage/queue.db"
    assert config.source("pools.default.processes") == "default"
    assert config.config_file is None


def test_the_file_replaces_the_pools_and_defaults_apply_to_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[supervisor]
app = "tests.jobs:registry"
heartbeat_s = 1

[defaults]
tries = 5
timeout_s = 30

[pools.fast]
queues = ["high", "low"]
processes = 4
tries = 2

[pools.slow]
balance = "auto"
max_processes = 6
""",
    )
    config = load_config(path, env={})
    assert list(config.pools) == ["fast", "slow"]
    fast, slow = config.pools["fast"], config.pools["slow"]
    assert fast.queues == ("high", "low") and fast.processes == 4 and fast.tries == 2 and fast.timeout_s == 30
    assert slow.queues == ("slow",) and slow.tries == 5 and slow.ceiling == 6 and slow.floor == 1
    assert config.apps == ("tests.jobs:registry",)
    assert config.source("pools.fast.tries") == f"file {path}"
    assert config.source("pools.slow.tries") == f"file {path} [defaults]"
    assert config.source("pools.slow.sleep_s") == "default"
    assert config.source("heartbeat_s") == f"file {path}"


def test_environment_overrides_the_file_and_flags_override_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[supervisor]
connection = "sqlite:///from-file.db"
[pools.document-analysis]
tries = 7
timeout_s = 100
[pools.document-processing]
processes = 2
""",
    )
    env = {
        "QUEUE_CONNECTION": "redis",
        "REDIS_HOST": "redis.internal",
        "REDIS_PORT": "6380",
        "REDIS_PASSWORD": "s3cret",
        "DOCUMENT_ANALYSIS_QUEUE": "analysis-v2",
        "ANALYSIS_JOB_MAX_TRIES": "4",
        "ANALYSIS_JOB_TIMEOUT": "600",
        "ANALYSIS_JOB_RETRY_DELAY": "60",
        "DOCMILL_POOL_DOCUMENT_PROCESSING_PROCESSES": "5",
    }
    config = load_config(path, env=env)
    analysis = config.pools["document-analysis"]
    assert analysis.queues == ("analysis-v2",)
    assert (analysis.tries, analysis.timeout_s, analysis.backoff_s) == (4, 600, "60")
    assert config.source("pools.document-analysis.tries") == "env ANALYSIS_JOB_MAX_TRIES"
    assert config.source("pools.document-analysis.queues") == "env DOCUMENT_ANALYSIS_QUEUE"
    assert config.pools["document-processing"].processes == 5
    assert (
        config.source("pools.document-processing.processes")
        == "env DOCMILL_POOL_DOCUMENT_PROCESSING_PROCESSES"
    )
    assert config.connection == "redis://:s3cret@redis.internal:6380/0"
    assert config.source("connection") == "env QUEUE_CONNECTION+REDIS_HOST+REDIS_PORT+REDIS_PASSWORD"

    flagged = load_config(path, env=env, connection="redis://other:6379/1", apps=["a:r", "b:r"])
    assert flagged.connection == "redis://other:6379/1" and flagged.source("connection") == "--connection"
    assert flagged.apps == ("a:r", "b:r") and flagged.source("app") == "--app"


def test_describe_masks_the_queue_password(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={"DOCMILL_QUEUE_URL": "redis://:hunter2@h:6379/0"})
    rows = {key: (value, source) for key, value, source in config.describe()}
    assert rows["connection"] == ("redis://:***@h:6379/0", "env DOCMILL_QUEUE_URL")
    assert rows["pools.default.processes"] == ("2", "default")
    assert "hunter2" not in repr(config.describe())


def test_config_path_comes_from_docmill_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[pools.only]\nprocesses = 1\n")
    assert list(load_config(env={"DOCMILL_CONFIG": str(path)}).pools) == ["only"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pools.a]\nprocesess = 2\n", "unknown key 'procesess' in [pools.a]"),
        ("[pools.a]\nbalance = 'sometimes'\n", "pool a: balance='sometimes' (file"),
        ("[pools.a]\nmin_processes = 3\nmax_processes = 2\n", "max_processes=2"),
        ("[pools.a]\nprocesses = 'two'\n", "processes='two' in [pools.a]"),
        ("[worker]\n", "unknown table(s) worker"),
        ("[pools.a\n", "is not valid TOML"),
    ],
)
def test_a_bad_configuration_is_refused_with_the_key_and_its_source(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(SupervisorConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert message in str(info.value)


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SupervisorConfigError, match="env ANALYSIS_JOB_MAX_TRIES"):
        load_config(write(tmp_path, ""), env={"ANALYSIS_JOB_MAX_TRIES": "three"})


def test_a_missing_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(SupervisorConfigError, match="does not exist; check --config or DOCMILL_CONFIG"):
        load_config(tmp_path / "nope.toml", env={})


def test_the_supervisor_alone_runs_one_default_pool_when_given_none(tmp_path: Path) -> None:
    config = load_supervisor_config(env={}, connection="sqlite:///q.db")
    assert {name: p.processes for name, p in config.pools.items()} == {"default": 1}


def test_pools_and_their_variables_are_data_the_caller_supplies() -> None:
    config = load_supervisor_config(
        env={"APP_QUEUE": "renamed"},
        connection="sqlite:///q.db",
        default_pools={"work": {"queues": ("work",), "processes": 3}},
        pool_env={"APP_QUEUE": ("work", "queues")},
    )
    assert config.pools["work"].queues == ("renamed",)
    assert config.source("pools.work.queues") == "env APP_QUEUE"
