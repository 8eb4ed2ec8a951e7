"""Document settings from the environment, secrets masked; upload options validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docmill.documents.errors import InvalidOptions, InvalidSetting
from docmill.documents.options import DocumentOptions
from docmill.documents.settings import DocumentSettings, normalize_database_url

SECRET_ENV = {
    "DOCMILL_API_TOKENS": "tok-alpha-123456, tok-beta-654321",
    "DOCMILL_WEBHOOK_SECRET": "whsec-very-secret-value",
    "CLAUDE_API_KEY": "sk-ant-secret-key-000000",
    "DATABASE_URL": "postgresql://app:db-password-42@db.internal:5432/docmill",
    "QUEUE_CONNECTION": "redis",
    "REDIS_PASSWORD": "redis-password-77",
}


def test_defaults_follow_the_seed() -> None:
    settings = DocumentSettings.from_env({})
    assert settings.storage_dir == Path("storage")
    assert settings.database_url == "sqlite:///storage/docmill.db"
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.auto_approve_max_usd == 0.50
    assert (settings.analysis_queue, settings.processing_queue, settings.webhook_queue) == (
        "document-analysis",
        "document-processing",
        "default",
    )
    assert (settings.analysis_tries, settings.analysis_timeout_s, settings.analysis_retry_delay_s) == (
        3,
        300,
        60,
    )
    assert settings.api_tokens == () and settings.webhook_secret is None
    assert settings.llm is not None


def test_the_seed_variables_are_read() -> None:
    settings = DocumentSettings.from_env(
        {
            "DOCMILL_STORAGE": "/srv/docmill",
            "DOCUMENT_ANALYSIS_QUEUE": "analysis",
            "DOCUMENT_PROCESSING_QUEUE": "llm",
            "ANALYSIS_JOB_MAX_TRIES": "5",
            "ANALYSIS_JOB_TIMEOUT": "100",
            "ANALYSIS_JOB_RETRY_DELAY": "30",
            "DOCUMENT_MAX_UPLOAD_MB": "2",
            "DOCUMENT_AUTO_APPROVE_MAX_USD": "1.25",
        }
    )
    assert settings.database_url == "sqlite:////srv/docmill/docmill.db"
    assert (settings.analysis_queue, settings.processing_queue) == ("analysis", "llm")
    assert (settings.analysis_tries, settings.analysis_timeout_s, settings.analysis_retry_delay_s) == (
        5,
        100,
        30,
    )
    assert settings.analysis_time_limit_s == 80  # a parse ends before its job's timeout
    assert settings.max_upload_bytes == 2 * 1024 * 1024
    assert settings.auto_approve_max_usd == 1.25


def test_secrets_never_show_in_repr_or_masked_output() -> None:
    settings = DocumentSettings.from_env(SECRET_ENV)
    assert settings.api_tokens == ("tok-alpha-123456", "tok-beta-654321")
    assert settings.database_url.startswith("postgresql+psycopg://app:")
    shown = repr(settings) + json.dumps(settings.masked())
    for secret in (
        "tok-alpha-123456",
        "tok-beta-654321",
        "whsec-very-secret-value",
        "sk-ant-secret-key-000000",
    ):
        assert secret not in shown
    assert "db-password-42" not in shown and "redis-password-77" not in shown
    assert settings.masked()["api_tokens"] == "2 set"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DOCUMENT_MAX_UPLOAD_MB", "lots", "DOCUMENT_MAX_UPLOAD_MB='lots' \\(env\\) is not a number"),
        (
            "ANALYSIS_JOB_MAX_TRIES",
            "0",
            "ANALYSIS_JOB_MAX_TRIES='0' \\(env\\) is too small; set it to at least 1",
        ),
        ("DOCUMENT_AUTO_APPROVE_MAX_USD", "-1", "at least 0"),
    ],
)
def test_a_bad_number_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidSetting, match=message):
        DocumentSettings.from_env({name: value})


@pytest.mark.parametrize(
    ("value", "allowed"), [("", False), ("false", False), ("0", False), ("TRUE", True), ("yes", True)]
)
def test_private_webhook_destinations_are_refused_unless_allowed(value: str, allowed: bool) -> None:
    settings = DocumentSettings.from_env({"DOCMILL_WEBHOOK_ALLOW_PRIVATE": value})
    assert settings.webhook_allow_private is allowed


def test_a_yes_no_setting_that_is_neither_names_the_variable() -> None:
    expected = "DOCMILL_WEBHOOK_ALLOW_PRIVATE='maybe' \\(env\\) is not a yes/no value"
    with pytest.raises(InvalidSetting, match=expected):
        DocumentSettings.from_env({"DOCMILL_WEBHOOK_ALLOW_PRIVATE": "maybe"})


def test_plain_postgres_urls_use_psycopg_3() -> None:
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


# ---------------------------------------------------------------------- options
def test_options_default_to_a_summary() -> None:
    assert DocumentOptions.parse(None) == DocumentOptions(profile="summary")


def test_extract_needs_a_schema_with_properties() -> None:
    with pytest.raises(InvalidOptions, match="needs a schema"):
        DocumentOptions.parse({"profile": "extract"})
    with pytest.raises(InvalidOptions, match="properties"):
        DocumentOptions.parse({"profile": "extract", "schema": {"type": "object"}})
    schema = {"type": "object", "properties": {"total": {"type": "number"}}}
    assert DocumentOptions.parse({"profile": "extract", "schema": json.dumps(schema)}).schema == schema


def test_custom_needs_a_prompt() -> None:
    with pytest.raises(InvalidOptions, match="needs a prompt"):
        DocumentOptions.parse({"profile": "custom", "prompt": "  "})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "poem"}, "Profile 'poem' does not exist"),
        ({"colour": "red"}, "Unknown option 'colour'"),
        ({"callback_url": "ftp://host/x"}, "not an http"),
        ({"callback_url": "https://"}, "not an http"),
        ({"callback_url": "https://host:port/x"}, "not an http"),
        ({"callback_url": "https://host:99999/x"}, "not an http"),
        ({"callback_url": "https://host:0/x"}, "not an http"),
        ({"auto_approve": "maybe"}, "auto_approve must be true or false"),
        ({"model": 3}, "model must be text"),
    ],
)
def test_options_that_cannot_work_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptions, match=message):
        DocumentOptions.parse(options)


def key_of(options: dict[str, object], default_model: str = "claude-sonnet-4-6") -> str:
    return DocumentOptions.parse(options).key(default_model=default_model)


def test_the_key_ignores_where_a_result_is_announced_but_not_what_shapes_it() -> None:
    base = key_of({"profile": "summary"})
    assert base == key_of({"callback_url": "https://h/x", "auto_approve": "yes"})
    assert base != key_of({"model": "claude-haiku-4-5"})
    assert base != key_of({"profile": "custom", "prompt": "List the dates."})


def test_the_key_names_the_model_by_one_id() -> None:
    # No model is the configured default
    assert key_of({}) == key_of({"model": "claude-sonnet-4-6"})
    assert key_of({}, default_model="claude-sonnet-4-5") == key_of({"model": "claude-sonnet-4-5-20250929"})
    # An alias is its dated id, however it is written
    assert key_of({"model": "claude-sonnet-4-5"}) == key_of({"model": " claude-sonnet-4-5-20250929 "})
    # A new default is a new model; another model is other options
    assert key_of({}) != key_of({}, default_model="claude-opus-4-6")
    assert key_of({"model": "claude-sonnet-4-5"}) != key_of({"model": "claude-sonnet-4-6"})


def test_options_are_stored_as_given() -> None:
    assert DocumentOptions.parse({"model": " claude-sonnet-4-5 "}).to_dict()["model"] == "claude-sonnet-4-5"
    assert DocumentOptions.parse({}).to_dict()["model"] is None
