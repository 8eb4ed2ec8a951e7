"""Model catalogue: aliases, context windows, caching minimums, retired and deprecated models."""

from __future__ import annotations

from docmill.llm import DEFAULT_MODEL, RETIRED_MODELS, context_window, resolve_model
from docmill.llm.models import (
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MIN_CACHEABLE_TOKENS,
    MODELS,
    deprecation_date,
    max_output_tokens,
    min_cacheable_tokens,
    model_line,
    retirement_message,
)


def test_aliases_resolve_to_dated_ids_and_other_names_pass_through() -> None:
    assert resolve_model("claude-haiku-4-5") == "claude-haiku-4-5-20251001"
    assert resolve_model(" claude-sonnet-4-5 ") == "claude-sonnet-4-5-20250929"
    assert resolve_model("claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert resolve_model("my-local-model") == "my-local-model"


def test_the_seeds_default_model_is_retired_and_the_message_says_so_and_what_to_use() -> None:
    message = RETIRED_MODELS["claude-3-5-sonnet-20241022"]

    assert "claude-3-5-sonnet-20241022" in message
    assert "retired" in message
    assert DEFAULT_MODEL in message
    assert retirement_message("claude-3-5-sonnet-latest") == message


def test_the_default_model_is_current() -> None:
    assert retirement_message(DEFAULT_MODEL) is None
    assert deprecation_date(DEFAULT_MODEL) is None


def test_every_retired_message_names_a_model_that_is_not_retired() -> None:
    for model, message in RETIRED_MODELS.items():
        suggestion = message.split("use ")[-1].split(" ")[0]
        assert suggestion not in RETIRED_MODELS, model


def test_deprecated_models_carry_their_retirement_day() -> None:
    assert deprecation_date("claude-sonnet-4-5") == "30 November 2026"


def test_context_window_and_output_limit_with_defaults_for_unknown_models() -> None:
    assert context_window("claude-haiku-4-5") == 200_000
    assert context_window("claude-sonnet-4-5-20250929") == 200_000
    assert context_window("something-new") == DEFAULT_CONTEXT_WINDOW
    assert max_output_tokens("claude-opus-4-6") == 128_000
    assert max_output_tokens("claude-opus-4-1") == 32_000


def test_model_line_from_the_table_or_the_name() -> None:
    assert model_line("claude-haiku-4-5") == "haiku"
    assert model_line("claude-opus-9") == "opus"
    assert model_line("claude-3-5-sonnet-20241022") == "sonnet"
    assert model_line("gpt-4o") is None


def test_caching_minimums_come_from_the_table_and_an_unknown_model_gets_the_highest() -> None:
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1_024
    assert min_cacheable_tokens("claude-sonnet-4-5-20250929") == 1_024
    assert min_cacheable_tokens("claude-opus-4-1") == 1_024
    assert min_cacheable_tokens("claude-3-5-haiku-latest") == 2_048
    assert min_cacheable_tokens("claude-haiku-4-5") == 4_096
    assert min_cacheable_tokens("claude-opus-4-6") == 4_096
    assert min_cacheable_tokens("my-local-model") == DEFAULT_MIN_CACHEABLE_TOKENS == 4_096
    assert all(1_024 <= min_cacheable_tokens(model) <= 4_096 for model in MODELS)
