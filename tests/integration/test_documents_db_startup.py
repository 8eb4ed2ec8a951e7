"""Opening the documents database: migrating with alembic only when the scripts are ahead.

Every process that builds a ``DocumentContext`` opens the database with ``migrate=True``;
only the first one (or one after an upgrade of the code) has anything to apply. The others
read the version table and never import alembic. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_heads_are_read_from_plain_and_annotated_assignments_and_merges(tmp_path: Path) -> None:
    scripts = {
        "a.py": 'revision = "a"\ndown_revision = None\n',
        "b.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n',
        "c.py": 'revision = "c"\ndown_revision = "a"\n',
        "m.py": 'revision = "m"\ndown_revision = ("b", "c")\n',
        "n.py": 'revision = "n"\ndown_revision = "b"\n',
    }
    for name, body in scripts.items():
        (tmp_path / name).write_text(body)
    assert script_heads(tmp_path) == frozenset({"m", "n"})
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "a.py").write_text(scripts["a.py"])
    (odd / "o.py").write_text('revision = make_id()\ndown_revision = "a"\n')
    assert script_heads(odd) is None  # not readable without running it: alembic decides


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
