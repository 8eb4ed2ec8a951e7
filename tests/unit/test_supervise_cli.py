"""Which handlers `docmill supervise` gives its workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.cli.supervise import effective_config
from docmill.documents.pools import PIPELINE_APP as DOCUMENT_PIPELINE_APP


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DOCMILL_APP", "DOCMILL_CONFIG", "DOCMILL_QUEUE_URL", "QUEUE_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no docmill.toml around


def test_with_no_handlers_named_the_workers_run_the_document_pipeline() -> None:
    config = effective_config(None, "sqlite:///q.db", ())
    assert config.apps == (DOCUMENT_PIPELINE_APP,)
    assert config.sources["app"] == "default (docmill's document pipeline)"


def test_handlers_named_anywhere_replace_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert effective_config(None, "sqlite:///q.db", ("mine:registry",)).apps == ("mine:registry",)
    monkeypatch.setenv("DOCMILL_APP", "env_app:registry")
    config = effective_config(None, "sqlite:///q.db", ())
    assert config.apps == ("env_app:registry",)
    assert config.sources["app"] == "env DOCMILL_APP"
