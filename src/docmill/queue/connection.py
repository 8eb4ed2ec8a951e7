"""Which queue backend URL a command uses when none is given on its command line.

Order: ``DOCMILL_QUEUE_URL``; else the seed's ``QUEUE_CONNECTION`` (``redis``
builds a URL from ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_PASSWORD``,
``REDIS_DB``); else the embedded default, ``queue.db`` in the storage directory
(``DOCMILL_STORAGE``, else ``./storage``).

The mapping is passed in: the entry points hand over ``os.environ``, tests their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from docmill.queue.errors import ConfigurationError

DEFAULT_STORAGE = "storage"
DEFAULT_QUEUE_URL = "sqlite:///storage/queue.db"
_REDIS_VARIABLES = ("QUEUE_CONNECTION", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD")


def default_queue_url(storage_dir: str | Path = DEFAULT_STORAGE) -> str:
    """The embedded default: an SQLite file in the storage directory."""
    return f"sqlite:///{Path(storage_dir) / 'queue.db'}"


def queue_url_from_env(env: Mapping[str, str]) -> str:
    """The queue backend URL the environment asks for (see the module docstring)."""
    return queue_url_and_source(env)[0]


def queue_url_and_source(env: Mapping[str, str]) -> tuple[str, str]:
    """The URL, and where it came from (``env DOCMILL_QUEUE_URL``, ``default`` ...)."""
    url = env.get("DOCMILL_QUEUE_URL", "").strip()
    if url:
        return url, "env DOCMILL_QUEUE_URL"
    connection = env.get("QUEUE_CONNECTION", "").strip().lower()
    if connection in ("", "sqlite", "database"):
        storage = env.get("DOCMILL_STORAGE", "").strip()
        source = "default (env DOCMILL_STORAGE)" if storage else "default"
        return default_queue_url(storage or DEFAULT_STORAGE), source
    if connection == "redis":
        host = env.get("REDIS_HOST", "").strip() or "127.0.0.1"
        port = _whole_number(env, "REDIS_PORT", "6379")
        db = _whole_number(env, "REDIS_DB", "0")
        password = env.get("REDIS_PASSWORD", "").strip()
        auth = f":{quote(password, safe='')}@" if password and password.lower() != "null" else ""
        used = "+".join(name for name in _REDIS_VARIABLES if env.get(name, "").strip())
        return f"redis://{auth}{host}:{port}/{db}", f"env {used}"
    raise ConfigurationError(
        f"QUEUE_CONNECTION={connection!r} (env) is not supported; set it to 'redis' or 'sqlite', "
        "or give DOCMILL_QUEUE_URL"
    )


def _whole_number(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    if not raw.isdigit():
        raise ConfigurationError(f"{name}={raw!r} (env) is not a number; set it to a number like {default}")
    return raw
