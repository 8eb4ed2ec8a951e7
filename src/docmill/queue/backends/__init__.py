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
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def check_url(url: str) -> None:
    """Raise ``ConfigurationError`` for a URL no backend can use, before anything connects:
    an unknown scheme, a Redis database that is not a number, a malformed option."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError as exc:
        raise ConfigurationError(f"the queue URL {mask_url(url)} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise ConfigurationError(
            f"unknown queue backend {scheme or '(none)'!r} in {mask_url(url)}; use one of: {known}"
        )
    if scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ConfigurationError(
                f"the Redis database in {mask_url(url)} must be a number like /0, not {db!r}"
            )
    parse_settings(url)


def backend_from_url(url: str) -> Backend:
    """Build (not connect) the backend a URL names; ``ConfigurationError`` if none can."""
    check_url(url)
    target = _SCHEMES[urlsplit(url).scheme.lower()]
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: Backend = cls(url, parse_settings(url))
    return backend


# Schemes whose user name alone is only a name; elsewhere (``redis://SECRET@host``) a user
# name without a password is how a password is often written, so it is masked too.
_NAMED_USER_SCHEMES = ("postgres", "postgresql", "mysql", "mariadb", "sqlite", "http", "https")
# A query key holding any of these is masked: webhook and API URLs spell their secrets
# api_key, apiKey, access_token, X-Amz-Signature, sig, ...; masking a harmless value costs less.
_SECRET_QUERY_WORDS = ("pass", "secret", "token", "key", "auth", "sig", "credential")


def _names_a_secret(query_key: str) -> bool:
    key = query_key.lower()
    return any(word in key for word in _SECRET_QUERY_WORDS)


def mask_url(url: str) -> str:
    """The URL with every secret in it replaced by ``***``, for every message and log line.

    Masked: the password (``redis://:PW@host``, ``postgresql://u:PW@host``), a user name
    given alone where it stands for a password (``redis://PW@host``), and query values
    whose key names a secret (``?password=PW``, ``?api_key=K``, ``?access_token=T``,
    ``?sig=S``). A URL that cannot be parsed is not shown.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed URL, not shown)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        scheme = parts.scheme.lower().split("+")[0]
        if has_password:
            userinfo = f"{user}:***"
        elif scheme not in _NAMED_USER_SCHEMES:
            userinfo = "***"
        netloc = f"{userinfo}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_names_a_secret(k) for k, _ in pairs):
            query = "&".join(f"{k}=***" if _names_a_secret(k) else urlencode([(k, v)]) for k, v in pairs)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))
