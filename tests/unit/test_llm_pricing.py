"""Price table: list prices, alias resolution, cache and batch maths, configuration overrides,
and which prices came from configuration."""

from __future__ import annotations

import pytest

from docmill.llm import DEFAULT_MODEL, LLMSettings, ModelPrice, PriceTable, Usage

TABLE = PriceTable.default()


def test_cost_counts_each_kind_of_token_at_its_price() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)

    assert TABLE.cost_usd("claude-sonnet-4-6", usage) == pytest.approx(3.0 + 15.0)
    assert TABLE.cost_usd("claude-haiku-4-5", usage) == pytest.approx(1.0 + 5.0)
    assert TABLE.cost_usd("claude-opus-4-1", usage) == pytest.approx(15.0 + 75.0)
    assert TABLE.cost_usd("claude-opus-4-5", usage) == pytest.approx(5.0 + 25.0)
    assert TABLE.cost_usd("claude-3-5-haiku-20241022", usage) == pytest.approx(0.8 + 4.0)


def test_cache_writes_cost_a_quarter_more_and_cache_reads_a_tenth_of_input() -> None:
    usage = Usage(
        input_tokens=200_000,
        output_tokens=10_000,
        cache_creation_input_tokens=400_000,
        cache_read_input_tokens=1_000_000,
    )

    expected = (200_000 * 3.0 + 10_000 * 15.0 + 400_000 * 3.75 + 1_000_000 * 0.30) / 1_000_000
    assert TABLE.cost_usd("claude-sonnet-4-5", usage) == pytest.approx(expected)


def test_batch_calls_cost_half() -> None:
    usage = Usage(input_tokens=12_345, output_tokens=678, cache_read_input_tokens=900)

    assert TABLE.batch_discount == 0.5
    assert TABLE.cost_usd("claude-haiku-4-5", usage, batch=True) == pytest.approx(
        TABLE.cost_usd("claude-haiku-4-5", usage) / 2
    )


def test_aliases_and_dated_ids_share_a_price() -> None:
    assert TABLE.price_for("claude-haiku-4-5") == TABLE.price_for("claude-haiku-4-5-20251001")
    assert TABLE.price_for("claude-sonnet-4-5") == TABLE.price_for("claude-sonnet-4-5-20250929")


def test_the_default_model_and_the_extractive_processor_have_prices() -> None:
    assert not TABLE.price_for(DEFAULT_MODEL).provisional
    assert TABLE.cost_usd("extractive", Usage(10_000, 10_000)) == 0.0


def test_an_unlisted_model_of_a_known_line_borrows_its_lines_price_marked_provisional() -> None:
    price = TABLE.price_for("claude-opus-5")

    assert price.provisional
    assert (price.input_per_mtok, price.output_per_mtok) == (5.0, 25.0)


def test_an_unknown_model_is_a_key_error_that_says_how_to_add_a_price() -> None:
    with pytest.raises(
        KeyError, match=r'claude-fable-5.*\[llm\.prices\."claude-fable-5"\].*DOCMILL_LLM_PRICES'
    ):
        TABLE.price_for("claude-fable-5")
    assert not TABLE.has_price("llama-3-8b")


def test_overrides_replace_some_fields_and_add_models() -> None:
    table = TABLE.with_overrides(
        {
            "claude-haiku-4-5": {"output_per_mtok": 4.0},
            "claude-fable-5": {"input_per_mtok": 4.0, "output_per_mtok": 20.0},
        },
        batch_discount=0.6,
    )

    haiku = table.price_for("claude-haiku-4-5-20251001")
    fable = table.price_for("claude-fable-5")
    assert (haiku.input_per_mtok, haiku.output_per_mtok) == (1.0, 4.0)
    assert (fable.cache_write_per_mtok, fable.cache_read_per_mtok) == (5.0, 0.4)
    assert table.batch_discount == 0.6
    assert TABLE.price_for("claude-haiku-4-5").output_per_mtok == 5.0  # the default is untouched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"claude-haiku-4-5": {"input": 1.0}}, "unknown field"),
        ({"new-model": {"input_per_mtok": 1.0}}, "needs input_per_mtok and output_per_mtok"),
        ({"claude-haiku-4-5": {"input_per_mtok": -1.0}}, "negative"),
    ],
)
def test_bad_overrides_are_refused_with_the_reason(
    overrides: dict[str, dict[str, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TABLE.with_overrides(overrides)


def test_configured_prices_are_told_apart_from_list_prices() -> None:
    # Given prices from configuration for a local model (free) and for one Claude model
    table = LLMSettings.from_env(
        {
            "DOCMILL_LLM_PRICES": '{"llama-3.1-8b": {"input_per_mtok": 0, "output_per_mtok": 0},'
            ' "claude-haiku-4-5": {"output_per_mtok": 4.0}}'
        }
    ).prices

    # Then only those count as configured, an alias finding its dated id's
    assert table.configured_price("llama-3.1-8b") == ModelPrice(0.0, 0.0, 0.0, 0.0)
    haiku = table.configured_price("claude-haiku-4-5")
    assert haiku is not None and haiku == table.configured_price("claude-haiku-4-5-20251001")
    assert table.configured_price(DEFAULT_MODEL) is None
    assert TABLE.configured_price("claude-haiku-4-5") is None
    assert table.configured_price("mistral-7b") is None
