"""Backends, imported lazily from a URL so a worker loads only the one it uses.

    memory://                          in-process, for unit tests
    sqlite:///storage/queue.db         embedded default (relative path) / sqlite:////abs/path.db
    redis://host:6379/0?prefix=docmill production; several hosts share one Redis

Query parameters set ``BackendSettings`` fields (``prefix``,
``completed_retention_s``, ``completed_max``, ``metrics_retention_s``, ...).
"""

from __future__ import annotations

import dataclasses
import importlib
from urllib.parse import parse_qsl, urlsplit

from docmill.queue.backend import Backend, BackendSettings
from docmill.queue.errors import ConfigurationError

_SCHEMES = {
    "memory": "docmill.queue.backends.memory:MemoryBackend",
    "sqlite": "docmill.queue.backends.sqlite:SQLiteBackend",
    "redis": "docmill.queue.backends.redis:RedisBackend",
    "rediss": "docmill.queue.backends.redis:RedisBackend",
}


def parse_settings(url: str) -> BackendSettings:
    """Read ``BackendSettings`` from the URL's query string; unknown keys go to ``extra``."""
    query = dict(parse_qsl(urlsplit(url).query))
    known = {f.name: f for f in dataclasses.fields(BackendSettings) if f.name != "extra"}
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    for key, raw in query.items():
        f = known.get(key)
        if f is None:
            extra[key] = raw
            continue
        try:
            values[key] = (
                raw if f.type in ("str", str) else (int(raw) if f.type in ("int", int) else float(raw))
            )
        except ValueError as exc:
            raise ConfigurationError(f"queue URL option {key}={raw!r} is not a number") from exc
    return BackendSettings(**values, extra=extra)  # type: ignore[arg-type]


def backend_from_url(url: str) -> Backend:
    """Build (not connect) the backend a URL names."""
    scheme = urlsplit(url).scheme.lower()
    target = _SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(sorted(_SCHEMES))
        raise ConfigurationError(f"unknown queue backend {scheme!r} in {url!r}; use one of: {known}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: Backend = cls(url, parse_settings(url))
    return backend


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for logs and ``queue config``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
