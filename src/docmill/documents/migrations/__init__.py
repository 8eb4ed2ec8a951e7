"""Alembic migrations of the documents database; ``docmill.documents.db.upgrade`` applies them."""
