"""What processing a document will take: calls, tokens, dollars and time.

- **Tokens.** The input of each map call is counted on the very request processing
  will send: by the provider's ``count_tokens`` (the API's count when a key is
  configured), else by the offline estimate. The API's counts are kept with the
  estimate (``map_input_tokens``), so processing hands them to the rate limiter instead
  of counting again. A reduce's input is its instructions plus
  the expected answers it combines; each answer is expected to be as long as the
  profile says for what it asks (``Profile.expected_output_tokens``, the numbers and
  their reasons in ``profiles``), never more than the call's ``max_tokens``.
- **Calls.** One map per chunk, plus the reduces of ``plan.plan_calls``.
- **Cost.** Every call priced by the price table, for the model the calls go to:
  ``extractive`` offline (free), the document's model on Anthropic (list prices, or a
  newer model of a known line priced like its line, marked provisional), and on an
  OpenAI-compatible server its model's *configured* price only (``[llm.prices]`` /
  ``DOCMILL_LLM_PRICES``; 0 there makes a local server free). A model without a price
  has no cost (``cost_usd`` is None, ``price_known`` false) and ``price_note`` says why
  and what to do; such a document always waits for approval (``pipeline.approval``).
- **Prompt caching.** Shown only where it would happen: with a provider that marks the
  shared prefix for caching (one whose ``caches_prompts`` attribute is true: the
  Anthropic provider, with ``cache_control``), for a document of several maps whose shared
  prefix (the system prompt and the instructions before the chunk text: a long custom
  prompt or extraction schema) reaches the model's minimum cacheable length
  (``llm.models.min_cacheable_tokens``). The maps of the first wave (as many as run at
  once) each write the prefix, the later ones read it; reduces share no prefix with
  the maps and are priced in full. Elsewhere ``cost_usd_cached`` is None and
  ``prompt_cache`` says why: the prefix against the minimum, and whether the provider
  caches. ``cost_usd`` never assumes a cache.
- **Batches.** ``batch=True`` prices every call at the Batch API's discount, for
  documents sent that way; otherwise no batch price is shown.
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
from docmill.llm.models import min_cacheable_tokens, resolve_model
from docmill.llm.pricing import ModelPrice, PriceTable
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

    def usages(self, cached_prefix_tokens: int = 0, *, writes: int = 1) -> list[Usage]:
        """One ``Usage`` per call, maps first. With a cached prefix the first ``writes`` maps
        (those that run before any answer has stored it) write it and the later maps read
        it; reduces do not share it."""
        usages = []
        for number, (tokens_in, tokens_out) in enumerate(zip(self.map_input, self.map_output, strict=True)):
            prefix = min(cached_prefix_tokens, tokens_in)
            usages.append(
                Usage(
                    input_tokens=tokens_in - prefix,
                    output_tokens=tokens_out,
                    cache_creation_input_tokens=prefix if number < writes else 0,
                    cache_read_input_tokens=prefix if number >= writes else 0,
                )
            )
        usages += [
            Usage(input_tokens=tokens_in, output_tokens=tokens_out)
            for tokens_in, tokens_out in zip(self.reduce_input, self.reduce_output, strict=True)
        ]
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
    prices: PriceTable,
    model: str,
    tokens: TokenPlan,
    *,
    cached_prefix_tokens: int = 0,
    cache_writes: int = 1,
    batch: bool = False,
) -> float:
    """USD for every call of ``tokens``; raises ``KeyError`` when the model has no price."""
    usages = tokens.usages(cached_prefix_tokens, writes=cache_writes)
    return sum(prices.cost_usd(model, usage, batch=batch) for usage in usages)


def price_of(prices: PriceTable, model: str, *, provider: Provider) -> tuple[ModelPrice | None, str | None]:
    """The price calls to ``model`` through ``provider`` are billed at, and a sentence
    when it is unknown or borrowed (see the module docstring for which prices count)."""
    if provider.is_offline:
        return prices.price_for("extractive"), None
    how = (
        f'give it one under [llm.prices."{model}"] in docmill.toml or in DOCMILL_LLM_PRICES '
        "(USD per million tokens"
    )
    if provider.name != "anthropic":
        price = prices.configured_price(model)
        if price is not None:
            return price, None
        server = "OpenAI-compatible" if provider.name == "openai" else provider.name
        return None, (
            f"no price is configured for {model!r} on the {server} server, so the cost cannot be "
            f"estimated; approve the document to process it, or {how}; 0 for a free local server)"
        )
    try:
        price = prices.price_for(model)
    except KeyError:
        return None, (
            f"no price is known for {model!r}, so the cost cannot be estimated; approve the document "
            f"to process it, or {how})"
        )
    if price.provisional:
        return price, (
            f"{model!r} has no list price yet and is priced like the newest priced model of its line; "
            f"{how}) when it is known"
        )
    return price, None


@dataclass(frozen=True)
class PromptCache:
    """Whether the maps' shared prefix would be cached (see the module docstring)."""

    prefix_tokens: int
    min_tokens: int
    provider_caches: bool
    writes: int  # maps that write the prefix: those of the first wave
    applies: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix_tokens": self.prefix_tokens,
            "min_tokens": self.min_tokens,
            "provider_caches": self.provider_caches,
            "applies": self.applies,
        }


def shared_prefix(system: str, prompts: Sequence[str]) -> int:
    """Tokens every one of ``prompts`` begins with, system prompt included: the text they
    share, up to its last blank line (where the chunk's own text begins). 0 for fewer
    than two prompts: nothing is shared."""
    if len(prompts) < 2:
        return 0
    first, last = min(prompts), max(prompts)  # every prompt shares what these two share
    size = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last))
    )
    common = first[:size]
    return estimate_request_tokens(system, common[: max(0, common.rfind("\n\n"))])


def prompt_cache(
    calls: Calls, prompts: Sequence[str], *, provider: Provider, model: str, concurrency: int
) -> PromptCache:
    """The prompt cache the maps of ``prompts`` would get from ``provider``."""
    prefix = shared_prefix(calls.system, prompts)
    minimum = min_cacheable_tokens(model)
    caches = bool(getattr(provider, "caches_prompts", False))
    writes = min(max(1, concurrency), len(prompts))
    applies = caches and prefix >= minimum and len(prompts) > writes
    return PromptCache(prefix, minimum, caches, writes, applies)


def expected_outputs(calls: Calls) -> tuple[int, int]:
    """Expected output tokens of a map over one chunk of several and of a final answer."""
    options = calls.options
    return (
        min(calls.profile.expected_output_tokens(options, final=False), calls.max_tokens(final=False)),
        min(calls.profile.expected_output_tokens(options, final=True), calls.max_tokens(final=True)),
    )


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
    model: str | None = None,
    batch: bool = False,
) -> dict[str, Any]:
    """The estimate stored with the document (JSON-ready); see the module docstring.

    ``model`` is the model the calls go to when the provider does not send the
    document's (an OpenAI-compatible server's configured model); ``batch`` prices the
    calls at the Batch API's discount.
    """
    plan = plan_calls(len(chunks))
    requests = [calls.map(chunk, len(chunks)) for chunk in chunks]
    map_input, source = await count_inputs(provider, requests, concurrency=concurrency)
    empty_reduce = calls.reduce([], final=True)
    map_output, final_output = expected_outputs(calls)
    tokens = plan_tokens(
        plan,
        map_input,
        reduce_overhead=estimate_request_tokens(empty_reduce.system, empty_reduce.prompt),
        map_output=map_output,
        final_output=final_output,
    )
    billed = "extractive" if provider.is_offline else resolve_model(model or calls.model)
    price, price_note = price_of(prices, billed, provider=provider)
    cache = prompt_cache(
        calls, [r.prompt for r in requests], provider=provider, model=billed, concurrency=concurrency
    )
    cost: float | None = None
    cached: float | None = None
    if price is not None:
        cost = cost_usd(prices, billed, tokens, batch=batch)
        if cache.applies:
            cached = cost_usd(
                prices,
                billed,
                tokens,
                cached_prefix_tokens=cache.prefix_tokens,
                cache_writes=cache.writes,
                batch=batch,
            )
    wait_s, processing_s = eta(
        tokens, load=load, limits=limits, concurrency=concurrency, offline=provider.is_offline
    )
    return {
        "provider": provider.name,
        "offline": provider.is_offline,
        "model": billed,
        "profile": calls.profile.name,
        "chunks": len(chunks),
        "calls": {"map": plan.maps, "reduce": len(plan.reduces), "total": plan.total},
        "input_tokens": tokens.input_tokens,
        "output_tokens": tokens.output_tokens,
        "output_tokens_per_call": {"map": map_output, "final": final_output},
        "token_source": source,
        "map_input_tokens": map_input if source == "provider" else None,
        "cost_usd": None if cost is None else round(cost, 6),
        "cost_usd_cached": None if cached is None else round(cached, 6),
        "prompt_cache": cache.to_dict(),
        "batch": batch,
        "price_known": price is not None,
        "price_provisional": price is not None and price.provisional,
        "price_note": price_note,
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
