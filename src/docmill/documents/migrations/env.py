"""Alembic environment of the documents database.

``docmill.documents.db.upgrade`` runs it with an open connection in
``config.attributes["connection"]``; the ``alembic`` command line may instead give a URL
as ``sqlalchemy.url``. SQLite gets batch mode, so later migrations can alter tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from docmill.documents.models import Base

VERSION_TABLE = "docmill_documents_version"

config = context.config
version_table = config.attributes.get("version_table", VERSION_TABLE)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        version_table=version_table,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
        engine.dispose()
