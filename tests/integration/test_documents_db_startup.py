"""Opening the documents database: migrating with alembic only when the scripts are ahead.

Every process that builds a ``DocumentContext`` opens the database with ``migrate=True``;
only the first one (or one after an upgrade of the code) has anything to apply. The others
read the version table and never import alembic. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import create_engine, text

from docmill.documents.db import MIGRATIONS_DIR, VERSION_TABLE, Database, at_head, script_heads, upgrade


def alembic_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


def version(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            value = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    finally:
        engine.dispose()
    return None if value is None else str(value)


def test_the_heads_read_from_the_scripts_are_alembics() -> None:
    heads = script_heads()
    assert heads is not None
    assert set(heads) == alembic_heads()


def test_a_database_at_head_opens_without_alembic(database_url: str) -> None:
    upgrade(database_url)
    code = (
        "import sys\n"
        "from docmill.documents.db import Database\n"
        f"Database.open({database_url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_new_or_older_database_is_still_migrated(database_url: str) -> None:
    (head,) = script_heads() or ()
    engine = create_engine(database_url)
    try:
        assert not at_head(engine)  # no version table yet
        upgrade(database_url, "0001")
        assert version(database_url) == "0001"
        assert not at_head(engine)
        Database.open(database_url).close()
        assert version(database_url) == head
        assert at_head(engine)
    finally:
        engine.dispose()
