"""docmill's HTTP API (FastAPI): ``create_app`` builds it, ``docmill serve`` runs it."""

from docmill.web.app import create_app

__all__ = ["create_app"]
