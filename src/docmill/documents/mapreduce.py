"""Running a document's call plan: maps over chunks, then reduces, each answer saved as it arrives.

``run_plan`` is the orchestration without the database: it asks a ``Ledger`` which
calls were already paid for, skips them, and hands every new answer to the ledger
before using it. A job that dies midway therefore resumes at the first unsaved call
and never pays twice for a finished one (only the calls in flight at the moment of
the crash are lost).

Calls of one level (all maps; then each level of reduces) run ``concurrency`` at a
time. The first error stops new calls from starting; calls in flight finish and are
saved (they are paid for), then the run ends with an ``Outcome``:

    done         every call saved; ``final`` is the answer of the last call
    retry        the provider asked to come back (rate limit, overload, outage), or
                 could not be reached (``unreachable``)
    failed       a permanent provider error (bad key, retired model...): ``reason``
    stopped      the ledger said the document is no longer processing (cancelled)
    out_of_time  the run passed its deadline; continue in a fresh attempt
    error        anything else (a bug, the database): ``error`` is raised by the caller

Whatever the kind, ``answered`` says whether the provider answered any call of the run
(an answer, a 429, a 529), and ``unreachable`` / ``unreachable_since`` hold the first
error that found no provider to connect to after its last answer, and when (``now``):
the processing keeps the clock of an unreachable provider by them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from docmill.documents.calls import Calls
from docmill.documents.plan import MAP, REDUCE, CallPlan, CallRef, plan_calls
from docmill.llm.errors import (
    MalformedOutput,
    Overloaded,
    PermanentLLMError,
    ProviderUnreachable,
    RateLimited,
    RetryableLLMError,
)
from docmill.llm.types import LLMRequest, LLMResponse, Provider


@dataclass(frozen=True)
class SavedCall:
    """A paid call as the ledger keeps it."""

    text: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def of(cls, response: LLMResponse) -> SavedCall:
        usage = response.usage
        return cls(
            text=response.text,
            provider=response.provider,
            model=response.model,
            input_tokens=usage.input_tokens
            + usage.cache_read_input_tokens
            + usage.cache_creation_input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=response.cost_usd,
        )


class Ledger(Protocol):
    """Where answers are kept (the database in production, a dict in tests)."""

    async def saved(self) -> dict[CallRef, SavedCall]:
        """Every call already paid for."""
        ...

    async def save(self, ref: CallRef, response: LLMResponse) -> bool:
        """Keep one answer; return False when the document stopped being processed."""
        ...


# When calls of one level end differently, the outcome is the weightiest: a document no
# longer processing (cancelled) needs nothing more; a permanent error decides the
# document whatever else happened; a bug beats waiting.
_PRECEDENCE = {"done": 0, "out_of_time": 1, "retry": 2, "error": 3, "failed": 4, "stopped": 5}


@dataclass
class Outcome:
    kind: str  # done | retry | failed | stopped | out_of_time | error
    plan: CallPlan
    calls: dict[CallRef, SavedCall] = field(default_factory=dict)
    retry_after_s: float = 0.0
    reason: str = ""
    error: BaseException | None = None
    answered: bool = False
    """The provider answered a call of this run: with an answer, a rate limit or an overload."""
    unreachable: ProviderUnreachable | None = None
    """The first error that found no provider to connect to after the run's last answer."""
    unreachable_since: datetime | None = None
    """When ``unreachable`` was raised; set and cleared with it."""

    def heard_from_provider(self) -> None:
        self.answered = True
        self.unreachable = self.unreachable_since = None

    def found_no_provider(self, error: ProviderUnreachable, at: datetime) -> None:
        if self.unreachable is None:
            self.unreachable, self.unreachable_since = error, at

    @property
    def final(self) -> SavedCall:
        return self.calls[self.plan.final]


async def run_plan(
    calls: Calls,
    chunks: Sequence[dict[str, Any]],
    provider: Provider,
    ledger: Ledger,
    *,
    concurrency: int = 4,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Run (or resume) every call of the document; see the module docstring.

    ``clock`` is checked against ``deadline``; ``now`` (UTC) dates ``unreachable_since``.
    """
    plan = plan_calls(len(chunks))
    done = await ledger.saved()
    outcome = Outcome("done", plan, dict(done))
    total = len(chunks)
    levels: list[list[tuple[CallRef, Callable[[], LLMRequest]]]] = [
        [((MAP, i), _bind_map(calls, chunks[i], total)) for i in range(total)]
    ]
    for level in sorted({step.level for step in plan.reduces}):
        levels.append(
            [
                ((REDUCE, step.index), _bind_reduce(calls, outcome.calls, step.inputs, step.final))
                for step in plan.reduces
                if step.level == level
            ]
        )
    for level_calls in levels:
        todo = [(ref, build) for ref, build in level_calls if ref not in outcome.calls]
        await _run_level(todo, provider, ledger, outcome, concurrency, deadline, clock, now)
        if outcome.kind != "done":
            return outcome
    return outcome


def _bind_map(calls: Calls, chunk: dict[str, Any], total: int) -> Callable[[], LLMRequest]:
    return lambda: calls.map(chunk, total)


def _bind_reduce(
    calls: Calls, answers: dict[CallRef, SavedCall], inputs: tuple[CallRef, ...], final: bool
) -> Callable[[], LLMRequest]:
    # Built only when the level runs, so the answers of the level below are all there.
    return lambda: calls.reduce([answers[ref].text for ref in inputs], final=final)


async def _run_level(
    todo: list[tuple[CallRef, Callable[[], LLMRequest]]],
    provider: Provider,
    ledger: Ledger,
    outcome: Outcome,
    concurrency: int,
    deadline: float | None,
    clock: Callable[[], float],
    now: Callable[[], datetime],
) -> None:
    gate = asyncio.Semaphore(max(1, concurrency))
    stop = asyncio.Event()

    def end(kind: str, **details: Any) -> None:
        stop.set()
        if kind == "retry" and outcome.kind == "retry":  # several calls told to wait: take the longest
            outcome.retry_after_s = max(outcome.retry_after_s, details["retry_after_s"])
        elif _PRECEDENCE[kind] > _PRECEDENCE[outcome.kind]:
            outcome.kind = kind
            for name, value in details.items():
                setattr(outcome, name, value)

    async def one(ref: CallRef, build: Callable[[], LLMRequest]) -> None:
        async with gate:
            if stop.is_set():
                return
            if deadline is not None and clock() >= deadline:
                end("out_of_time")
                return
            try:
                try:
                    response = await provider.complete(build())
                except MalformedOutput as exc:  # paid for: keep it; the profile reads what it can
                    response = exc.response
                outcome.heard_from_provider()
                if not await ledger.save(ref, response):
                    end("stopped")
                    return
                outcome.calls[ref] = SavedCall.of(response)
            except RetryableLLMError as exc:
                if isinstance(exc, ProviderUnreachable):
                    outcome.found_no_provider(exc, now())
                elif _from_the_api(exc):
                    outcome.heard_from_provider()
                end("retry", retry_after_s=exc.retry_after_s)
            except PermanentLLMError as exc:
                end("failed", reason=exc.reason)
            except Exception as exc:
                end("error", error=exc)

    await asyncio.gather(*(one(ref, build) for ref, build in todo))


def _from_the_api(exc: RetryableLLMError) -> bool:
    """A 429 or 529 comes from an API that is up; a 5xx may come from a proxy in front of
    one that is down, and the shared limiter's wait made no call at all."""
    if isinstance(exc, RateLimited):
        return not exc.from_limiter
    return isinstance(exc, Overloaded)
