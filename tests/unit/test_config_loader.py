"""The one configuration loader: each value through the way users set it, alone, and each bad
value as one sentence naming the setting and its source, with secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import InvalidConfiguration, load

SECRET = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def no_file_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./docmill.toml unless a test writes one


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docmill.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- defaults
def test_with_nothing_set_everything_lives_under_storage_in_the_working_directory() -> None:
    settings = load(env={})

    assert settings.storage_dir == Path("storage")
    assert settings.queue_url == "sqlite:///storage/queue.db"
    assert settings.documents.database_url == "sqlite:///storage/docmill.db"
    assert settings.documents.documents_dir == Path("storage/documents")
    assert settings.supervisor.log_dir == Path("storage/logs")
    assert settings.supervisor.apps == ("docmill.documents.jobs:registry",)
    assert {name: p.processes for name, p in settings.supervisor.pools.items()} == {
        "default": 2,
        "document-analysis": 1,
        "document-processing": 2,
    }
    assert settings.source("storage") == "default"
    assert settings.supervisor.source("connection") == "default"


# ---------------------------------------------------------------------- one value at a time
def test_docmill_storage_alone_moves_every_file(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"

    settings = load(env={"DOCMILL_STORAGE": str(root)})

    assert settings.queue_url == f"sqlite:///{root}/queue.db"
    assert settings.documents.database_url == f"sqlite:///{root}/docmill.db"
    assert settings.documents.documents_dir == root / "documents"
    assert settings.supervisor.log_dir == root / "logs"
    assert settings.source("storage") == "env DOCMILL_STORAGE"


def test_the_connection_flag_alone_sets_the_queue() -> None:
    settings = load(connection="redis://q.internal:6379/3", env={})

    assert settings.queue_url == settings.supervisor.connection == "redis://q.internal:6379/3"
    assert settings.documents.queue_url == "redis://q.internal:6379/3"
    assert settings.supervisor.source("connection") == "--connection"


def test_docmill_queue_url_alone_sets_the_queue() -> None:
    settings = load(env={"DOCMILL_QUEUE_URL": "redis://q:6379/1"})

    assert settings.queue_url == "redis://q:6379/1"
    assert settings.supervisor.source("connection") == "env DOCMILL_QUEUE_URL"


def test_the_seeds_redis_variables_alone_build_the_url() -> None:
    settings = load(env={"QUEUE_CONNECTION": "redis", "REDIS_HOST": "cache", "REDIS_DB": "4"})

    assert settings.queue_url == "redis://cache:6379/4"
    assert settings.supervisor.source("connection") == "env QUEUE_CONNECTION+REDIS_HOST+REDIS_DB"


def test_the_files_supervisor_connection_alone_sets_the_queue_for_every_command(tmp_path: Path) -> None:
    toml(tmp_path, '[supervisor]\nconnection = "redis://from-file:6379/2"\n')

    settings = load(env={})

    assert settings.queue_url == settings.documents.queue_url == "redis://from-file:6379/2"
    assert settings.supervisor.source("connection") == "file docmill.toml [supervisor] connection"
    assert settings.source("config_file") == "found in the working directory"


def test_precedence_is_flag_then_environment_then_file(tmp_path: Path) -> None:
    path = toml(tmp_path, '[supervisor]\nconnection = "redis://file:6379/0"\n')
    env = {"DOCMILL_QUEUE_URL": "redis://env:6379/0"}

    assert load(config_file=path, env=env).queue_url == "redis://env:6379/0"
    assert (
        load(config_file=path, env=env, connection="redis://flag:6379/0").queue_url == "redis://flag:6379/0"
    )


def test_docmill_config_alone_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "pools.toml"
    path.parent.mkdir()
    path.write_text("[pools.only]\nprocesses = 3\n")

    settings = load(env={"DOCMILL_CONFIG": str(path)})

    assert settings.config_file == path
    assert list(settings.supervisor.pools) == ["only"]
    assert settings.source("config_file") == "env DOCMILL_CONFIG"


def test_database_url_alone_moves_the_documents_database() -> None:
    settings = load(env={"DATABASE_URL": "postgresql://app@db/docs"})

    assert settings.documents.database_url == "postgresql+psycopg://app@db/docs"
    assert settings.source("database_url") == "env DATABASE_URL"
    assert settings.queue_url == "sqlite:///storage/queue.db"


def test_the_llm_table_of_the_file_alone_sets_the_provider(tmp_path: Path) -> None:
    toml(tmp_path, '[llm]\nprovider = "openai"\nopenai_base_url = "http://127.0.0.1:8001/v1"\n')

    settings = load(env={})

    assert settings.llm.resolved_provider() == "openai"
    assert settings.documents.llm is settings.llm
    assert settings.source("llm.provider").endswith("[llm] provider")


def test_the_apps_flag_alone_replaces_the_pipeline() -> None:
    settings = load(apps=("mine:registry",), env={})

    assert settings.supervisor.apps == ("mine:registry",)
    assert settings.supervisor.source("app") == "--app"


def test_describe_shows_each_value_with_its_source_and_masks_secrets() -> None:
    settings = load(env={"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@h:6379/0", "DOCMILL_STORAGE": "/srv/d"})

    rows = {key: (value, source) for key, value, source in settings.describe()}

    assert rows["storage"] == ("/srv/d", "env DOCMILL_STORAGE")
    assert rows["connection"] == ("redis://:***@h:6379/0", "env DOCMILL_QUEUE_URL")
    assert rows["database_url"] == ("sqlite:////srv/d/docmill.db", "default (env DOCMILL_STORAGE)")
    assert SECRET not in repr(settings.describe())


# ---------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        (
            {"DOCMILL_QUEUE_URL": f"rediz://:{SECRET}@host/0"},
            None,
            "unknown queue backend 'rediz' in rediz://:***@host/0; use one of: memory://, redis://, "
            "rediss://, sqlite:// (the queue URL comes from env DOCMILL_QUEUE_URL)",
        ),
        (
            {"DOCMILL_QUEUE_URL": f"rediz://{SECRET}@host/0"},
            None,
            "unknown queue backend 'rediz' in rediz://***@host/0",
        ),
        (
            {"QUEUE_CONNECTION": "redis", "REDIS_DB": "twelve", "REDIS_PASSWORD": SECRET},
            None,
            "REDIS_DB='twelve' (env) is not a number; set it to a number like 0",
        ),
        (
            {"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@host/x"},
            None,
            "the Redis database in redis://:***@host/x must be a number like /0, not 'x' "
            "(the queue URL comes from env DOCMILL_QUEUE_URL)",
        ),
        (
            {"DATABASE_URL": f"postgresq://app:{SECRET}@db/docs"},
            None,
            "DATABASE_URL postgresq://app:***@db/docs (env DATABASE_URL) names no known database 'postgresq'",
        ),
        ({}, "[pools.a\n", "is not valid TOML"),
        (
            {},
            "[pools.a]\nmin_processes = 3\nmax_processes = 2\n",
            "pool a: max_processes=2 (file ",
        ),
        ({}, "[worker]\n", "unknown table(s) worker in "),
        ({"DOCMILL_LLM_PROVIDER": "gpt"}, None, "unknown LLM provider 'gpt'"),
        ({"ANALYSIS_JOB_MAX_TRIES": "three"}, None, "tries='three' in env ANALYSIS_JOB_MAX_TRIES is invalid"),
        ({"DOCUMENT_MAX_UPLOAD_MB": "lots"}, None, "DOCUMENT_MAX_UPLOAD_MB='lots' (env) is not a number"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_it_and_its_source_with_secrets_masked(
    tmp_path: Path, env: dict[str, str], file: str | None, expected: str
) -> None:
    if file is not None:
        toml(tmp_path, file)

    with pytest.raises(InvalidConfiguration) as info:
        load(env=env)

    message = str(info.value)
    assert expected in message
    assert SECRET not in message
    assert "\n" not in message.strip()


def test_each_seed_pool_has_a_memory_limit_above_what_its_healthy_workers_hold() -> None:
    pools = load(env={}).supervisor.pools

    assert {name: pool.memory_mb for name, pool in pools.items()} == {
        "default": 192,
        "document-analysis": 256,
        "document-processing": 256,
    }


def test_a_pools_memory_limit_set_alone_through_the_environment_or_the_file(tmp_path: Path) -> None:
    from_env = load(env={"DOCMILL_POOL_DOCUMENT_PROCESSING_MEMORY_MB": "400"}).supervisor
    assert from_env.pools["document-processing"].memory_mb == 400
    assert from_env.pools["document-analysis"].memory_mb == 256

    toml(tmp_path, "[pools.work]\nmemory_mb = 300\n[pools.other]\n")
    from_file = load(env={}).supervisor
    assert (from_file.pools["work"].memory_mb, from_file.pools["other"].memory_mb) == (300, 256)


def test_the_rate_limit_wait_is_five_minutes_unless_set() -> None:
    assert load(env={}).llm.rate_wait_s == 300.0


def test_the_rate_limit_wait_set_alone_in_the_file(tmp_path: Path) -> None:
    toml(tmp_path, "[llm]\nrate_wait_s = 45\n")

    assert load(env={}).llm.rate_wait_s == 45.0


def test_the_rate_limit_wait_set_alone_in_the_environment() -> None:
    assert load(env={"DOCMILL_LLM_RATE_WAIT_S": "0"}).llm.rate_wait_s == 0.0


def test_a_bad_rate_limit_wait_is_one_sentence_naming_its_source(tmp_path: Path) -> None:
    toml(tmp_path, "[llm]\nrate_wait_s = -1\n")

    with pytest.raises(InvalidConfiguration, match=r"\[llm\] rate_wait_s must be a number of seconds"):
        load(env={})
