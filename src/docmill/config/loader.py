"""The one owner of configuration: ``docmill.toml``, the environment and the flags, read once.

``load()`` is what the CLI, the API and the workers' start-up call. It reads the file
(``--config``, else ``$DOCMILL_CONFIG``, else ``./docmill.toml`` when present), takes the
environment mapping it is given, and builds each layer's typed settings:

==============  ============================  ============================================
settings        type                          from
==============  ============================  ============================================
storage_dir     ``Path``                      ``DOCMILL_STORAGE`` (``./storage``)
queue_url       ``str``                       ``--connection`` > ``DOCMILL_QUEUE_URL`` /
                                              ``QUEUE_CONNECTION`` + ``REDIS_*`` >
                                              ``[supervisor] connection`` > ``<storage>/queue.db``
supervisor      ``SupervisorConfig``          ``[supervisor]``, ``[defaults]``, ``[pools.*]``,
                                              the seed's pool variables, ``DOCMILL_POOL_*``
llm             ``LLMSettings``               ``[llm]`` and the LLM variables
documents       ``DocumentSettings``          the documents variables, ``DATABASE_URL``
==============  ============================  ============================================

Every value remembers where it came from (``sources``; ``docmill queue config`` shows
them). ``DOCMILL_STORAGE`` is the root of everything on disk: the queue database, the
documents database, the uploaded files and the logs, unless a URL of its own moves one.
Any invalid value raises ``InvalidConfiguration``: one sentence naming the setting and
its source, secrets masked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docmill.documents.errors import InvalidSetting
from docmill.documents.pools import PIPELINE_APP, SEED_POOL_VARIABLES, SEED_POOLS
from docmill.documents.settings import DocumentSettings
from docmill.llm.settings import LLMSettings
from docmill.queue import ConfigurationError, mask_url
from docmill.queue.backends import check_url
from docmill.queue.connection import DEFAULT_STORAGE, default_queue_url, queue_url_and_source
from docmill.queue.names import check_queue_name
from docmill.supervisor.config import SupervisorConfig, config_path, load_config, read_toml
from docmill.supervisor.errors import SupervisorConfigError

_TABLES = ("supervisor", "defaults", "pools", "llm")
PIPELINE_SOURCE = "default (docmill's document pipeline)"


class InvalidConfiguration(ConfigurationError):
    """A configuration value cannot work; the message names it and where it was set."""


@dataclass(frozen=True)
class Settings:
    """Every layer's settings, from one reading of the file, the environment and the flags."""

    storage_dir: Path
    queue_url: str
    supervisor: SupervisorConfig
    llm: LLMSettings
    documents: DocumentSettings
    config_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """Every effective value as ``(key, value, source)``, secrets masked, for ``queue config``."""
        rows = [
            ("config_file", str(self.config_file or "-"), self.source("config_file")),
            ("storage", str(self.storage_dir), self.source("storage")),
            ("database_url", mask_url(self.documents.database_url), self.source("database_url")),
            ("llm.provider", self.llm.resolved_provider(), self.source("llm.provider")),
        ]
        return rows + self.supervisor.describe()


def load(
    *,
    config_file: str | Path | None = None,
    connection: str | None = None,
    apps: tuple[str, ...] | list[str] = (),
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read the configuration once (see the module docstring); ``InvalidConfiguration`` if bad."""
    env = os.environ if env is None else env
    try:
        return _load(config_file, connection, tuple(apps), env)
    except InvalidConfiguration:
        raise
    except (SupervisorConfigError, InvalidSetting, ConfigurationError, ValueError) as exc:
        raise InvalidConfiguration(str(exc)) from None


def _load(
    config_file: str | Path | None, connection: str | None, apps: tuple[str, ...], env: Mapping[str, str]
) -> Settings:
    sources: dict[str, str] = {}
    file = config_path(config_file, env)
    data: dict[str, Any] = read_toml(file) if file is not None else {}
    if file is not None:
        sources["config_file"] = (
            "--config"
            if config_file
            else (
                "env DOCMILL_CONFIG"
                if env.get("DOCMILL_CONFIG", "").strip()
                else "found in the working directory"
            )
        )
        unknown = set(data) - set(_TABLES)
        if unknown:
            raise InvalidConfiguration(
                f"unknown table(s) {', '.join(sorted(unknown))} in {file}; "
                f"use {', '.join(f'[{t}]' for t in _TABLES)}"
            )

    storage = env.get("DOCMILL_STORAGE", "").strip()
    storage_dir = Path(storage or DEFAULT_STORAGE)
    sources["storage"] = "env DOCMILL_STORAGE" if storage else "default"

    queue_url, queue_source = _queue_url(connection, env, data, file, storage_dir)
    try:
        check_url(queue_url)
    except ConfigurationError as exc:
        raise InvalidConfiguration(f"{exc} (the queue URL comes from {queue_source})") from None

    supervisor = load_config(
        file,
        env=env,
        data=data,
        connection=queue_url,
        connection_source=queue_source,
        apps=apps,
        default_pools=SEED_POOLS,
        pool_env=SEED_POOL_VARIABLES,
        log_dir=storage_dir / "logs",
    )
    if storage and "log_dir" not in supervisor.sources:
        supervisor = dataclasses.replace(
            supervisor, sources={**supervisor.sources, "log_dir": "default (env DOCMILL_STORAGE)"}
        )
    if not supervisor.apps:
        supervisor = dataclasses.replace(
            supervisor, apps=(PIPELINE_APP,), sources={**supervisor.sources, "app": PIPELINE_SOURCE}
        )

    llm_table = data.get("llm", {})
    if not isinstance(llm_table, Mapping):
        raise InvalidConfiguration(f"[llm] in {file} must be a table")
    try:
        llm = LLMSettings.from_config(llm_table, env)
    except ValueError as exc:
        where = f"[llm] of {file} or the environment" if llm_table else "the environment"
        raise InvalidConfiguration(f"{exc} (from {where})") from None
    sources["llm.provider"] = _llm_source(env, llm_table, file)

    documents = DocumentSettings.from_env(env, queue_url=queue_url, llm=llm)
    for variable, queue in (
        ("DOCUMENT_ANALYSIS_QUEUE", documents.analysis_queue),
        ("DOCUMENT_PROCESSING_QUEUE", documents.processing_queue),
        ("DOCUMENT_WEBHOOK_QUEUE", documents.webhook_queue),
    ):
        check_queue_name(queue, where=f"env {variable}" if env.get(variable) else "default")
    sources["database_url"] = (
        "env DATABASE_URL"
        if env.get("DATABASE_URL", "").strip()
        else ("default (env DOCMILL_STORAGE)" if storage else "default")
    )
    _check_database_url(documents.database_url, sources["database_url"])
    return Settings(
        storage_dir=storage_dir,
        queue_url=queue_url,
        supervisor=supervisor,
        llm=llm,
        documents=documents,
        config_file=file,
        sources=sources,
    )


def _queue_url(
    connection: str | None,
    env: Mapping[str, str],
    data: Mapping[str, Any],
    file: Path | None,
    storage_dir: Path,
) -> tuple[str, str]:
    """Flag, then environment, then the file's ``[supervisor] connection``, then the default."""
    if connection:
        return connection, "--connection"
    url, source = queue_url_and_source(env)
    if not source.startswith("default"):
        return url, source
    table = data.get("supervisor", {})
    from_file = table.get("connection") if isinstance(table, Mapping) else None
    if isinstance(from_file, str) and from_file.strip():
        return from_file.strip(), f"file {file} [supervisor] connection"
    return default_queue_url(storage_dir), source


_SQL_DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql"})


def _check_database_url(url: str, source: str) -> None:
    """Refuse a documents database URL whose dialect no SQL driver has, before anything connects."""
    scheme, sep, _ = url.partition("://")
    dialect = scheme.split("+", 1)[0].lower()
    if not sep or dialect not in _SQL_DIALECTS:
        known = ", ".join(sorted(_SQL_DIALECTS))
        raise InvalidConfiguration(
            f"DATABASE_URL {mask_url(url)} ({source}) names no known database "
            f"{dialect or '(none)'!r}; use one of: {known} (e.g. postgresql+psycopg://user@host/db)"
        )


def _llm_source(env: Mapping[str, str], table: Mapping[str, Any], file: Path | None) -> str:
    if env.get("DOCMILL_LLM_PROVIDER", "").strip():
        return "env DOCMILL_LLM_PROVIDER"
    if table.get("provider"):
        return f"file {file} [llm] provider"
    for name in ("CLAUDE_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        if env.get(name, "").strip():
            return f"auto (env {name} is set)"
    return "auto (no key set)"
