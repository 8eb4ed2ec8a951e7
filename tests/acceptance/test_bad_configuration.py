"""Every invalid configuration value, fed to the real commands: one sentence naming the setting
and where it came from, exit code 2 (3, a boot failure, for a lone worker), and the secret in
it nowhere: not on stdout, not on stderr, not in any file under the storage directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCMILL = str(Path(sys.executable).parent / "docmill")
SECRET = "Zq9-hunter2-Secret"

# (what is wrong, environment, docmill.toml or None, what the sentence must say)
CASES = [
    (
        "unknown scheme",
        {"DOCMILL_QUEUE_URL": f"rediz://:{SECRET}@127.0.0.1/0"},
        None,
        "unknown queue backend 'rediz' in rediz://:***@127.0.0.1/0",
    ),
    (
        "password given as a user name",
        {"DOCMILL_QUEUE_URL": f"rediz://{SECRET}@127.0.0.1/0"},
        None,
        "unknown queue backend 'rediz' in rediz://***@127.0.0.1/0",
    ),
    (
        "non-numeric Redis database variable",
        {"QUEUE_CONNECTION": "redis", "REDIS_DB": "twelve", "REDIS_PASSWORD": SECRET},
        None,
        "REDIS_DB='twelve' (env) is not a number",
    ),
    (
        "non-numeric Redis database in the URL",
        {"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@127.0.0.1/x"},
        None,
        "the Redis database in redis://:***@127.0.0.1/x must be a number like /0",
    ),
    (
        "unknown SQL dialect",
        {"DATABASE_URL": f"postgresq://docmill:{SECRET}@127.0.0.1/docmill"},
        None,
        "DATABASE_URL postgresq://docmill:***@127.0.0.1/docmill (env DATABASE_URL) names no known database",
    ),
    (
        "malformed TOML",
        {"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@127.0.0.1:1/0"},
        "[pools.a\n",
        "docmill.toml is not valid TOML",
    ),
    (
        "max_processes below min_processes",
        {"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@127.0.0.1:1/0"},
        "[pools.a]\nmin_processes = 3\nmax_processes = 2\n",
        "pool a: max_processes=2 (file docmill.toml) is below min_processes=3",
    ),
]
COMMANDS = [
    ("queue", "status"),
    ("queue", "config"),
    ("supervise",),
    ("serve",),
    ("documents", "list"),
    ("submit", "notes.txt"),
]


def clean_env(extra: dict[str, str], storage: Path) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCMILL_", "DOCUMENT_", "REDIS_", "CLAUDE_", "ANTHROPIC_", "OPENAI_"))
        and key not in {"DATABASE_URL", "QUEUE_CONNECTION"}
    }
    return {**inherited, "COLUMNS": "200", "NO_COLOR": "1", "DOCMILL_STORAGE": str(storage), **extra}


@pytest.mark.parametrize(("what", "env", "toml", "sentence"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_stops_every_command_with_one_sentence_and_no_secret(
    tmp_path: Path, what: str, env: dict[str, str], toml: str | None, sentence: str
) -> None:
    storage = tmp_path / "storage"
    if toml is not None:
        (tmp_path / "docmill.toml").write_text(toml)
    (tmp_path / "notes.txt").write_text("Meeting notes.\n")
    environment = clean_env(env, storage)

    for command in COMMANDS:
        result = subprocess.run(
            [DOCMILL, *command],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        shown = " ".join(command)
        assert result.returncode == 2, f"{shown}: {result.returncode}\n{result.stdout}{result.stderr}"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{shown}: {result.stderr}"
        assert sentence in " ".join(lines), f"{shown}: {result.stderr}"
        assert "Traceback" not in result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr, shown

    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == [], leaked


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"DOCMILL_QUEUE_URL": f"rediz://:{SECRET}@127.0.0.1/0"},
            "unknown queue backend 'rediz' in rediz://:***@127.0.0.1/0",
        ),
        (
            {"DOCMILL_QUEUE_URL": f"redis://:{SECRET}@127.0.0.1/x"},
            "the Redis database in redis://:***@127.0.0.1/x must be a number",
        ),
    ],
)
def test_a_lone_worker_with_a_bad_url_is_a_boot_failure_that_names_it_masked(
    tmp_path: Path, env: dict[str, str], sentence: str
) -> None:
    result = subprocess.run(
        [DOCMILL, "queue", "work", "--app", "docmill.documents.jobs:registry"],
        cwd=tmp_path,
        env=clean_env(env, tmp_path / "storage"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3, result.stdout + result.stderr
    assert sentence in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_a_worker_whose_documents_database_url_is_bad_is_a_boot_failure_with_the_url_masked(
    tmp_path: Path,
) -> None:
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    result = subprocess.run(
        [DOCMILL, "queue", "work", "--connection", queue, "--app", "docmill.documents.jobs:registry"],
        cwd=tmp_path,
        env=clean_env({"DATABASE_URL": f"postgresq://docmill:{SECRET}@127.0.0.1/docmill"}, tmp_path / "s"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3, result.stdout + result.stderr
    assert "worker.startup_failed" in result.stdout
    assert "postgresq://docmill:***@127.0.0.1/docmill" in result.stdout
    assert SECRET not in result.stdout + result.stderr
