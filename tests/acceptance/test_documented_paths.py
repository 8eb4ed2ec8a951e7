"""The documented ways to run the pipeline, followed as a new user would: real commands in
subprocesses, from fresh working directories, with only the settings the docs name.

- A worker that knows its backend only from ``--connection`` (no queue variable in its
  environment) runs a document through analysis *and* processing: the processing job goes
  to the worker's backend, not to ``./storage/queue.db``. On Redis, and on an SQLite file
  outside ``./storage``.
- ``docmill supervise --connection URL`` and ``[supervisor] connection`` in ``docmill.toml``
  do the same with the default pools.
- ``DOCMILL_STORAGE`` alone: an API started in one directory and a supervisor started in
  another, both with the same ``DOCMILL_STORAGE``, see each other and complete a document.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import wait_for

DOCMILL = str(Path(sys.executable).parent / "docmill")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "documents"
NOTES = EXAMPLES / "meeting-notes.md"
PIPELINE = "docmill.documents.jobs:registry"
QUEUES = "document-analysis,document-processing,default"


def clean_env(**extra: str) -> dict[str, str]:
    """The inherited environment without any docmill setting, plus ``extra``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCMILL_", "DOCUMENT_", "REDIS_", "CLAUDE_", "ANTHROPIC_", "OPENAI_"))
        and key not in {"DATABASE_URL", "QUEUE_CONNECTION", "ANALYSIS_JOB_MAX_TRIES"}
    }
    return {**inherited, "COLUMNS": "120", "NO_COLOR": "1", "DOCMILL_LLM_PROVIDER": "extractive", **extra}


def run(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCMILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def submit(env: dict[str, str], cwd: Path) -> int:
    result = run(env, cwd, "submit", str(NOTES), "--auto-approve", "--json")
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)[0]["document"]["id"])


def status_of(storage: Path, document_id: int) -> str:
    with sqlite3.connect(storage / "docmill.db") as db:
        row = db.execute("SELECT status FROM documents WHERE id = ?", (document_id,)).fetchone()
    return str(row[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def start(
    processes: list[subprocess.Popen[bytes]], env: dict[str, str], cwd: Path, *args: str
) -> subprocess.Popen[bytes]:
    log = (cwd / f"{args[0]}.out").open("wb")
    process = subprocess.Popen([DOCMILL, *args], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    processes.append(process)
    return process


def test_a_worker_that_knows_its_backend_only_from_connection_runs_the_whole_pipeline(
    tmp_path: Path, queue_url: str
) -> None:
    # Given a document submitted to a queue named by DOCMILL_QUEUE_URL
    storage = tmp_path / "shared-storage"
    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    document_id = submit(clean_env(DOCMILL_STORAGE=str(storage), DOCMILL_QUEUE_URL=queue_url), client_dir)

    # When a worker with no queue variable at all, only --connection, drains the queues
    worker = run(
        clean_env(DOCMILL_STORAGE=str(storage)),
        worker_dir,
        "queue",
        "work",
        "--connection",
        queue_url,
        "--app",
        PIPELINE,
        "--queue",
        QUEUES,
        "--stop-when-empty",
        "--sleep",
        "0.2",
    )

    # Then the document went through both stages on that backend, and nothing went to ./storage
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert status_of(storage, document_id) == "completed"
    done = [json.loads(line)["name"] for line in worker.stdout.splitlines() if '"job.done"' in line] or [
        line.split(" name=")[1].split()[0] for line in worker.stdout.splitlines() if " job.done " in line
    ]
    assert done[:2] == ["documents.analyze", "documents.process"]
    assert not (worker_dir / "storage").exists()


def test_a_lone_worker_takes_its_queue_from_the_files_supervisor_connection(
    tmp_path: Path, queue_url: str
) -> None:
    # Given a docmill.toml naming the queue, and a document submitted to that queue
    storage = tmp_path / "shared-storage"
    host = tmp_path / "host"
    host.mkdir()
    (host / "docmill.toml").write_text(f'[supervisor]\nconnection = "{queue_url}"\n')
    document_id = submit(clean_env(DOCMILL_STORAGE=str(storage), DOCMILL_QUEUE_URL=queue_url), tmp_path)

    # When a worker runs there with neither --connection nor a queue variable
    worker = run(
        clean_env(DOCMILL_STORAGE=str(storage)),
        host,
        "queue",
        "work",
        "--app",
        PIPELINE,
        "--queue",
        QUEUES,
        "--stop-when-empty",
        "--sleep",
        "0.2",
    )

    # Then it served the file's queue, as every other command does
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert status_of(storage, document_id) == "completed"


@pytest.mark.parametrize("how", ["flag", "file"])
def test_supervise_with_its_connection_in_a_flag_or_the_file_runs_the_whole_pipeline(
    tmp_path: Path, queue_url: str, how: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    storage = tmp_path / "storage-root"
    host = tmp_path / "host"
    host.mkdir()
    env = clean_env(DOCMILL_STORAGE=str(storage))
    if how == "flag":
        start(processes, env, host, "supervise", "--connection", queue_url)
    else:
        (host / "docmill.toml").write_text(f'[supervisor]\nconnection = "{queue_url}"\n')
        start(processes, env, host, "supervise")

    document_id = submit(clean_env(DOCMILL_STORAGE=str(storage), DOCMILL_QUEUE_URL=queue_url), tmp_path)

    wait_for(lambda: status_of(storage, document_id) == "completed", 90, "the document to complete")
    assert not (host / "storage").exists()
    assert (storage / "logs" / "supervisor.log").is_file()


def test_an_api_and_a_supervisor_in_two_directories_share_one_docmill_storage(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    # Given the API started in one directory and the supervisor in another, with one DOCMILL_STORAGE
    storage = tmp_path / "srv" / "docmill"
    api_dir, host_dir, operator_dir = tmp_path / "api", tmp_path / "host", tmp_path / "operator"
    for directory in (api_dir, host_dir, operator_dir):
        directory.mkdir()
    env = clean_env(DOCMILL_STORAGE=str(storage))
    port = free_port()
    start(processes, env, api_dir, "serve", "--dev", "--port", str(port))
    start(processes, env, host_dir, "supervise")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/api/health"), 60, "the API to answer")

    # When a document is uploaded through the API
    with NOTES.open("rb") as fh:
        created = httpx.post(
            f"{base}/api/documents",
            files={"file": ("meeting-notes.md", fh, "text/markdown")},
            data={"auto_approve": "true"},
            timeout=30,
        )
    assert created.status_code in (200, 201), created.text
    document_id = created.json()["id"]

    # Then the supervisor's workers complete it, and the operator sees that supervisor
    def completed() -> bool:
        return bool(
            httpx.get(f"{base}/api/documents/{document_id}", timeout=10).json()["status"] == "completed"
        )

    wait_for(completed, 90, "the document to complete")
    status = run(env, operator_dir, "queue", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["masters"], status.stdout
    for name in ("queue.db", "docmill.db", "documents", "logs"):
        assert (storage / name).exists(), name
    for directory in (api_dir, host_dir, operator_dir):
        assert not (directory / "storage").exists()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
