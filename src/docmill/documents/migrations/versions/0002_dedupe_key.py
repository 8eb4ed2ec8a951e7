"""Documents: a unique key per file and options for uploads that were not forced.

Two identical uploads at the same moment both found no document and both created one; with
this key the second insert fails and the upload returns the first document instead. Rows
from before keep no key (NULL is never a duplicate), and the lookup by file and options
still finds them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("dedupe_key", sa.String(129), nullable=True))
    op.create_index("uq_documents_dedupe_key", "documents", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_documents_dedupe_key", table_name="documents")
    op.drop_column("documents", "dedupe_key")
