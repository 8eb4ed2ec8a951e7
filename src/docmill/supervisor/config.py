"""The supervisor's configuration: pools of worker processes, and where each value came from.

Precedence, lowest first (each value remembers the layer that set it, so
``docmill queue config`` can show it):

1. **default** - the seed's pools: ``default`` (2 processes), ``document-analysis``
   (1), ``document-processing`` (2); timeout 300 s, max time 3600 s, tries 3, sleep 3 s.
2. **file** - ``docmill.toml`` (``--config``, else ``$DOCMILL_CONFIG``, else
   ``./docmill.toml`` when it exists). A ``[pools.*]`` table replaces the seed's pools::

       [supervisor]
       connection = "redis://127.0.0.1:6379/0"
       app = ["myapp.jobs:registry"]

       [defaults]                  # every pool's keys, applied to each pool
       tries = 3

       [pools.document-processing]
       queues = ["document-processing"]
       processes = 2
       balance = "auto"
       max_processes = 6

3. **environment** - the seed's variables keep their meaning: ``QUEUE_CONNECTION``,
   ``REDIS_HOST``, ``REDIS_PORT`` (and ``DOCMILL_QUEUE_URL``) choose the backend;
   ``DOCUMENT_ANALYSIS_QUEUE`` / ``DOCUMENT_PROCESSING_QUEUE`` rename the queue the
   ``document-analysis`` / ``document-processing`` pool serves; ``ANALYSIS_JOB_MAX_TRIES``,
   ``ANALYSIS_JOB_TIMEOUT``, ``ANALYSIS_JOB_RETRY_DELAY`` set tries, timeout and retry
   backoff of the ``document-analysis`` pool. Any pool key can be set as
   ``DOCMILL_POOL_<POOL>_<KEY>`` (``DOCMILL_POOL_DOCUMENT_PROCESSING_PROCESSES=4``), and
   ``DOCMILL_APP`` (comma list) names the handler registries.
4. **flags** - ``docmill supervise --connection URL --app APP``.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from docmill.queue import ConfigurationError, mask_url
from docmill.queue.connection import queue_url_from_env
from docmill.supervisor.errors import SupervisorConfigError

DEFAULT_CONFIG_FILE = Path("docmill.toml")
DEFAULT = "default"
BALANCES = ("off", "auto")
# The seed's pools: name -> worker processes. Each serves the queue of the same name.
SEED_POOLS = {"default": 2, "document-analysis": 1, "document-processing": 2}
ANALYSIS_POOL = "document-analysis"
PROCESSING_POOL = "document-processing"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """One pool: identical worker processes serving ``queues`` (in priority order)."""

    name: str
    queues: tuple[str, ...]
    processes: int = 1  # fixed count with balance="off"; the starting point is min_processes with "auto"
    concurrency: int = 1  # jobs at once per process (the seed ran one job per process)
    timeout_s: float = 300.0
    max_time_s: float = 3600.0  # recycle a process after this long (0 = never)
    max_jobs: int = 0  # recycle after this many jobs (0 = never)
    memory_mb: int = 128  # recycle when resident memory exceeds this (0 = never)
    tries: int = 3
    sleep_s: float = 3.0
    backoff_s: str | None = None  # a job's retry delay ("60" or "1,5,30"); None = the worker's default
    stop_wait_s: float = 3600.0  # after SIGTERM, how long running jobs may finish before SIGKILL
    lease_s: float | None = None  # a reserved job's lease; None = the worker's default
    balance: str = "off"  # "auto": scale between min_processes and max_processes by wait time
    min_processes: int = 1
    max_processes: int = 0  # 0 = the same as ``processes``
    max_shift: int = 1  # processes added or removed per scaling step
    cooldown_s: float = 3.0  # at least this long between two scaling steps
    target_wait_s: float = 60.0  # "auto" adds processes while the estimated wait is above this
    startsecs: float = 1.0  # a process that dies sooner failed to boot
    startretries: int = 3  # consecutive boot failures before the pool goes FATAL
    restart_backoff_s: float = 1.0  # first delay before restarting a crashed process; doubles
    restart_backoff_max_s: float = 60.0

    @property
    def ceiling(self) -> int:
        """The most processes this pool may run."""
        return max(self.max_processes or self.processes, self.min_processes)

    @property
    def floor(self) -> int:
        return min(self.min_processes, self.ceiling)

    def validate(self, source: Callable[[str], str]) -> None:
        """Raise ``SupervisorConfigError`` naming the first bad key and where it was set."""

        def bad(key: str, why: str) -> SupervisorConfigError:
            return SupervisorConfigError(
                f"pool {self.name}: {key}={getattr(self, key)!r} ({source(key)}) {why}"
            )

        if not self.queues or any(not q for q in self.queues):
            raise bad("queues", "must name at least one queue")
        for key in ("processes", "max_jobs", "memory_mb", "min_processes", "max_processes", "startretries"):
            if getattr(self, key) < 0:
                raise bad(key, "must not be negative")
        for key in ("concurrency", "tries", "max_shift"):
            if getattr(self, key) < 1:
                raise bad(key, "must be at least 1")
        for key in ("timeout_s", "sleep_s", "target_wait_s", "restart_backoff_s", "lease_s"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise bad(key, "must be positive")
        for key in ("max_time_s", "stop_wait_s", "cooldown_s", "startsecs", "restart_backoff_max_s"):
            if getattr(self, key) < 0:
                raise bad(key, "must not be negative")
        if self.balance not in BALANCES:
            raise bad("balance", f"must be one of: {', '.join(BALANCES)}")
        if self.max_processes and self.max_processes < self.min_processes:
            raise bad("max_processes", f"is below min_processes={self.min_processes}")


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Everything ``docmill supervise`` runs with. ``sources`` maps each key to its layer."""

    connection: str
    apps: tuple[str, ...] = ()
    pools: Mapping[str, PoolConfig] = field(default_factory=dict)
    log_dir: Path = Path("storage/logs")
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    heartbeat_s: float = 5.0
    tick_s: float = 0.25  # the main loop's period: reaping, restarts, deadlines
    control_poll_s: float = 2.0  # how often the cluster-wide stop flag and queue stats are read
    worker_command: tuple[str, ...] = ()  # how to run `docmill`; empty = the script beside Python
    config_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def heartbeat_ttl_s(self) -> float:
        """A heartbeat outlives three missed beats, then its member counts as gone."""
        return self.heartbeat_s * 3

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    def describe(self) -> list[tuple[str, str, str]]:
        """Every effective value as ``(key, value, source)``, secrets masked, for ``queue config``."""
        rows: list[tuple[str, str, str]] = [
            ("connection", mask_url(self.connection), self.source("connection")),
            ("app", ",".join(self.apps) or "-", self.source("app")),
        ]
        for key in _SUPERVISOR_KEYS:
            if key in ("connection", "app"):
                continue
            rows.append((key, _show(getattr(self, key)), self.source(key)))
        for pool in self.pools.values():
            for f in fields(pool):
                if f.name == "name":
                    continue
                key = f"pools.{pool.name}.{f.name}"
                rows.append((key, _show(getattr(pool, f.name)), self.source(key)))
        return rows


# ---------------------------------------------------------------------------- parsing


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError("expected a whole number")


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError("expected a number")


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ValueError("expected a string")


def _as_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError("expected a list of strings or a comma-separated string")


def _as_backoff(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(_as_int(v)) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(_as_int(value))
    return _as_str(value)


def _as_balance(value: object) -> str:
    if value is False:
        return "off"
    if value is True:
        return "auto"
    return _as_str(value).lower()


_POOL_KEYS: dict[str, Callable[[object], Any]] = {
    "queues": _as_list,
    "processes": _as_int,
    "concurrency": _as_int,
    "timeout_s": _as_float,
    "max_time_s": _as_float,
    "max_jobs": _as_int,
    "memory_mb": _as_int,
    "tries": _as_int,
    "sleep_s": _as_float,
    "backoff_s": _as_backoff,
    "stop_wait_s": _as_float,
    "lease_s": _as_float,
    "balance": _as_balance,
    "min_processes": _as_int,
    "max_processes": _as_int,
    "max_shift": _as_int,
    "cooldown_s": _as_float,
    "target_wait_s": _as_float,
    "startsecs": _as_float,
    "startretries": _as_int,
    "restart_backoff_s": _as_float,
    "restart_backoff_max_s": _as_float,
}
_SUPERVISOR_KEYS: dict[str, Callable[[object], Any]] = {
    "connection": _as_str,
    "app": _as_list,
    "log_dir": lambda v: Path(_as_str(v)),
    "log_max_bytes": _as_int,
    "log_backups": _as_int,
    "heartbeat_s": _as_float,
    "tick_s": _as_float,
    "control_poll_s": _as_float,
    "worker_command": _as_list,
}
# The seed's variables that tune the analysis pool: env name -> pool key.
_ANALYSIS_ENV = {
    "ANALYSIS_JOB_MAX_TRIES": "tries",
    "ANALYSIS_JOB_TIMEOUT": "timeout_s",
    "ANALYSIS_JOB_RETRY_DELAY": "backoff_s",
}
_QUEUE_ENV = {"DOCUMENT_ANALYSIS_QUEUE": ANALYSIS_POOL, "DOCUMENT_PROCESSING_QUEUE": PROCESSING_POOL}


def _convert(parsers: Mapping[str, Callable[[object], Any]], key: str, value: object, where: str) -> Any:
    parser = parsers.get(key)
    if parser is None:
        known = ", ".join(sorted(parsers))
        raise SupervisorConfigError(f"unknown key {key!r} in {where}; known keys: {known}")
    try:
        return parser(value)
    except ValueError as exc:
        raise SupervisorConfigError(f"{key}={value!r} in {where} is invalid: {exc}") from exc


def _env_name(pool: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in pool).upper()


def config_path(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The file to read: ``--config``, else ``$DOCMILL_CONFIG``, else ``./docmill.toml`` if present."""
    if explicit:
        return Path(explicit)
    if env.get("DOCMILL_CONFIG", "").strip():
        return Path(env["DOCMILL_CONFIG"].strip())
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    connection: str | None = None,
    apps: tuple[str, ...] | list[str] = (),
) -> SupervisorConfig:
    """Build the effective configuration (see the module docstring for the layers)."""
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    top: dict[str, Any] = {"connection": queue_url_from_env({})}
    defaults: dict[str, Any] = {}
    pool_values: dict[str, dict[str, Any]] = {
        name: {"queues": (name,), "processes": n} for name, n in SEED_POOLS.items()
    }

    # 2. the file
    file = config_path(path, env)
    if file is not None:
        where = f"file {file}"
        data = _read_toml(file)
        for key, value in data.get("supervisor", {}).items():
            top[key] = _convert(_SUPERVISOR_KEYS, key, value, f"[supervisor] of {file}")
            sources[key] = where
        for key, value in data.get("defaults", {}).items():
            defaults[key] = _convert(_POOL_KEYS, key, value, f"[defaults] of {file}")
        if "pools" in data:
            pool_values = {}
            for name, table in data["pools"].items():
                if not isinstance(table, dict):
                    raise SupervisorConfigError(f"[pools.{name}] in {file} must be a table")
                values: dict[str, Any] = {"queues": (name,)}
                for key, value in table.items():
                    values[key] = _convert(_POOL_KEYS, key, value, f"[pools.{name}] of {file}")
                    sources[f"pools.{name}.{key}"] = where
                pool_values[name] = values
        for name in pool_values:
            for key, value in defaults.items():
                if f"pools.{name}.{key}" not in sources:
                    pool_values[name][key] = value
                    sources[f"pools.{name}.{key}"] = f"{where} [defaults]"
        unknown = set(data) - {"supervisor", "defaults", "pools"}
        if unknown:
            raise SupervisorConfigError(
                f"unknown table(s) {', '.join(sorted(unknown))} in {file}; "
                "use [supervisor], [defaults], [pools.NAME]"
            )

    # 3. the environment
    _apply_env(env, top, pool_values, sources)

    # 4. flags
    if connection:
        top["connection"] = connection
        sources["connection"] = "--connection"
    if apps:
        top["app"] = tuple(apps)
        sources["app"] = "--app"

    pools = {name: PoolConfig(name=name, **values) for name, values in pool_values.items()}
    config = SupervisorConfig(
        connection=top.pop("connection"),
        apps=tuple(top.pop("app", ())),
        pools=pools,
        config_file=file,
        sources=sources,
        **top,
    )
    for pool in pools.values():
        pool.validate(functools.partial(_pool_source, config, pool.name))
    if config.heartbeat_s <= 0 or config.tick_s <= 0 or config.control_poll_s <= 0:
        raise SupervisorConfigError("heartbeat_s, tick_s and control_poll_s must be positive")
    return config


def _pool_source(config: SupervisorConfig, pool: str, key: str) -> str:
    return config.source(f"pools.{pool}.{key}")


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SupervisorConfigError(
            f"configuration file {file} does not exist; check --config or DOCMILL_CONFIG"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SupervisorConfigError(f"configuration file {file} is not valid TOML: {exc}") from exc


def _apply_env(
    env: Mapping[str, str],
    top: dict[str, Any],
    pool_values: dict[str, dict[str, Any]],
    sources: dict[str, str],
) -> None:
    if env.get("DOCMILL_QUEUE_URL", "").strip():
        top["connection"] = queue_url_from_env(env)
        sources["connection"] = "env DOCMILL_QUEUE_URL"
    elif env.get("QUEUE_CONNECTION", "").strip():
        try:
            top["connection"] = queue_url_from_env(env)
        except ConfigurationError as exc:
            raise SupervisorConfigError(str(exc)) from exc
        used = [
            n
            for n in ("QUEUE_CONNECTION", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD")
            if env.get(n)
        ]
        sources["connection"] = "env " + "+".join(used)
    if env.get("DOCMILL_APP", "").strip():
        top["app"] = _as_list(env["DOCMILL_APP"])
        sources["app"] = "env DOCMILL_APP"

    def put(pool: str, key: str, raw: str, var: str) -> None:
        if pool not in pool_values:
            return
        pool_values[pool][key] = _convert(_POOL_KEYS, key, raw, f"env {var}")
        sources[f"pools.{pool}.{key}"] = f"env {var}"

    for var, pool in _QUEUE_ENV.items():
        if env.get(var, "").strip():
            put(pool, "queues", env[var], var)
    for var, key in _ANALYSIS_ENV.items():
        if env.get(var, "").strip():
            put(ANALYSIS_POOL, key, env[var], var)
    # The generic form wins over the seed's names: it is the more specific request.
    for pool in pool_values:
        prefix = f"DOCMILL_POOL_{_env_name(pool)}_"
        for key in _POOL_KEYS:
            var = prefix + key.upper()
            if env.get(var, "").strip():
                put(pool, key, env[var], var)


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
