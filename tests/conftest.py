"""Shared fixtures: real services, skipped on a laptop without them, required in CI.

With ``CI=true`` a test that needs Redis or PostgreSQL *fails* when the
service does not answer, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_HOST = os.environ.get("DOCMILL_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("DOCMILL_TEST_REDIS_PORT", "6379"))
# Database 13 is ours alone (the peer benchmark uses 14); each test also gets its own prefix.
REDIS_DB = int(os.environ.get("DOCMILL_TEST_REDIS_DB", "13"))
POSTGRES_URL = os.environ.get(
    "DOCMILL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_program(name: str, how: str = "") -> str:
    """The path of program ``name``; skip (laptop) or fail (CI) when it is not installed.
    ``how`` says where it comes from (a Debian package, ``.ci/run``)."""
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed" + (f" ({how})" if how else "")
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def require_service(name: str, host: str, port: int) -> None:
    """Skip (laptop) or fail (CI) when a service the test needs does not answer."""
    if _answers(host, port):
        return
    message = f"{name} does not answer on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test database; every key under it is deleted afterwards."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    prefix = f"dmtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_url(redis_prefix: str) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={redis_prefix}"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own for one test, dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    admin_url = make_url(POSTGRES_URL)
    require_service("PostgreSQL", admin_url.host or "127.0.0.1", admin_url.port or 5432)
    name = f"docmill_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The documents database: an SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storage' / 'docmill.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A queue backend URL: an SQLite file, then Redis under the test's own prefix."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` every 0.1 s until it is truthy and return its value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
