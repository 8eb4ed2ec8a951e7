"""Shared fixtures: real services, skipped on a laptop without them, required in CI.

With ``CI=true`` a test that needs Redis or PostgreSQL *fails* when the
service does not answer, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

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
