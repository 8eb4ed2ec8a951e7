"""The documents database: engine, sessions, and migrations applied at startup.

One synchronous SQLAlchemy engine per process. Async code runs its database work in a
thread with ``Database.run(fn)``: ``fn`` gets a session inside a transaction that
commits when ``fn`` returns and rolls back when it raises. Objects come back detached
but loaded (``expire_on_commit=False``); the deferred columns (chunk texts, results)
must be loaded explicitly inside ``fn``.

SQLite (the embedded default) runs in WAL mode with a busy timeout, so the API and
several worker processes can share one file; PostgreSQL is used through psycopg 3.

Alembic is imported only to migrate: a process that opens a database already at the
newest revision of the scripts (every worker but the first) reads the version table with
SQLAlchemy and never loads alembic (about 10 MB of resident memory and 0.1-0.2 s).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from docmill.documents.settings import normalize_database_url

T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "docmill_documents_version"
SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_MIGRATION_LOCK = 0x646F636D696C6C  # "docmill": one advisory lock key for every process

log = logging.getLogger("docmill.documents.db")


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their directory, WAL and a busy timeout."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    return engine


def upgrade(database_url: str | Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``; safe when several processes start at once.

    Up to ``head`` on a database that is there already, nothing is imported or locked.
    """
    engine = database_url if isinstance(database_url, Engine) else create_db_engine(database_url)
    try:
        if revision == "head" and at_head(engine):
            return
        from alembic import command
        from alembic.config import Config

        with _migration_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            config.attributes["version_table"] = VERSION_TABLE
            command.upgrade(config, revision)
    finally:
        if not isinstance(database_url, Engine):
            engine.dispose()


@functools.cache
def script_heads(versions: Path = MIGRATIONS_DIR / "versions") -> frozenset[str] | None:
    """The revisions no migration script revises (alembic's heads), read from the scripts'
    ``revision`` and ``down_revision`` assignments without importing them or alembic.

    ``None`` when a script cannot be read that way: the caller then asks alembic.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        values: dict[str, Any] = {}
        try:
            tree = ast.parse(script.read_text(encoding="utf-8"), str(script))
            for node in tree.body:
                # ``revision = "0002"`` or, as alembic's own template writes it, ``revision: str = ...``
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    target, value = node.target, node.value
                else:
                    continue
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(value)
        except (OSError, SyntaxError, ValueError, TypeError):
            return None
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        downs = (down,) if isinstance(down, str) else (down or ())
        if not all(isinstance(d, str) for d in downs):
            return None
        revised.update(downs)
    heads = frozenset(revisions - revised)
    return heads or None


def at_head(engine: Engine) -> bool:
    """Whether the database's version table names exactly the scripts' heads (so ``upgrade``
    to ``head`` has nothing to do). False when the table is missing or cannot be read."""
    heads = script_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as connection:
            current = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except SQLAlchemyError:
        return False
    return set(current) == heads


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive file lock beside an SQLite database (PostgreSQL uses an advisory lock)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Database:
    """The documents database of one process; ``open`` migrates it first."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        engine = create_db_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def transaction(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction, here and now (blocking)."""
        with self.sessions.begin() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction, in a worker thread (see the module docstring)."""
        return await asyncio.to_thread(self.transaction, fn)

    def close(self) -> None:
        self.engine.dispose()
