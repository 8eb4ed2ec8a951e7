"""Running a document's calls: resume after a crash without paying twice, and every outcome."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from docmill.documents.calls import Calls
from docmill.documents.mapreduce import SavedCall, run_plan
from docmill.documents.plan import MAP, REDUCE, CallRef
from docmill.documents.processing import OFFLINE_PROCESSOR, build_result
from docmill.llm.errors import MalformedOutput, ModelUnavailable, Overloaded, RateLimited
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
    from docmill.documents.plan import plan_calls

    provider = FakeProvider()
    outcome = await run_plan(calls(), chunks(n), provider, MemoryLedger(), concurrency=8)
    assert outcome.kind == "done" and provider.calls == plan_calls(n).total
