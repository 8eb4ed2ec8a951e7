"""Which queue backend URL a command uses when none is given on its command line.

Order: ``DOCMILL_QUEUE_URL``; else the seed's ``QUEUE_CONNECTION`` (``redis``
builds a URL from ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_PASSWORD``,
``REDIS_DB``); else the embedded default, an SQLite file under ``storage/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

from docmill.queue.errors import ConfigurationError

DEFAULT_QUEUE_URL = "sqlite:///storage/queue.db"


def queue_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """The queue backend URL the environment asks for (see the module docstring)."""
    env = os.environ if env is None else env
    url = env.get("DOCMILL_QUEUE_URL", "").strip()
    if url:
        return url
    connection = env.get("QUEUE_CONNECTION", "").strip().lower()
    if connection in ("", "sqlite", "database"):
        return DEFAULT_QUEUE_URL
    if connection == "redis":
        host = env.get("REDIS_HOST", "").strip() or "127.0.0.1"
        port = env.get("REDIS_PORT", "").strip() or "6379"
        db = env.get("REDIS_DB", "").strip() or "0"
        password = env.get("REDIS_PASSWORD", "").strip()
        auth = f":{quote(password, safe='')}@" if password and password.lower() != "null" else ""
        return f"redis://{auth}{host}:{port}/{db}"
    raise ConfigurationError(
        f"QUEUE_CONNECTION={connection!r} is not supported; set it to 'redis' or 'sqlite', "
        "or give DOCMILL_QUEUE_URL"
    )
