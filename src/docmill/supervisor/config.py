"""The supervisor's configuration: pools of worker processes, and where each value came from.

The supervisor knows no application: the pools to run when the file names none, and
any application variables that tune them, are data its caller hands over
(``default_pools``, ``pool_env``; docmill's document pipeline supplies the seed's
three pools and the seed's variables through ``docmill.config``).

Precedence, lowest first (each value remembers the layer that set it, so
``docmill queue config`` can show it):

1. **default** - ``default_pools`` (a single ``default`` pool when none is given).
2. **file** - ``docmill.toml``. A ``[pools.*]`` table replaces the default pools::

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

3. **environment** - ``pool_env`` (variable -> pool and key), then any pool key as
   ``DOCMILL_POOL_<POOL>_<KEY>`` (``DOCMILL_POOL_DOCUMENT_PROCESSING_PROCESSES=4``), and
   ``DOCMILL_APP`` (comma list) naming the handler registries.
4. **flags** - ``docmill supervise --connection URL --app APP``.

The queue URL is resolved once by the caller (flag, environment, file, default) and
handed over with its source.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from docmill.queue import mask_url
from docmill.queue.connection import DEFAULT_QUEUE_URL
from docmill.queue.names import RULE as QUEUE_NAME_RULE
from docmill.queue.names import queue_name_problem
from docmill.queue.values import as_float, as_int, as_list, as_str
from docmill.supervisor.errors import SupervisorConfigError

DEFAULT_CONFIG_FILE = Path("docmill.toml")
DEFAULT = "default"
BALANCES = ("off", "auto")
# Without a [pools] table and without pools from the caller: one process on ``default``.
GENERIC_POOLS: Mapping[str, Mapping[str, Any]] = {"default": {"queues": ("default",), "processes": 1}}


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
    memory_mb: int = 256  # recycle when resident memory exceeds this (0 = never); see WorkerOptions
    tries: int = 3
    sleep_s: float = 3.0
    backoff_s: str | None = None  # a job's retry delay ("60" or "1,5,30"); None = the worker's default
    stop_wait_s: float = 3600.0  # after SIGTERM, how long running jobs may finish before SIGKILL
    lease_s: float | None = None  # a reserved job's lease; None = the worker's default
    # How long a job of a handler the pool's workers lack waits for one that has it; None = the
    # worker's default (WorkerOptions.unknown_handler_wait_s)
    unknown_handler_wait_s: float | None = None
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
        for queue in self.queues:
            if (problem := queue_name_problem(queue)) is not None:
                raise bad("queues", f"holds the invalid queue name {queue!r}: {problem}; {QUEUE_NAME_RULE}")
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
        if self.unknown_handler_wait_s is not None and self.unknown_handler_wait_s < 0:
            raise bad("unknown_handler_wait_s", "must not be negative")
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
    log_dir: Path = Path("storage") / "logs"
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


def _as_backoff(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(as_int(v)) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(as_int(value))
    return as_str(value)


def _as_balance(value: object) -> str:
    if value is False:
        return "off"
    if value is True:
        return "auto"
    return as_str(value).lower()


_POOL_KEYS: dict[str, Callable[[object], Any]] = {
    "queues": as_list,
    "processes": as_int,
    "concurrency": as_int,
    "timeout_s": as_float,
    "max_time_s": as_float,
    "max_jobs": as_int,
    "memory_mb": as_int,
    "tries": as_int,
    "sleep_s": as_float,
    "backoff_s": _as_backoff,
    "stop_wait_s": as_float,
    "lease_s": as_float,
    "unknown_handler_wait_s": as_float,
    "balance": _as_balance,
    "min_processes": as_int,
    "max_processes": as_int,
    "max_shift": as_int,
    "cooldown_s": as_float,
    "target_wait_s": as_float,
    "startsecs": as_float,
    "startretries": as_int,
    "restart_backoff_s": as_float,
    "restart_backoff_max_s": as_float,
}
_SUPERVISOR_KEYS: dict[str, Callable[[object], Any]] = {
    "connection": as_str,
    "app": as_list,
    "log_dir": lambda v: Path(as_str(v)),
    "log_max_bytes": as_int,
    "log_backups": as_int,
    "heartbeat_s": as_float,
    "tick_s": as_float,
    "control_poll_s": as_float,
    "worker_command": as_list,
}


def _convert(parsers: Mapping[str, Callable[[object], Any]], key: str, value: object, where: str) -> Any:
    parser = parsers.get(key)
    if parser is None:
        known = ", ".join(sorted(parsers))
        raise SupervisorConfigError(f"unknown key {key!r} in {where}; known keys: {known}")
    try:
        return parser(value)
    except ValueError as exc:
        raise SupervisorConfigError(f"{key}={value!r} in {where} is invalid: {exc}") from None


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
    connection_source: str = "--connection",
    apps: tuple[str, ...] | list[str] = (),
    default_pools: Mapping[str, Mapping[str, Any]] | None = None,
    pool_env: Mapping[str, tuple[str, str]] | None = None,
    log_dir: Path | None = None,
    data: Mapping[str, Any] | None = None,
) -> SupervisorConfig:
    """Build the effective configuration (see the module docstring for the layers).

    ``data`` is the file's content when the caller has read it already (``path`` then
    only names it); ``connection`` the queue URL the caller resolved, with its source.
    """
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    top: dict[str, Any] = {"connection": DEFAULT_QUEUE_URL}
    if log_dir is not None:
        top["log_dir"] = log_dir
    defaults: dict[str, Any] = {}
    pool_values: dict[str, dict[str, Any]] = {
        name: dict(values) for name, values in (default_pools or GENERIC_POOLS).items()
    }

    # 2. the file
    file = Path(path) if path is not None and data is not None else config_path(path, env)
    if file is not None:
        where = f"file {file}"
        if data is None:
            data = read_toml(file)
        for key, value in _table(data, "supervisor", file).items():
            top[key] = _convert(_SUPERVISOR_KEYS, key, value, f"[supervisor] of {file}")
            sources[key] = where
        for key, value in _table(data, "defaults", file).items():
            defaults[key] = _convert(_POOL_KEYS, key, value, f"[defaults] of {file}")
        if "pools" in data:
            pool_values = {}
            for name, table in _table(data, "pools", file).items():
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

    # 3. the environment
    _apply_env(env, top, pool_values, sources, pool_env or {})

    # 4. flags (and the queue URL the caller resolved)
    if connection:
        top["connection"] = connection
        sources["connection"] = connection_source
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
    for key in ("heartbeat_s", "tick_s", "control_poll_s"):
        if getattr(config, key) <= 0:
            raise SupervisorConfigError(
                f"{key}={getattr(config, key)!r} ({config.source(key)}) must be positive"
            )
    return config


def _table(data: Mapping[str, Any], name: str, file: Path) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise SupervisorConfigError(f"[{name}] in {file} must be a table")
    return table


def _pool_source(config: SupervisorConfig, pool: str, key: str) -> str:
    return config.source(f"pools.{pool}.{key}")


def read_toml(file: Path) -> dict[str, Any]:
    """The file's tables; ``SupervisorConfigError`` naming the file when it cannot be read."""
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SupervisorConfigError(
            f"configuration file {file} does not exist; check --config or DOCMILL_CONFIG"
        ) from None
    except IsADirectoryError:
        raise SupervisorConfigError(f"configuration file {file} is a directory; name a TOML file") from None
    except PermissionError:
        raise SupervisorConfigError(f"configuration file {file} cannot be read (permission denied)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SupervisorConfigError(f"configuration file {file} is not valid TOML: {exc}") from None


def _apply_env(
    env: Mapping[str, str],
    top: dict[str, Any],
    pool_values: dict[str, dict[str, Any]],
    sources: dict[str, str],
    pool_env: Mapping[str, tuple[str, str]],
) -> None:
    if env.get("DOCMILL_APP", "").strip():
        top["app"] = as_list(env["DOCMILL_APP"])
        sources["app"] = "env DOCMILL_APP"

    def put(pool: str, key: str, raw: str, var: str) -> None:
        if pool not in pool_values:
            return
        pool_values[pool][key] = _convert(_POOL_KEYS, key, raw, f"env {var}")
        sources[f"pools.{pool}.{key}"] = f"env {var}"

    for var, (pool, key) in pool_env.items():
        if env.get(var, "").strip():
            put(pool, key, env[var], var)
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
