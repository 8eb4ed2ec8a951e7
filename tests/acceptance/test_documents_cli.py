"""`docmill submit`, `docmill documents ...` and `docmill serve`, as an operator runs them.

The installed console script runs in subprocesses against a storage directory under
``tmp_path`` (SQLite documents database and SQLite queue). No worker runs: submitted
documents stay ``uploaded`` with their analysis job pending on the queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from docmill.queue import JobState, backend_from_url

DOCMILL = str(Path(sys.executable).parent / "docmill")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of every command: storage and queue under ``tmp_path``, nothing inherited
    that could point them elsewhere."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCMILL_", "DOCUMENT_", "REDIS_", "CLAUDE_", "ANTHROPIC_", "OPENAI_"))
        and key not in {"DATABASE_URL", "QUEUE_CONNECTION"}
    }
    storage = tmp_path / "storage"
    return {
        **inherited,
        "DOCMILL_STORAGE": str(storage),
        "DOCMILL_QUEUE_URL": f"sqlite:///{storage / 'queue.db'}",
        "COLUMNS": "120",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }


def docmill(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCMILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def _jobs(url: str, document_id: int) -> list[tuple[str, str, JobState]]:
    backend = backend_from_url(url)
    await backend.connect()
    try:
        return sorted(
            (job.name, job.queue, job.state) for job in await backend.find_by_tag(f"document:{document_id}")
        )
    finally:
        await backend.close()


def queued_jobs(env: dict[str, str], document_id: int) -> list[tuple[str, str, JobState]]:
    return asyncio.run(_jobs(env["DOCMILL_QUEUE_URL"], document_id))


# ----------------------------------------------------------------------------- submit and documents


def test_submit_prints_the_document_ids_and_queues_each_analysis(tmp_path: Path, env: dict[str, str]) -> None:
    report = write(tmp_path / "report.md", "# Report\n\nRevenue grew.\n")
    notes = write(tmp_path / "notes.txt", "Meeting notes.\n")

    result = docmill(env, tmp_path, "submit", str(report), str(notes))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1  report.md  (uploaded)", "2  notes.txt  (uploaded)"]
    for document_id in (1, 2):
        assert queued_jobs(env, document_id) == [("documents.analyze", "document-analysis", JobState.PENDING)]


def test_submit_json_then_documents_list_and_show_agree(tmp_path: Path, env: dict[str, str]) -> None:
    # Given two documents submitted with options, and one submitted again
    report = write(tmp_path / "report.md", "# Report\n\nRevenue grew.\n")
    invoice = write(tmp_path / "invoice.txt", "Invoice 42, total 99.50 EUR.\n")
    schema = write(tmp_path / "schema.json", json.dumps({"type": "object", "properties": {"total": {}}}))
    first = as_json(docmill(env, tmp_path, "submit", str(report), "--json"))
    second = as_json(
        docmill(
            env,
            tmp_path,
            "submit",
            str(invoice),
            "--profile",
            "extract",
            "--schema",
            f"@{schema}",
            "--model",
            "claude-haiku-4-5",
            "--auto-approve",
            "--batch",
            "--json",
        )
    )
    again = as_json(docmill(env, tmp_path, "submit", str(report), "--json"))

    # When they are listed and shown
    listing = as_json(docmill(env, tmp_path, "documents", "list", "--json"))
    shown = as_json(docmill(env, tmp_path, "documents", "show", "2", "--json"))

    # Then the listing holds the two documents, newest first, as submit reported them
    assert [item["document"]["id"] for item in (first + second)] == [1, 2]
    assert again[0]["existing"] is True and again[0]["document"]["id"] == 1
    assert (listing["total"], listing["page"], listing["pages"]) == (2, 1, 1)
    assert [d["id"] for d in listing["documents"]] == [2, 1]
    assert [d["status"] for d in listing["documents"]] == ["uploaded", "uploaded"]
    assert shown == second[0]["document"]
    assert shown["name"] == "invoice.txt"
    assert shown["options"] == {
        "profile": "extract",
        "model": "claude-haiku-4-5",
        "callback_url": None,
        "auto_approve": True,
        "schema": {"type": "object", "properties": {"total": {}}},
        "prompt": None,
        "batch": True,
    }
    assert first[0]["document"]["options"]["batch"] is None  # the profile's default


def test_documents_list_filters_by_status_and_renders_a_table(tmp_path: Path, env: dict[str, str]) -> None:
    files = [str(write(tmp_path / f"doc{n}.txt", f"document number {n}\n")) for n in range(3)]
    assert docmill(env, tmp_path, "submit", *files).returncode == 0
    cancelled = as_json(docmill(env, tmp_path, "documents", "cancel", "2", "--json"))

    only_cancelled = as_json(docmill(env, tmp_path, "documents", "list", "--status", "cancelled", "--json"))
    table = docmill(env, tmp_path, "documents", "list")

    assert cancelled["status"] == "cancelled"
    assert [d["id"] for d in only_cancelled["documents"]] == [2]
    assert table.returncode == 0, table.stderr
    rows = [[cell.strip() for cell in line.split("│")] for line in table.stdout.splitlines() if "│" in line]
    assert [(row[0], row[1], row[5]) for row in rows] == [
        ("3", "uploaded", "doc2.txt"),
        ("2", "cancelled", "doc1.txt"),
        ("1", "uploaded", "doc0.txt"),
    ]
    assert table.stdout.splitlines()[-1] == "3 documents; page 1 of 1."


def test_documents_steering_and_errors_have_exit_codes_and_json(tmp_path: Path, env: dict[str, str]) -> None:
    doc = write(tmp_path / "doc.txt", "some text\n")
    assert docmill(env, tmp_path, "submit", str(doc)).returncode == 0

    not_ready = docmill(env, tmp_path, "documents", "result", "1", "--json")
    cancelled = docmill(env, tmp_path, "documents", "cancel", "1")
    cancel_again = docmill(env, tmp_path, "documents", "cancel", "1", "--json")
    retried = as_json(docmill(env, tmp_path, "documents", "retry", "1", "--json"))
    approve = docmill(env, tmp_path, "documents", "approve", "1")
    missing = docmill(env, tmp_path, "documents", "show", "99", "--json")
    deleted = as_json(docmill(env, tmp_path, "documents", "delete", "1", "--force", "--json"))
    gone = docmill(env, tmp_path, "documents", "list", "--json")

    assert (not_ready.returncode, as_json(not_ready)) == (
        1,
        {"error": "Document 1 is uploaded and has no result yet; wait until it is completed."},
    )
    assert (cancelled.returncode, cancelled.stdout) == (0, "Document 1 (doc.txt) is now cancelled.\n")
    assert cancel_again.returncode == 1
    assert (
        as_json(cancel_again)["error"]
        == "Document 1 is cancelled, so it cannot be cancelled; retry it first."
    )
    assert retried["status"] == "uploaded"
    assert approve.returncode == 1
    assert approve.stderr.startswith("error: Document 1 is uploaded, so it cannot be queued for processing")
    assert (missing.returncode, as_json(missing)["error"]) == (
        1,
        "Document 99 does not exist; list documents to find its id.",
    )
    assert deleted == {"deleted": 1}
    assert as_json(gone)["total"] == 0


def test_submit_refuses_options_that_cannot_work_before_storing_anything(
    tmp_path: Path, env: dict[str, str]
) -> None:
    doc = write(tmp_path / "doc.txt", "some text\n")

    result = docmill(env, tmp_path, "submit", str(doc), "--profile", "extract")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: The extract profile needs a schema: a JSON Schema object of the fields.\n"
    assert not (tmp_path / "storage" / "documents").exists()


def test_submit_reports_an_empty_file_and_submits_the_others(tmp_path: Path, env: dict[str, str]) -> None:
    empty = write(tmp_path / "empty.txt", "")
    doc = write(tmp_path / "doc.txt", "some text\n")

    result = docmill(env, tmp_path, "submit", str(empty), str(doc), "--json")

    assert result.returncode == 1
    [refused, submitted] = as_json(result)
    assert (refused["document"], refused["error"]) == (None, "The file is empty; upload a file with content.")
    assert submitted["document"]["id"] == 1


def test_submit_wait_stops_at_the_timeout_when_no_worker_runs(tmp_path: Path, env: dict[str, str]) -> None:
    doc = write(tmp_path / "doc.txt", "some text\n")

    result = docmill(env, tmp_path, "submit", str(doc), "--wait", "--timeout", "1", "--poll", "0.2")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "1  doc.txt  (uploaded)"
    assert [cell.strip() for cell in lines[-1].split("│")][:4] == ["1", "doc.txt", "uploaded", "$0.0000"]
    assert result.stderr.splitlines()[-1] == (
        "error: stopped waiting after 1s with document(s) 1 still in the pipeline; "
        "follow them with: docmill documents show ID"
    )


# ----------------------------------------------------------------------------- serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_refuses_a_non_loopback_address_without_tokens(tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()

    result = docmill(env, tmp_path, "serve", "--host", "0.0.0.0", "--port", str(port), timeout=60)

    assert result.returncode == 2
    assert result.stderr.replace("\n", " ").strip() == (
        "error: no API tokens are configured, so docmill serve will not listen on 0.0.0.0; set "
        "DOCMILL_API_TOKENS to one or more comma-separated secret tokens, or use --host 127.0.0.1"
    )
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
    dev = docmill(env, tmp_path, "serve", "--host", "0.0.0.0", "--dev", "--port", str(port), timeout=60)
    assert dev.returncode == 2


def _serve(env: dict[str, str], cwd: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [DOCMILL, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"docmill serve exited {process.returncode}: {output}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("docmill serve did not answer /api/health within 60 s")


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as systemd and container runtimes stop it; uvicorn shuts down gracefully and
    then ends by the signal it caught."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    return output


def test_serve_with_tokens_answers_only_requests_that_carry_one(tmp_path: Path, env: dict[str, str]) -> None:
    token = uuid.uuid4().hex
    process, base = _serve({**env, "DOCMILL_API_TOKENS": f"{token},another"}, tmp_path)
    try:
        anonymous = httpx.get(f"{base}/api/documents", timeout=5)
        wrong = httpx.get(f"{base}/api/documents", headers={"Authorization": "Bearer nope"}, timeout=5)
        upload = httpx.post(
            f"{base}/api/documents",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("a.txt", b"served text\n", "text/plain")},
            timeout=30,
        )
    finally:
        output = _stop(process)

    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert upload.status_code == 201, upload.text
    assert token not in output


def test_serve_dev_lets_this_host_in_without_tokens(tmp_path: Path, env: dict[str, str]) -> None:
    process, base = _serve(env, tmp_path, "--dev")
    try:
        response = httpx.get(f"{base}/api/documents", timeout=5)
    finally:
        output = _stop(process)

    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
    assert "development: no API tokens, so requests from this host need none." in output
