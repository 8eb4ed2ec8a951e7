"""Settings from the environment and ``[llm]``, masking of secrets, and which provider gets built."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

import docmill.llm
from docmill.llm import (
    DEFAULT_MODEL,
    AuthenticationFailed,
    LLMSettings,
    MemoryRateStore,
    RateLimits,
    build_provider,
)
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.providers.extractive import ExtractiveProvider
from docmill.llm.providers.openai_compat import OpenAICompatProvider
from docmill.llm.ratelimit import TIER_1_LIMITS

FAKE_KEY = "sk-ant-test-0000000000000000"


def test_environment_variables_of_the_seed_keep_their_meaning() -> None:
    settings = LLMSettings.from_env(
        {
            "CLAUDE_API_KEY": FAKE_KEY,
            "CLAUDE_DEFAULT_MODEL": "claude-haiku-4-5",
            "ANTHROPIC_BASE_URL": "http://x",
        }
    )

    assert settings.anthropic_api_key == FAKE_KEY
    assert settings.default_model == "claude-haiku-4-5"
    assert settings.anthropic_base_url == "http://x"
    assert settings.resolved_provider() == "anthropic"


def test_anthropic_api_key_is_accepted_too_and_defaults_apply() -> None:
    settings = LLMSettings.from_env({"ANTHROPIC_API_KEY": FAKE_KEY})

    assert settings.anthropic_api_key == FAKE_KEY
    assert settings.default_model == DEFAULT_MODEL
    assert settings.request_timeout_s == 600.0


@pytest.mark.parametrize(
    ("env", "provider"),
    [
        ({"CLAUDE_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": "http://gpu:8000/v1"}, "anthropic"),
        ({"OPENAI_BASE_URL": "http://gpu:8000/v1"}, "openai"),
        ({}, "extractive"),
        ({"CLAUDE_API_KEY": FAKE_KEY, "DOCMILL_LLM_PROVIDER": "Extractive"}, "extractive"),
    ],
)
def test_auto_picks_anthropic_then_openai_then_extractive(env: dict[str, str], provider: str) -> None:
    assert LLMSettings.from_env(env).resolved_provider() == provider


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown LLM provider 'gpt'"):
        LLMSettings.from_env({"DOCMILL_LLM_PROVIDER": "gpt"})


def test_secrets_never_show_in_repr_or_masked() -> None:
    settings = LLMSettings.from_env(
        {
            "CLAUDE_API_KEY": FAKE_KEY,
            "OPENAI_API_KEY": "short",
            "OPENAI_BASE_URL": "http://user:hunter2secret@gpu:8000/v1",
        }
    )

    shown = settings.masked()
    assert shown["anthropic_api_key"] == "sk-a…(masked)"
    assert shown["openai_api_key"] == "…(masked)"
    assert shown["openai_base_url"] == "http://user:***@gpu:8000/v1"
    for text in (repr(settings), json.dumps(shown)):
        assert FAKE_KEY[4:] not in text and "hunter2" not in text and "short" not in text


def test_the_unreachable_bound_is_half_an_hour_unless_set() -> None:
    settings = LLMSettings.from_config({}, {})

    assert settings.unreachable_timeout_s == 1800.0
    assert settings.masked()["unreachable_timeout_s"] == "1800.0"


def test_the_unreachable_bound_is_read_from_the_environment_alone() -> None:
    settings = LLMSettings.from_config({}, {"DOCMILL_LLM_UNREACHABLE_TIMEOUT_S": "90"})

    assert settings.unreachable_timeout_s == 90.0
    assert settings.masked()["unreachable_timeout_s"] == "90.0"


def test_the_unreachable_bound_is_read_from_the_llm_table_alone() -> None:
    settings = LLMSettings.from_config({"unreachable_timeout_s": 2.5}, {})

    assert settings.unreachable_timeout_s == 2.5


def test_the_environment_wins_over_the_llm_table_for_the_unreachable_bound() -> None:
    settings = LLMSettings.from_config(
        {"unreachable_timeout_s": 600}, {"DOCMILL_LLM_UNREACHABLE_TIMEOUT_S": "120"}
    )

    assert settings.unreachable_timeout_s == 120.0


@pytest.mark.parametrize(
    ("section", "env", "message"),
    [
        (
            {},
            {"DOCMILL_LLM_UNREACHABLE_TIMEOUT_S": "half an hour"},
            "DOCMILL_LLM_UNREACHABLE_TIMEOUT_S must be a number of seconds above 0, not 'half an hour'",
        ),
        (
            {},
            {"DOCMILL_LLM_UNREACHABLE_TIMEOUT_S": "0"},
            "DOCMILL_LLM_UNREACHABLE_TIMEOUT_S must be a number of seconds above 0, not '0'",
        ),
        (
            {},
            {"DOCMILL_LLM_UNREACHABLE_TIMEOUT_S": "nan"},
            "DOCMILL_LLM_UNREACHABLE_TIMEOUT_S must be a number of seconds above 0, not 'nan'",
        ),
        (
            {"unreachable_timeout_s": -5},
            {},
            "[llm] unreachable_timeout_s must be a number of seconds above 0, not '-5'",
        ),
        (
            {"unreachable_timeout_s": "soon"},
            {},
            "[llm] unreachable_timeout_s must be a number of seconds above 0, not 'soon'",
        ),
    ],
    ids=["env-text", "env-zero", "env-nan", "toml-negative", "toml-text"],
)
def test_a_bad_unreachable_bound_is_refused_naming_the_setting(
    section: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        LLMSettings.from_config(section, env)

    assert str(raised.value) == message


def test_prices_and_limits_come_from_toml_and_env_json_with_env_winning() -> None:
    section = {
        "default_model": "claude-haiku-4-5",
        "prices": {"claude-fable-5": {"input_per_mtok": 4, "output_per_mtok": 20}},
        "limits": {"default": {"requests_per_min": 1000}, "claude-haiku-4-5": {"requests_per_min": 200}},
    }
    env = {
        "DOCMILL_LLM_PRICES": json.dumps(
            {"claude-haiku-4-5": {"input_per_mtok": 0.9}, "batch_discount": 0.4}
        ),
        "DOCMILL_LLM_LIMITS": json.dumps({"claude-haiku-4-5": {"input_tokens_per_min": 50000}}),
        "CLAUDE_DEFAULT_MODEL": "claude-sonnet-4-6",
    }

    settings = LLMSettings.from_config(section, env)

    assert settings.default_model == "claude-sonnet-4-6"
    assert settings.prices.price_for("claude-fable-5").input_per_mtok == 4.0
    assert settings.prices.price_for("claude-haiku-4-5").input_per_mtok == 0.9
    assert settings.prices.batch_discount == 0.4
    assert settings.default_limits == RateLimits(1000, TIER_1_LIMITS.input_tokens_per_min, 8000)
    # Field by field: env's input tokens, TOML's requests, the default's output tokens.
    assert settings.limits["claude-haiku-4-5"] == RateLimits(200, 50000, 8000)


def test_bad_json_in_the_environment_names_the_variable() -> None:
    with pytest.raises(ValueError, match="DOCMILL_LLM_PRICES is not valid JSON"):
        LLMSettings.from_env({"DOCMILL_LLM_PRICES": "{nope"})


def test_a_retired_default_model_is_reported_as_a_problem_up_front() -> None:
    settings = LLMSettings.from_env(
        {"CLAUDE_API_KEY": FAKE_KEY, "CLAUDE_DEFAULT_MODEL": "claude-3-5-sonnet-20241022"}
    )

    assert len(settings.problems()) == 1
    assert "retired" in settings.problems()[0]


async def test_build_provider_builds_what_the_settings_ask_for() -> None:
    anthropic_provider = build_provider(
        LLMSettings.from_env({"CLAUDE_API_KEY": FAKE_KEY}), rate_store=MemoryRateStore()
    )
    openai_provider = build_provider(LLMSettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}))
    offline = build_provider(LLMSettings.from_env({}))
    try:
        assert isinstance(anthropic_provider, AnthropicProvider) and anthropic_provider.limiter is not None
        assert FAKE_KEY not in repr(anthropic_provider)
        assert isinstance(openai_provider, OpenAICompatProvider)
        assert isinstance(offline, ExtractiveProvider) and offline.is_offline
    finally:
        for provider in (anthropic_provider, openai_provider, offline):
            await provider.aclose()


def test_anthropic_without_a_key_fails_with_the_setting_to_set() -> None:
    with pytest.raises(AuthenticationFailed, match="CLAUDE_API_KEY"):
        build_provider(LLMSettings.from_env({"DOCMILL_LLM_PROVIDER": "anthropic"}))


def test_the_public_api_is_exactly_all() -> None:
    public = {
        name
        for name, value in vars(docmill.llm).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert sorted(public - set(docmill.llm.__all__)) == []
    assert all(hasattr(docmill.llm, name) for name in docmill.llm.__all__)
