"""Documents: since when the LLM provider could not be reached while processing the document.

A provider that cannot be reached (connection refused, unknown host, connect timeout) put
the processing job back every 10 s for ever. The time it first failed to answer is kept on
the document, so every worker on every host that picks the job up next sees the same clock,
and the document fails once the wait passes ``llm.unreachable_timeout_s``. Any answer
clears it; so does a retry. Rows from before start with no clock (NULL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("llm_unreachable_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "llm_unreachable_since")
