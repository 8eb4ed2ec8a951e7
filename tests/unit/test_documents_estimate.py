"""Estimate maths: the call plan, tokens, dollars, prices, caching, expected output, time,
and the approval decision."""

from __future__ import annotations

from typing import Any

import pytest

from docmill.documents.calls import Calls
from docmill.documents.estimate import (
    CALL_OVERHEAD_S,
    OUTPUT_TOKENS_PER_S,
    QueueLoad,
    cost_usd,
    count_inputs,
    estimate_document,
    eta,
    plan_tokens,
    shared_prefix,
)
from docmill.documents.pipeline import approval, served_model
from docmill.documents.plan import MAP, REDUCE, plan_calls
from docmill.documents.settings import DocumentSettings
from docmill.llm.errors import AuthenticationFailed, ProviderUnavailable, RateLimited
from docmill.llm.pricing import PriceTable
from docmill.llm.ratelimit import RateLimits
from docmill.llm.settings import LLMSettings
from docmill.llm.tokens import estimate_request_tokens, estimate_tokens
from docmill.llm.types import LLMRequest, LLMResponse

SONNET = "claude-sonnet-4-6"  # $3 in, $15 out per million tokens
SONNET_4_5 = "claude-sonnet-4-5"  # the same price; caches prefixes from 1,024 tokens
HAIKU = "claude-haiku-4-5"  # caches prefixes from 4,096 tokens
LOCAL = "llama-3.1-8b"
NO_LOAD = QueueLoad(depth=0, completed=0, minutes=15)
LONG_PROMPT = "Report every figure and date this document gives, with its context. " * 90  # ~1,550 tokens


class CountingProvider:
    """Counts tokens as 100 per request (or by the offline estimate); can be told to fail, and
    to mark shared prompt prefixes for caching."""

    is_offline = False

    def __init__(
        self,
        error: Exception | None = None,
        *,
        name: str = "anthropic",
        offline_counts: bool = False,
        caches_prompts: bool = False,
    ) -> None:
        self.name = name
        self.error = error
        self.offline_counts = offline_counts
        self.caches_prompts = caches_prompts
        self.counted = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("an estimate never completes a request")

    async def count_tokens(self, request: LLMRequest) -> int:
        if self.error is not None:
            raise self.error
        self.counted += 1
        return estimate_request_tokens(request.system, request.prompt) if self.offline_counts else 100

    async def aclose(self) -> None:
        return None


# ---------------------------------------------------------------------- the plan
def test_one_chunk_is_one_call_whose_answer_is_final() -> None:
    plan = plan_calls(1)
    assert (plan.maps, plan.reduces, plan.total, plan.final) == (1, (), 1, (MAP, 0))


def test_a_few_chunks_are_mapped_then_reduced_once() -> None:
    plan = plan_calls(5)
    assert plan.total == 6
    (step,) = plan.reduces
    assert step.inputs == tuple((MAP, i) for i in range(5)) and step.final
    assert plan.final == (REDUCE, 0)


def test_many_chunks_are_reduced_level_by_level_and_a_lone_answer_is_passed_up() -> None:
    plan = plan_calls(25, fan_in=12)  # groups of 12, 12 and 1; then one reduce of 3
    assert [len(s.inputs) for s in plan.reduces] == [12, 12, 3]
    assert plan.reduces[-1].inputs == ((REDUCE, 0), (REDUCE, 1), (MAP, 24))
    assert [s.final for s in plan.reduces] == [False, False, True]
    assert plan.total == 25 + 3


def test_the_plan_is_the_same_every_time() -> None:
    assert plan_calls(40) == plan_calls(40)


# ---------------------------------------------------------------------- tokens and cost
def test_tokens_of_a_one_chunk_document_expect_the_final_answer_size() -> None:
    tokens = plan_tokens(plan_calls(1), [1000], reduce_overhead=50, map_output=300, final_output=900)
    assert (tokens.calls, tokens.input_tokens, tokens.output_tokens) == (1, 1000, 900)


def test_a_reduce_reads_the_expected_answers_it_combines() -> None:
    tokens = plan_tokens(
        plan_calls(3), [1000, 1000, 500], reduce_overhead=50, map_output=300, final_output=900
    )
    assert tokens.map_output == (300, 300, 300)
    assert tokens.reduce_input == (50 + 3 * 300,)
    assert tokens.input_tokens == 2500 + 950
    assert tokens.output_tokens == 900 + 900


def test_cost_prices_every_call() -> None:
    tokens = plan_tokens(
        plan_calls(3), [1000, 1000, 500], reduce_overhead=50, map_output=300, final_output=900
    )
    expected = (3450 * 3.0 + 1800 * 15.0) / 1_000_000
    prices = PriceTable.default()
    assert cost_usd(prices, SONNET, tokens) == pytest.approx(expected)
    assert cost_usd(prices, SONNET, tokens, batch=True) == pytest.approx(expected * prices.batch_discount)


def test_a_cached_prefix_is_written_by_the_first_wave_of_maps_and_read_by_the_later_maps() -> None:
    tokens = plan_tokens(
        plan_calls(4), [1000, 1000, 1000, 500], reduce_overhead=50, map_output=300, final_output=900
    )
    usages = tokens.usages(cached_prefix_tokens=400, writes=2)
    assert [u.cache_creation_input_tokens for u in usages] == [400, 400, 0, 0, 0]
    assert [u.cache_read_input_tokens for u in usages] == [0, 0, 400, 400, 0]
    assert [u.input_tokens for u in usages] == [600, 600, 600, 100, 50 + 4 * 300]
    cached = cost_usd(PriceTable.default(), SONNET, tokens, cached_prefix_tokens=400, cache_writes=2)
    expected = ((1900 + 1250) * 3.0 + 800 * 3.75 + 800 * 0.3 + 2100 * 15.0) / 1_000_000
    assert cached == pytest.approx(expected)


def test_a_model_without_a_price_is_a_key_error() -> None:
    tokens = plan_tokens(plan_calls(1), [10], reduce_overhead=0, map_output=1, final_output=1)
    with pytest.raises(KeyError):
        cost_usd(PriceTable.default(), "llama-3-8b", tokens)


# ---------------------------------------------------------------------- time
def test_processing_time_is_generation_when_limits_are_generous() -> None:
    tokens = plan_tokens(plan_calls(4), [1000] * 4, reduce_overhead=0, map_output=500, final_output=1000)
    wait_s, processing_s = eta(tokens, load=NO_LOAD, limits=None, concurrency=4, offline=False)
    maps = (4 * CALL_OVERHEAD_S + 2000 / OUTPUT_TOKENS_PER_S) / 4
    reduces = CALL_OVERHEAD_S + 1000 / OUTPUT_TOKENS_PER_S
    assert (wait_s, processing_s) == (0.0, pytest.approx(maps + reduces))


def test_rate_limits_bound_processing_time() -> None:
    tokens = plan_tokens(plan_calls(4), [30_000] * 4, reduce_overhead=0, map_output=500, final_output=1000)
    limits = RateLimits(requests_per_min=50, input_tokens_per_min=30_000, output_tokens_per_min=8_000)
    _, processing_s = eta(tokens, load=NO_LOAD, limits=limits, concurrency=4, offline=False)
    assert processing_s == pytest.approx(tokens.input_tokens / 30_000 * 60)


def test_waiting_time_is_the_queue_depth_over_its_throughput() -> None:
    tokens = plan_tokens(plan_calls(1), [100], reduce_overhead=0, map_output=1, final_output=10)
    wait_s, _ = eta(
        tokens, load=QueueLoad(depth=6, completed=30, minutes=15), limits=None, concurrency=1, offline=False
    )
    assert wait_s == pytest.approx(6 / 2 * 60)


def test_without_history_each_job_ahead_is_assumed_as_long_as_this_one() -> None:
    tokens = plan_tokens(plan_calls(1), [100], reduce_overhead=0, map_output=1, final_output=10)
    wait_s, processing_s = eta(tokens, load=QueueLoad(3, 0, 15), limits=None, concurrency=1, offline=False)
    assert wait_s == pytest.approx(3 * processing_s)


# ---------------------------------------------------------------------- counting and the whole estimate
async def test_the_provider_counts_the_map_requests_when_it_can() -> None:
    provider = CountingProvider()
    requests = [LLMRequest(SONNET, "s", "p" * 400, 10)] * 3
    assert await count_inputs(provider, requests, concurrency=2) == ([100, 100, 100], "provider")


async def test_a_rate_limited_count_falls_back_to_the_offline_estimate() -> None:
    provider = CountingProvider(RateLimited(retry_after_s=30))
    counts, source = await count_inputs(provider, [LLMRequest(SONNET, "", "p" * 400, 10)], concurrency=1)
    assert source == "offline" and counts[0] >= 100


async def test_a_permanent_error_while_counting_propagates() -> None:
    provider = CountingProvider(AuthenticationFailed("The key was rejected; set CLAUDE_API_KEY."))
    with pytest.raises(AuthenticationFailed):
        await count_inputs(provider, [LLMRequest(SONNET, "", "p", 10)], concurrency=1)


async def test_estimate_document_puts_it_together() -> None:
    calls = Calls.for_document(
        name="a.txt", options={}, analysis={"language": {"code": "en"}}, default_model=SONNET
    )
    chunks = [{"index": i, "text": "word " * 200, "heading_path": []} for i in range(3)]
    estimate = await estimate_document(
        calls,
        chunks,
        provider=CountingProvider(),
        prices=PriceTable.default(),
        limits=None,
        load=NO_LOAD,
        concurrency=4,
    )
    assert estimate["calls"] == {"map": 3, "reduce": 1, "total": 4}
    assert estimate["token_source"] == "provider" and estimate["model"] == SONNET
    assert estimate["cost_usd"] > 0 and estimate["price_known"] and estimate["price_note"] is None
    assert estimate["eta_s"] > 0


# ---------------------------------------------------------------------- approval
def test_an_estimate_within_the_budget_is_approved_automatically() -> None:
    approved, message = approval(0.1234, price_known=True, auto_approve=False, max_usd=0.5)
    assert approved and message == "auto-approved: estimated $0.1234 is within the $0.50 budget"


def test_an_estimate_over_the_budget_waits_for_a_person() -> None:
    approved, message = approval(0.75, price_known=True, auto_approve=False, max_usd=0.5)
    assert not approved and "over the auto-approve budget of $0.50" in message


def test_the_auto_approve_option_approves_any_estimate() -> None:
    assert approval(99.0, price_known=True, auto_approve=True, max_usd=0.5)[0]


def test_a_model_without_a_known_price_waits_for_approval_whatever_the_budget() -> None:
    note = "no price is known for 'claude-fable-5', so the cost cannot be estimated; approve it"
    approved, message = approval(None, price_known=False, auto_approve=False, max_usd=1000.0, price_note=note)
    assert not approved and message == f"awaiting approval: {note}"
    # An estimate stored before unknown prices had no cost said $0; it waits too
    assert not approval(0.0, price_known=False, auto_approve=False, max_usd=0.5)[0]


def test_the_auto_approve_option_approves_an_unknown_price_and_says_the_cost_is_unknown() -> None:
    approved, message = approval(None, price_known=False, auto_approve=True, max_usd=0.5)
    assert approved and message == "auto-approved by the auto_approve option (the cost is unknown)"


# ---------------------------------------------------------------------- prices of the model called
def chunks_of(count: int, words: int = 200) -> list[dict[str, object]]:
    return [{"index": i, "text": f"part {i} " + "word " * words, "heading_path": []} for i in range(count)]


async def estimate_for(
    options: dict[str, object] | None = None,
    *,
    chunks: int = 3,
    provider: CountingProvider | None = None,
    prices: PriceTable | None = None,
    default_model: str = SONNET,
    model: str | None = None,
    concurrency: int = 4,
    batch: bool = False,
) -> dict[str, Any]:
    calls = Calls.for_document(
        name="a.txt",
        options=options or {},
        analysis={"language": {"code": "en"}},
        default_model=default_model,
    )
    return await estimate_document(
        calls,
        chunks_of(chunks),
        provider=provider or CountingProvider(offline_counts=True),
        prices=prices or PriceTable.default(),
        limits=None,
        load=NO_LOAD,
        concurrency=concurrency,
        model=model,
        batch=batch,
    )


async def test_a_claude_model_without_a_price_has_no_cost_and_the_estimate_says_why() -> None:
    estimate = await estimate_for({"model": "claude-fable-5"})

    assert (estimate["cost_usd"], estimate["price_known"]) == (None, False)
    assert estimate["price_note"] == (
        "no price is known for 'claude-fable-5', so the cost cannot be estimated; approve the document "
        'to process it, or give it one under [llm.prices."claude-fable-5"] in docmill.toml or in '
        "DOCMILL_LLM_PRICES (USD per million tokens)"
    )


async def test_an_unlisted_model_of_a_known_line_is_priced_provisionally_and_the_estimate_says_so() -> None:
    estimate = await estimate_for({"model": "claude-opus-5"})

    assert estimate["price_known"] and estimate["price_provisional"]
    assert estimate["cost_usd"] > 0
    assert "'claude-opus-5' has no list price yet" in str(estimate["price_note"])


async def test_an_openai_compatible_server_is_never_priced_at_claudes_list_price() -> None:
    # Given a local server whose configured model is not priced, and one sent the Claude default
    server = CountingProvider(name="openai")
    local = await estimate_for(provider=server, model=LOCAL)
    default = await estimate_for(provider=server)

    # Then neither has a cost: Anthropic's list prices say nothing of the server
    assert (local["model"], local["cost_usd"], local["price_known"]) == (LOCAL, None, False)
    assert (default["model"], default["cost_usd"], default["price_known"]) == (SONNET, None, False)
    assert local["price_note"] == (
        "no price is configured for 'llama-3.1-8b' on the OpenAI-compatible server, so the cost cannot "
        "be estimated; approve the document to process it, or give it one under "
        '[llm.prices."llama-3.1-8b"] in docmill.toml or in DOCMILL_LLM_PRICES (USD per million '
        "tokens; 0 for a free local server)"
    )


async def test_a_price_of_zero_configured_for_the_server_model_makes_it_free() -> None:
    prices = LLMSettings.from_env(
        {"DOCMILL_LLM_PRICES": '{"llama-3.1-8b": {"input_per_mtok": 0, "output_per_mtok": 0}}'}
    ).prices

    estimate = await estimate_for(provider=CountingProvider(name="openai"), prices=prices, model=LOCAL)

    assert (estimate["cost_usd"], estimate["price_known"], estimate["price_note"]) == (0.0, True, None)
    assert approval(0.0, price_known=True, auto_approve=False, max_usd=0.5)[0]


async def test_an_openai_compatible_model_is_priced_at_its_configured_price() -> None:
    prices = PriceTable.default().with_overrides({LOCAL: {"input_per_mtok": 1.0, "output_per_mtok": 2.0}})

    estimate = await estimate_for(provider=CountingProvider(name="openai"), prices=prices, model=LOCAL)

    expected = (estimate["input_tokens"] * 1.0 + estimate["output_tokens"] * 2.0) / 1_000_000
    assert estimate["cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_an_openai_compatible_server_bills_its_configured_model_instead_of_the_documents() -> None:
    openai = DocumentSettings(
        llm=LLMSettings(provider="openai", openai_base_url="http://h", openai_model=LOCAL)
    )
    anthropic = DocumentSettings(llm=LLMSettings(provider="anthropic", anthropic_api_key="k"))

    assert served_model(openai, CountingProvider(name="openai"), SONNET) == LOCAL
    assert served_model(anthropic, CountingProvider(), SONNET) == SONNET


async def test_an_alias_is_estimated_and_priced_as_its_dated_id() -> None:
    estimate = await estimate_for({"model": SONNET_4_5})
    assert estimate["model"] == "claude-sonnet-4-5-20250929" and estimate["price_known"]


async def test_the_estimate_shows_no_batch_price_unless_the_calls_go_by_batch() -> None:
    direct = await estimate_for()
    batch = await estimate_for(batch=True)

    assert "cost_usd_batch" not in direct and direct["batch"] is False
    assert batch["batch"] is True
    assert batch["cost_usd"] == pytest.approx(direct["cost_usd"] / 2, abs=1e-6)


# ---------------------------------------------------------------------- prompt caching
CACHING = CountingProvider(offline_counts=True, caches_prompts=True)
LONG_CUSTOM = {"profile": "custom", "prompt": LONG_PROMPT, "model": SONNET_4_5}


async def test_a_short_system_prompt_is_below_every_caching_minimum_so_no_cached_price_is_shown() -> None:
    estimate = await estimate_for(chunks=8, concurrency=1, provider=CACHING)

    assert estimate["cost_usd_cached"] is None
    cache = estimate["prompt_cache"]
    assert cache["applies"] is False and cache["provider_caches"] is True
    assert 0 < cache["prefix_tokens"] < 1_024 and cache["min_tokens"] == 2_048  # Sonnet 4.6


async def test_a_long_custom_prompt_shared_by_the_maps_is_priced_cached_above_the_models_minimum() -> None:
    # Given a custom prompt of some 1,550 tokens that every map call begins with, on a model
    # that caches from 1,024 tokens, 6 chunks mapped 2 at a time by a provider that caches
    estimate = await estimate_for(LONG_CUSTOM, chunks=6, concurrency=2, provider=CACHING)

    # Then the 2 maps of the first wave write the prefix, the 4 later maps read it
    cache = estimate["prompt_cache"]
    assert cache["applies"] is True and cache["min_tokens"] == 1_024
    prefix = cache["prefix_tokens"]
    assert 1_500 < prefix < 1_700
    standard = estimate["cost_usd"]
    saved = 4 * prefix * (3.0 - 0.3) - 2 * prefix * (3.75 - 3.0)
    assert estimate["cost_usd_cached"] == pytest.approx(standard - saved / 1_000_000, abs=1e-5)


async def test_a_provider_that_does_not_cache_prompts_shows_no_cached_price() -> None:
    # The same long prefix, through a provider that sends no cache_control (every one today)
    estimate = await estimate_for(LONG_CUSTOM, chunks=6, concurrency=2)

    cache = estimate["prompt_cache"]
    assert estimate["cost_usd_cached"] is None
    assert (cache["prefix_tokens"] > 1_500, cache["provider_caches"], cache["applies"]) == (
        True,
        False,
        False,
    )


async def test_the_same_prefix_is_not_cached_by_a_model_with_a_higher_minimum() -> None:
    options = {**LONG_CUSTOM, "model": HAIKU}
    estimate = await estimate_for(options, chunks=6, concurrency=2, provider=CACHING)

    assert estimate["cost_usd_cached"] is None
    cache = estimate["prompt_cache"]
    assert (cache["prefix_tokens"] > 1_500, cache["min_tokens"], cache["applies"]) == (True, 4_096, False)


async def test_maps_that_all_run_at_once_read_no_cache_so_no_cached_price_is_shown() -> None:
    assert (await estimate_for(LONG_CUSTOM, chunks=4, concurrency=4, provider=CACHING))[
        "cost_usd_cached"
    ] is None
    assert (await estimate_for(LONG_CUSTOM, chunks=1, provider=CACHING))["cost_usd_cached"] is None


def test_the_shared_prefix_is_the_system_prompt_and_the_instructions_before_the_chunk_text() -> None:
    calls = Calls.for_document(
        name="a.txt",
        options={"profile": "custom", "prompt": "List the dates."},
        analysis={},
        default_model=SONNET,
    )
    prompts = [calls.map(chunk, 12).prompt for chunk in chunks_of(12)]
    head = prompts[0][: prompts[0].index("<document part=")].rstrip()

    assert shared_prefix(calls.system, prompts) == estimate_request_tokens(calls.system, head)
    assert shared_prefix(calls.system, prompts[:1]) == 0


# ---------------------------------------------------------------------- expected output
SMALL_SCHEMA = {"type": "object", "properties": {"total": {"type": "number"}}}
INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "date": {"type": "string"},
        "total": {"type": "number"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"item": {"type": "string"}, "price": {"type": "number"}},
            },
        },
    },
}


async def test_expected_output_per_call_follows_what_the_profile_asks_for() -> None:
    summary = await estimate_for({"profile": "summary"})
    custom = await estimate_for({"profile": "custom", "prompt": "List the dates."})
    small = await estimate_for({"profile": "extract", "schema": SMALL_SCHEMA})
    invoice = await estimate_for({"profile": "extract", "schema": INVOICE_SCHEMA})

    assert summary["output_tokens_per_call"] == {"map": 450, "final": 700}
    assert custom["output_tokens_per_call"] == {"map": 300, "final": 600}
    # {"total": 3} in a fence: 10 + 2 + ("total" 2 + 2 + number 3)
    assert small["output_tokens_per_call"] == {"map": 19, "final": 19}
    # 4 fields, one a list of 5 objects of 2 fields each
    line = 2 + (estimate_tokens('"item"') + 2 + 15) + (estimate_tokens('"price"') + 2 + 3)
    fields = (
        (estimate_tokens('"number"') + 2 + 15)
        + (estimate_tokens('"date"') + 2 + 15)
        + (estimate_tokens('"total"') + 2 + 3)
        + (estimate_tokens('"lines"') + 2 + 2 + 5 * (line + 1))
    )
    assert invoice["output_tokens_per_call"] == {"map": 10 + 2 + fields, "final": 10 + 2 + fields}
    # Three maps and one final reduce, each at its expected size
    assert summary["output_tokens"] == 3 * 450 + 700


async def test_expected_output_never_exceeds_the_calls_max_tokens() -> None:
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(300)}}
    estimate = await estimate_for({"profile": "extract", "schema": schema})
    assert estimate["output_tokens_per_call"] == {"map": 1024, "final": 2048}


async def test_a_one_chunk_document_expects_the_final_answer_size() -> None:
    estimate = await estimate_for({"profile": "summary"}, chunks=1)
    assert estimate["output_tokens"] == 700


# ---------------------------------------------------------------------- the API's counts kept
async def test_the_apis_counts_of_the_maps_are_kept_and_the_processing_calls_carry_them() -> None:
    estimate = await estimate_for(chunks=3, provider=CountingProvider())

    assert estimate["token_source"] == "provider"
    assert estimate["map_input_tokens"] == [100, 100, 100]
    calls = Calls.for_document(
        name="a.txt",
        options={},
        analysis={"language": {"code": "en"}},
        default_model=SONNET,
        estimate=estimate,
    )
    assert [calls.map(chunk, 3).input_tokens for chunk in chunks_of(3)] == [100, 100, 100]


async def test_offline_counts_are_not_handed_on_as_the_apis() -> None:
    offline = await estimate_for(provider=CountingProvider(ProviderUnavailable("down")))

    assert offline["token_source"] == "offline" and offline["map_input_tokens"] is None
    calls = Calls.for_document(name="a.txt", options={}, analysis={}, default_model=SONNET, estimate=offline)
    assert calls.map(chunks_of(3)[0], 3).input_tokens is None


async def test_counts_made_for_another_model_are_not_used() -> None:
    estimate = await estimate_for(chunks=2, provider=CountingProvider())

    calls = Calls.for_document(name="a.txt", options={}, analysis={}, default_model=HAIKU, estimate=estimate)

    assert calls.map(chunks_of(2)[0], 2).input_tokens is None


def test_maps_and_reduces_mark_the_instructions_they_share_for_the_prompt_cache() -> None:
    calls = Calls.for_document(
        name="a.txt",
        options={"profile": "custom", "prompt": "List the dates."},
        analysis={},
        default_model=SONNET,
    )
    first, second = (calls.map(chunk, 2) for chunk in chunks_of(2))
    reduce = calls.reduce(["dates of part 1", "dates of part 2"], final=True)

    assert first.prompt[: first.cache_prefix_chars] == second.prompt[: second.cache_prefix_chars]
    assert "<document" not in first.prompt[: first.cache_prefix_chars]
    assert first.prompt[first.cache_prefix_chars :].lstrip().startswith("<document part=")
    shared = reduce.prompt[: reduce.cache_prefix_chars]
    assert "List the dates." in shared and "dates of part 1" not in shared
