"""What processing a document will take: calls, tokens, dollars and time.

- **Tokens.** The input of each map call is counted on the very request processing
  will send: by the provider's ``count_tokens`` (the API's count when a key is
  configured), else by the offline estimate. A reduce's input is its instructions plus
  the expected answers it combines; each answer is expected to be as long as the
  profile says (``Profile.map_output_tokens`` / ``final_output_tokens``).
- **Calls.** One map per chunk, plus the reduces of ``plan.plan_calls``.
- **Cost.** Every call priced by the price table; beside the standard price, the price
  with the system prompt cached (written once, read by every later call) and the
  Batch API price. An offline processor costs nothing; a model without a known price
  is counted at 0 and flagged (``price_known``), so a local server is not blocked.
- **Time.** Waiting: the processing queue's depth over its recent throughput (jobs per
  minute from the backend's metrics; with no history, each job ahead is assumed to
  take as long as this one). Running: the slower of generation (calls and output
  tokens over the concurrency) and the rate limits (requests, input and output tokens
  per minute).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from docmill.documents.calls import Calls
from docmill.documents.plan import CallPlan, plan_calls
from docmill.llm.errors import RetryableLLMError
from docmill.llm.pricing import PriceTable
from docmill.llm.ratelimit import RateLimits
from docmill.llm.tokens import estimate_request_tokens
from docmill.llm.types import LLMRequest, Provider, Usage
from docmill.queue import Backend

OUTPUT_TOKENS_PER_S = 50.0  # generation speed of a current model, roughly
CALL_OVERHEAD_S = 1.0  # time to first token, network
OFFLINE_CALL_S = 0.05
THROUGHPUT_WINDOW_MIN = 15


@dataclass(frozen=True)
class TokenPlan:
    """Input and output tokens of every call of a plan, maps first, then reduces."""

    map_input: tuple[int, ...]
    map_output: tuple[int, ...]
    reduce_input: tuple[int, ...]
    reduce_output: tuple[int, ...]

    @property
    def calls(self) -> int:
        return len(self.map_input) + len(self.reduce_input)

    @property
    def input_tokens(self) -> int:
        return sum(self.map_input) + sum(self.reduce_input)

    @property
    def output_tokens(self) -> int:
        return sum(self.map_output) + sum(self.reduce_output)

    def usages(self, cached_prefix_tokens: int = 0) -> list[Usage]:
        """One ``Usage`` per call; with a cached prefix the first call writes it, the rest read it."""
        pairs = list(zip(self.map_input, self.map_output, strict=True))
        pairs += list(zip(self.reduce_input, self.reduce_output, strict=True))
        usages = []
        for number, (tokens_in, tokens_out) in enumerate(pairs):
            prefix = min(cached_prefix_tokens, tokens_in)
            usages.append(
                Usage(
                    input_tokens=tokens_in - prefix,
                    output_tokens=tokens_out,
                    cache_creation_input_tokens=prefix if number == 0 else 0,
                    cache_read_input_tokens=prefix if number > 0 else 0,
                )
            )
        return usages


def plan_tokens(
    plan: CallPlan, map_input: Sequence[int], *, reduce_overhead: int, map_output: int, final_output: int
) -> TokenPlan:
    """Tokens of every call: ``map_input`` as counted, the rest from the expected answer sizes."""
    if len(map_input) != plan.maps:
        raise ValueError("one input count per map call is needed")
    map_out = [final_output if plan.maps == 1 else map_output] * plan.maps
    outputs: dict[tuple[str, int], int] = {("map", i): n for i, n in enumerate(map_out)}
    reduce_in: list[int] = []
    reduce_out: list[int] = []
    for step in plan.reduces:
        reduce_in.append(reduce_overhead + sum(outputs[ref] for ref in step.inputs))
        reduce_out.append(final_output)
        outputs[("reduce", step.index)] = final_output
    return TokenPlan(tuple(map_input), tuple(map_out), tuple(reduce_in), tuple(reduce_out))


def cost_usd(
    prices: PriceTable, model: str, tokens: TokenPlan, *, cached_prefix_tokens: int = 0, batch: bool = False
) -> float:
    """USD for every call of ``tokens``; raises ``KeyError`` when the model has no price."""
    return sum(prices.cost_usd(model, usage, batch=batch) for usage in tokens.usages(cached_prefix_tokens))


@dataclass(frozen=True)
class QueueLoad:
    """The processing queue as the backend sees it."""

    depth: int  # jobs not finished: pending, delayed, reserved
    completed: int  # in the last ``minutes``
    minutes: int

    @property
    def throughput_per_min(self) -> float:
        return self.completed / self.minutes if self.minutes else 0.0


async def queue_load(backend: Backend, queue: str, *, window_min: int = THROUGHPUT_WINDOW_MIN) -> QueueLoad:
    stats = await backend.stats(queue)
    metrics = await backend.metrics(queue, minutes=window_min)
    return QueueLoad(stats.size, sum(m.completed for m in metrics), window_min)


def eta(
    tokens: TokenPlan, *, load: QueueLoad, limits: RateLimits | None, concurrency: int, offline: bool
) -> tuple[float, float]:
    """``(wait_s, processing_s)``: time in the queue ahead, then time to run (see the docstring)."""
    if offline:
        processing_s = tokens.calls * OFFLINE_CALL_S
    else:
        lanes = max(1, min(concurrency, len(tokens.map_input)))
        map_s = (
            len(tokens.map_input) * CALL_OVERHEAD_S + sum(tokens.map_output) / OUTPUT_TOKENS_PER_S
        ) / lanes
        reduce_s = (
            len(tokens.reduce_input) * CALL_OVERHEAD_S + sum(tokens.reduce_output) / OUTPUT_TOKENS_PER_S
        )
        processing_s = map_s + reduce_s
        if limits is not None:
            minutes = max(
                tokens.calls / limits.requests_per_min if limits.requests_per_min else 0.0,
                tokens.input_tokens / limits.input_tokens_per_min if limits.input_tokens_per_min else 0.0,
                tokens.output_tokens / limits.output_tokens_per_min if limits.output_tokens_per_min else 0.0,
            )
            processing_s = max(processing_s, minutes * 60.0)
    if load.depth == 0:
        wait_s = 0.0
    elif load.throughput_per_min > 0:
        wait_s = load.depth / load.throughput_per_min * 60.0
    else:
        wait_s = load.depth * processing_s
    return wait_s, processing_s


async def count_inputs(
    provider: Provider, requests: Sequence[LLMRequest], *, concurrency: int
) -> tuple[list[int], str]:
    """Input tokens of each request and where the numbers come from (``provider``/``offline``).

    An offline provider, or one that cannot answer now (rate limited, unavailable),
    gives the offline estimate: an estimate must not stall the pipeline. A permanent
    error (bad key, retired model) propagates: processing would fail the same way.
    """
    offline = [estimate_request_tokens(r.system, r.prompt) for r in requests]
    if provider.is_offline:
        return offline, "offline"
    gate = asyncio.Semaphore(max(1, concurrency))

    async def count(request: LLMRequest) -> int:
        async with gate:
            return await provider.count_tokens(request)

    try:
        counted = await asyncio.gather(*(count(r) for r in requests))
    except RetryableLLMError:
        return offline, "offline"
    return list(counted), "provider"


async def estimate_document(
    calls: Calls,
    chunks: Sequence[dict[str, Any]],
    *,
    provider: Provider,
    prices: PriceTable,
    limits: RateLimits | None,
    load: QueueLoad,
    concurrency: int,
) -> dict[str, Any]:
    """The estimate stored with the document (JSON-ready); see the module docstring."""
    plan = plan_calls(len(chunks))
    requests = [calls.map(chunk, len(chunks)) for chunk in chunks]
    map_input, source = await count_inputs(provider, requests, concurrency=concurrency)
    empty_reduce = calls.reduce([], final=True)
    tokens = plan_tokens(
        plan,
        map_input,
        reduce_overhead=estimate_request_tokens(empty_reduce.system, empty_reduce.prompt),
        map_output=calls.profile.map_output_tokens,
        final_output=calls.profile.final_output_tokens,
    )
    model = "extractive" if provider.is_offline else calls.model
    system_tokens = estimate_request_tokens(calls.system, "")
    try:
        price = prices.price_for(model)
        costs = {
            "cost_usd": cost_usd(prices, model, tokens),
            "cost_usd_cached": cost_usd(prices, model, tokens, cached_prefix_tokens=system_tokens),
            "cost_usd_batch": cost_usd(prices, model, tokens, batch=True),
        }
        price_known, provisional = True, price.provisional
    except KeyError:
        costs = {"cost_usd": 0.0, "cost_usd_cached": 0.0, "cost_usd_batch": 0.0}
        price_known, provisional = False, False
    wait_s, processing_s = eta(
        tokens, load=load, limits=limits, concurrency=concurrency, offline=provider.is_offline
    )
    return {
        "provider": provider.name,
        "offline": provider.is_offline,
        "model": model,
        "profile": calls.profile.name,
        "chunks": len(chunks),
        "calls": {"map": plan.maps, "reduce": len(plan.reduces), "total": plan.total},
        "input_tokens": tokens.input_tokens,
        "output_tokens": tokens.output_tokens,
        "token_source": source,
        **{key: round(value, 6) for key, value in costs.items()},
        "price_known": price_known,
        "price_provisional": provisional,
        "wait_s": round(wait_s, 1),
        "processing_s": round(processing_s, 1),
        "eta_s": math.ceil(wait_s + processing_s),
        "queue": {"depth": load.depth, "throughput_per_min": round(load.throughput_per_min, 2)},
        "rate_limits": (
            {
                "requests_per_min": limits.requests_per_min,
                "input_tokens_per_min": limits.input_tokens_per_min,
                "output_tokens_per_min": limits.output_tokens_per_min,
            }
            if limits is not None
            else None
        ),
    }
