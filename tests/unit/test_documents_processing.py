"""Running a document's calls: resume after a crash without paying twice, and every outcome."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from docmill.documents.calls import Calls
from docmill.documents.mapreduce import Outcome, SavedCall, run_plan
from docmill.documents.plan import MAP, REDUCE, CallRef, plan_calls
from docmill.documents.processing import (
    OFFLINE_PROCESSOR,
    build_result,
    unreachable_clock,
    unreachable_reason,
    unreachable_wait_s,
)
from docmill.llm.errors import (
    MalformedOutput,
    ModelUnavailable,
    Overloaded,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
)
from docmill.llm.types import LLMRequest, LLMResponse, Usage


class Crash(Exception):
    """Stands for the worker dying mid-document."""


class FakeProvider:
    """Answers every request with JSON naming its part; counts what each prompt cost.

    ``fail_on`` maps a call number (1-based, in the order calls are made) to the
    exception that call raises instead of answering.
    """

    name = "anthropic"
    is_offline = False

    def __init__(self, fail_on: dict[int, BaseException] | None = None, *, name: str = "anthropic") -> None:
        self.name = name
        self.fail_on = fail_on or {}
        self.calls = 0
        self.paid: Counter[str] = Counter()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        number = self.calls
        await asyncio.sleep(0)  # let concurrent calls interleave
        error = self.fail_on.get(number)
        if error is not None:
            raise error
        self.paid[request.prompt] += 1
        text = json.dumps({"title": "T", "summary": f"answer {number}", "language": "en"})
        return LLMResponse(
            text, Usage(100, 20), "claude-haiku-4-5-20251001", self.name, f"req_{number}", 0.001
        )

    async def count_tokens(self, request: LLMRequest) -> int:
        return 1

    async def aclose(self) -> None:
        return None


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: dict[CallRef, SavedCall] = {}
        self.processing = True

    async def saved(self) -> dict[CallRef, SavedCall]:
        return dict(self.rows)

    async def save(self, ref: CallRef, response: LLMResponse) -> bool:
        assert ref not in self.rows, f"{ref} saved twice"
        self.rows[ref] = SavedCall.of(response)
        return self.processing


def calls() -> Calls:
    return Calls.for_document(name="doc.txt", options={}, analysis=None, default_model="claude-haiku-4-5")


def chunks(n: int) -> list[dict[str, object]]:
    return [{"index": i, "text": f"Chunk number {i}.", "heading_path": []} for i in range(n)]


async def test_a_clean_run_makes_every_planned_call_once() -> None:
    provider, ledger = FakeProvider(), MemoryLedger()
    outcome = await run_plan(calls(), chunks(5), provider, ledger, concurrency=2)
    assert outcome.kind == "done"
    assert set(ledger.rows) == {(MAP, i) for i in range(5)} | {(REDUCE, 0)}
    assert provider.calls == 6 and max(provider.paid.values()) == 1
    assert outcome.final == ledger.rows[(REDUCE, 0)]


async def test_after_a_crash_mid_document_no_chunk_is_paid_twice() -> None:
    # Given a run that dies on its fourth call, after three chunks were answered and saved
    ledger = MemoryLedger()
    first = FakeProvider(fail_on={4: Crash("worker died")})
    outcome = await run_plan(calls(), chunks(6), first, ledger, concurrency=1)
    assert outcome.kind == "error" and isinstance(outcome.error, Crash)
    assert set(ledger.rows) == {(MAP, 0), (MAP, 1), (MAP, 2)}

    # When the job is retried
    second = FakeProvider()
    outcome = await run_plan(calls(), chunks(6), second, ledger, concurrency=1)

    # Then only the unfinished chunks and the reduce are paid for
    assert outcome.kind == "done"
    assert second.calls == 3 + 1
    paid_prompts = first.paid + second.paid
    assert sum(paid_prompts.values()) == 7 and max(paid_prompts.values()) == 1


async def test_a_resumed_reduce_combines_the_saved_answers() -> None:
    ledger = MemoryLedger()
    await run_plan(calls(), chunks(3), FakeProvider(fail_on={4: Crash()}), ledger, concurrency=1)
    retry = FakeProvider()
    outcome = await run_plan(calls(), chunks(3), retry, ledger, concurrency=1)
    assert outcome.kind == "done" and retry.calls == 1
    (reduce_prompt,) = retry.paid
    for number in (1, 2, 3):  # the first run's answers, as saved
        assert f"answer {number}" in reduce_prompt


async def test_a_rate_limit_asks_to_come_back_after_the_longest_wait() -> None:
    ledger = MemoryLedger()
    provider = FakeProvider(fail_on={2: RateLimited(retry_after_s=12), 3: Overloaded(retry_after_s=30)})
    outcome = await run_plan(calls(), chunks(4), provider, ledger, concurrency=4)
    assert outcome.kind == "retry" and outcome.retry_after_s == 30
    assert len(ledger.rows) == 2  # the calls that answered are kept


async def test_the_first_error_stops_new_calls_from_starting() -> None:
    provider = FakeProvider(fail_on={1: RateLimited(retry_after_s=5)})
    outcome = await run_plan(calls(), chunks(10), provider, MemoryLedger(), concurrency=1)
    assert outcome.kind == "retry" and provider.calls == 1


async def test_a_permanent_error_fails_with_its_reason_even_beside_a_rate_limit() -> None:
    retired = ModelUnavailable(
        "Claude Sonnet 3.5 was retired; use claude-sonnet-4-6.", model="m", retired=True
    )
    provider = FakeProvider(fail_on={1: RateLimited(retry_after_s=5), 2: retired})
    outcome = await run_plan(calls(), chunks(2), provider, MemoryLedger(), concurrency=2)
    assert outcome.kind == "failed" and outcome.reason == retired.reason


async def test_a_cancelled_document_stops_after_saving_the_answer_in_hand() -> None:
    ledger = MemoryLedger()
    ledger.processing = False
    provider = FakeProvider()
    outcome = await run_plan(calls(), chunks(5), provider, ledger, concurrency=1)
    assert outcome.kind == "stopped" and provider.calls == 1 and len(ledger.rows) == 1


async def test_a_malformed_answer_is_kept_because_it_was_paid_for() -> None:
    paid = LLMResponse("no json here", Usage(100, 5), "m", "anthropic", "req_x", 0.002)
    provider = FakeProvider(fail_on={1: MalformedOutput("no JSON object", response=paid)})
    ledger = MemoryLedger()
    outcome = await run_plan(calls(), chunks(1), provider, ledger)
    assert outcome.kind == "done" and ledger.rows[(MAP, 0)].text == "no json here"


async def test_past_the_deadline_no_new_call_starts() -> None:
    now = [0.0]
    provider = FakeProvider()

    async def complete(request: LLMRequest) -> LLMResponse:
        now[0] += 10.0  # every call takes ten seconds
        return await FakeProvider.complete(provider, request)

    provider.complete = complete  # type: ignore[method-assign]
    ledger = MemoryLedger()
    outcome = await run_plan(
        calls(), chunks(5), provider, ledger, concurrency=1, deadline=25.0, clock=lambda: now[0]
    )
    assert outcome.kind == "out_of_time" and len(ledger.rows) == 3


async def test_an_offline_result_is_labelled_as_such() -> None:
    ledger = MemoryLedger()
    outcome = await run_plan(calls(), chunks(2), FakeProvider(name="extractive"), ledger)
    result, markdown = build_result(7, "doc.txt", calls(), outcome)
    assert result["processor"] == OFFLINE_PROCESSOR and result["offline"] is True
    assert markdown.startswith("> Processed by the extractive processor (offline, no model)")
    assert result["usage"] == {"calls": 3, "input_tokens": 300, "output_tokens": 60, "cost_usd": 0.003}


async def test_a_model_result_names_provider_and_model() -> None:
    outcome = await run_plan(calls(), chunks(1), FakeProvider(), MemoryLedger())
    result, _ = build_result(7, "doc.txt", calls(), outcome)
    assert result["processor"] == "anthropic (claude-haiku-4-5-20251001)" and result["offline"] is False
    assert result["title"] == "T" and result["profile"] == "summary"


@pytest.mark.parametrize("n", [1, 2, 13, 30])
async def test_every_plan_size_completes_with_one_call_per_planned_call(n: int) -> None:
    provider = FakeProvider()
    outcome = await run_plan(calls(), chunks(n), provider, MemoryLedger(), concurrency=8)
    assert outcome.kind == "done" and provider.calls == plan_calls(n).total


# ---------------------------------------------------------------------- an unreachable provider
T0 = datetime(2026, 12, 8, 9, 30, 0, tzinfo=UTC)
BOUND_S = 1800.0


def refused() -> ProviderUnreachable:
    return ProviderUnreachable(
        "cannot reach the Claude API: Connection to llm.internal:8443 failed: [Errno 111] Connection refused",
        base_url="https://proxy:***@llm.internal:8443",
        base_url_setting="ANTHROPIC_BASE_URL",
        retry_after_s=10,
    )


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def outcome_of(*, answered: bool = False, unreachable_at: datetime | None = None) -> Outcome:
    outcome = Outcome("retry", plan_calls(1), retry_after_s=10, answered=answered)
    if unreachable_at is not None:
        outcome.unreachable, outcome.unreachable_since = refused(), unreachable_at
    return outcome


class Ticking:
    """A wall clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return after(self.reads)


async def test_a_run_that_reaches_no_provider_says_so_when_and_that_nothing_answered() -> None:
    first, second = refused(), refused()
    provider = FakeProvider(fail_on={1: first, 2: second})

    outcome = await run_plan(calls(), chunks(2), provider, MemoryLedger(), concurrency=2, now=Ticking())

    assert (outcome.kind, outcome.retry_after_s) == ("retry", 10)
    assert (outcome.unreachable, outcome.unreachable_since, outcome.answered) == (first, after(1), False)


async def test_a_call_that_finds_no_provider_after_an_answer_is_dated_after_it() -> None:
    # Given a provider that answers the first two calls and is gone for the third
    lost = refused()
    provider = FakeProvider(fail_on={3: lost})

    outcome = await run_plan(calls(), chunks(4), provider, MemoryLedger(), concurrency=1, now=Ticking())

    assert outcome.kind == "retry" and outcome.answered is True
    assert (outcome.unreachable, outcome.unreachable_since) == (lost, after(1))


async def test_an_answer_after_a_call_that_found_no_provider_clears_it() -> None:
    # Given two calls at once: the first finds no provider, the second is answered after it
    provider = FakeProvider(fail_on={1: refused()})

    outcome = await run_plan(calls(), chunks(2), provider, MemoryLedger(), concurrency=2, now=Ticking())

    assert outcome.kind == "retry" and outcome.answered is True
    assert (outcome.unreachable, outcome.unreachable_since) == (None, None)


@pytest.mark.parametrize(
    ("error", "answered"),
    [
        (RateLimited(retry_after_s=12), True),
        (Overloaded(retry_after_s=12), True),
        (RateLimited(retry_after_s=12, from_limiter=True), False),
        (ProviderUnavailable("The Claude API failed with HTTP 502: bad gateway", retry_after_s=12), False),
    ],
    ids=["429", "529", "shared-limiter", "502"],
)
async def test_only_a_429_or_529_from_the_api_is_an_answer_and_none_is_unreachable(
    error: Exception, answered: bool
) -> None:
    outcome = await run_plan(calls(), chunks(1), FakeProvider(fail_on={1: error}), MemoryLedger())

    assert (outcome.kind, outcome.retry_after_s) == ("retry", 12)
    assert outcome.answered is answered and outcome.unreachable is None


def test_the_clock_starts_when_a_call_finds_no_provider_and_keeps_its_start() -> None:
    assert unreachable_clock(outcome_of(unreachable_at=T0), None) == T0
    assert unreachable_clock(outcome_of(unreachable_at=after(600)), T0) == T0


def test_any_answer_stops_the_clock() -> None:
    assert unreachable_clock(outcome_of(answered=True), T0) is None


def test_an_answer_then_no_provider_restarts_the_clock_at_the_failure() -> None:
    answered_then_lost = outcome_of(answered=True, unreachable_at=after(7200))

    assert unreachable_clock(answered_then_lost, T0) == after(7200)


def test_a_429_never_counts_toward_the_bound() -> None:
    # A 429 or 529 comes from an API that is up: it starts no clock and stops a running one
    rate_limited = outcome_of(answered=True)

    assert unreachable_clock(rate_limited, None) is None
    assert unreachable_clock(rate_limited, T0) is None


def test_a_run_with_no_news_of_the_provider_leaves_the_clock_as_it_is() -> None:
    no_news = outcome_of()  # the shared limiter said wait, or a 5xx

    assert unreachable_clock(no_news, None) is None
    assert unreachable_clock(no_news, T0) == T0


@pytest.mark.parametrize(("elapsed_s", "wait_s"), [(0, 10.0), (600, 10.0), (1795, 5.0), (1799.5, 0.5)])
def test_under_the_bound_the_job_waits_what_the_provider_asked_cut_at_the_bound(
    elapsed_s: float, wait_s: float
) -> None:
    assert unreachable_wait_s(T0, after(elapsed_s), timeout_s=BOUND_S, retry_after_s=10) == wait_s


@pytest.mark.parametrize("elapsed_s", [1800, 1800.001, 86_400])
def test_at_the_bound_and_past_it_there_is_no_more_waiting(elapsed_s: float) -> None:
    assert unreachable_wait_s(T0, after(elapsed_s), timeout_s=BOUND_S, retry_after_s=10) is None


def test_the_document_fails_saying_where_since_when_and_what_to_do() -> None:
    reason = unreachable_reason(refused(), T0, 42)

    assert reason == (
        "The LLM provider at https://proxy:***@llm.internal:8443 could not be reached since "
        "2026-12-08 09:30:00 UTC; check the network and the provider's base URL (ANTHROPIC_BASE_URL), "
        "then run `docmill documents retry 42`."
    )
