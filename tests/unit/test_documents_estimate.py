"""Estimate maths: the call plan, tokens, dollars, time, and the approval decision."""

from __future__ import annotations

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
)
from docmill.documents.pipeline import approval
from docmill.documents.plan import MAP, REDUCE, plan_calls
from docmill.llm.errors import AuthenticationFailed, RateLimited
from docmill.llm.pricing import PriceTable
from docmill.llm.ratelimit import RateLimits
from docmill.llm.types import LLMRequest, LLMResponse

SONNET = "claude-sonnet-4-6"  # $3 in, $15 out per million tokens
NO_LOAD = QueueLoad(depth=0, completed=0, minutes=15)


class CountingProvider:
    """Counts tokens as 100 per request; can be told to fail."""

    name = "anthropic"
    is_offline = False

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.counted = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("an estimate never completes a request")

    async def count_tokens(self, request: LLMRequest) -> int:
        if self.error is not None:
            raise self.error
        self.counted += 1
        return 100

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


def test_a_cached_system_prompt_is_written_once_and_read_by_later_calls() -> None:
    tokens = plan_tokens(
        plan_calls(3), [1000, 1000, 500], reduce_overhead=50, map_output=300, final_output=900
    )
    usages = tokens.usages(cached_prefix_tokens=40)
    assert [u.cache_creation_input_tokens for u in usages] == [40, 0, 0, 0]
    assert [u.cache_read_input_tokens for u in usages] == [0, 40, 40, 40]
    assert sum(u.input_tokens for u in usages) == 3450 - 4 * 40
    cached = cost_usd(PriceTable.default(), SONNET, tokens, cached_prefix_tokens=40)
    expected = ((3450 - 160) * 3.0 + 40 * 3.75 + 120 * 0.3 + 1800 * 15.0) / 1_000_000
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
    assert estimate["cost_usd"] > estimate["cost_usd_batch"] > 0
    assert estimate["price_known"] and estimate["eta_s"] > 0


# ---------------------------------------------------------------------- approval
def test_an_estimate_within_the_budget_is_approved_automatically() -> None:
    approved, message = approval(0.1234, price_known=True, auto_approve=False, max_usd=0.5)
    assert approved and message == "auto-approved: estimated $0.1234 is within the $0.50 budget"


def test_an_estimate_over_the_budget_waits_for_a_person() -> None:
    approved, message = approval(0.75, price_known=True, auto_approve=False, max_usd=0.5)
    assert not approved and "over the auto-approve budget of $0.50" in message


def test_the_auto_approve_option_approves_any_estimate() -> None:
    assert approval(99.0, price_known=True, auto_approve=True, max_usd=0.5)[0]
