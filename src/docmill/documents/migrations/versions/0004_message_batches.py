"""Documents: the Message Batch a document's calls are in, so any worker resumes polling it.

A document sent by Message Batches keeps the id of the batch in flight and when it was sent
(a worker that dies while the batch runs leaves them, and the next one polls the same
batch instead of paying again), when its first batch was sent (the deadline past which
the calls go direct counts from there), and why the rest went direct once it did. Rows
from before have none of them (NULL): they were never batched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("batch_id", sa.String(128), nullable=True))
    op.add_column("documents", sa.Column("batch_submitted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("documents", sa.Column("batch_started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("documents", sa.Column("batch_fallback", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch_op:
        for name in ("batch_fallback", "batch_started_at", "batch_submitted_at", "batch_id"):
            batch_op.drop_column(name)
