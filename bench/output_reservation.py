"""Output tokens reserved per call: the estimate's error, and what it does to throughput.

    uv run python bench/output_reservation.py                      # both parts
    uv run python bench/output_reservation.py --part estimate      # the estimate's error only
    uv run python bench/output_reservation.py --part throughput --seconds 150

``estimate``: documents of every profile (summary; extract with a schema; custom with a
prompt) run through ``run_plan`` with the Claude provider (real ``anthropic`` SDK) against
the Messages API emulator, under a ``SharedRateLimiter`` with limits that never bind. For
every call it records the output tokens reserved and the output the answer used, and prints
per purpose (profile and step) the error of the reservation: as shipped before (``max_tokens``,
never given back) and now (the learned estimate, settled to the usage).

``throughput``: the same pipeline calls at limits of ``--rpm`` requests, ``--itpm`` input and
``--otpm`` output tokens a minute (5:1 input to output, as the API's tiers have them) and
``--latency`` s per call, with ``--docs-in-flight`` documents processed at once, each map
chunk about ``--chunk-tokens`` input tokens, for ``--seconds`` per mode. A document whose
call the limiter holds back waits what it was told and resumes, as a released job does.
Printed per mode: model calls and documents per minute, the share of each limit used, over
the window after the first minute (whose full buckets allow a burst), and the 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.documents.calls import Calls
from docmill.documents.mapreduce import SavedCall, run_plan
from docmill.documents.plan import CallRef
from docmill.llm import LLMResponse, PriceTable, RateLimits, SharedRateLimiter, Usage
from docmill.llm.output_estimate import OutputEstimator
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.rate_store import MemoryRateStore
from docmill.llm.ratelimit import Admission
from docmill.testing import AnthropicEmulator, EmulatorConfig
from docmill.testing import RateLimits as EmulatorLimits

MODEL = "claude-haiku-4-5"
SCHEMA = {
    "type": "object",
    "properties": {
        "vessel": {"type": "string"},
        "containers": {"type": "integer"},
        "ports": {"type": "array", "items": {"type": "string"}},
    },
}
OPTIONS: dict[str, dict[str, Any]] = {
    "summary": {"profile": "summary"},
    "extract": {"profile": "extract", "schema": SCHEMA},
    "custom": {"profile": "custom", "prompt": "List every delay and its cause."},
}
WORDS = ("harbour", "crane", "berth", "pallet", "customs", "manifest", "vessel", "depot", "tariff", "quay")


def chunks(number: int, count: int, tokens: int) -> list[dict[str, Any]]:
    """``count`` chunks of about ``tokens`` tokens each (four characters a token), unique per number."""
    made = []
    for index in range(count):
        sentences, words = [], 0
        while words * 1.6 < tokens:  # about 1.6 tokens a word in these sentences
            a, b = WORDS[(number + index + words) % 10], WORDS[(number * 3 + words) % 10]
            sentences.append(
                f"Day {words} of report {number}: the {a} crew moved {words * 7} units past the {b}."
            )
            words += 12
        made.append({"index": index, "text": " ".join(sentences), "heading_path": [f"Part {index + 1}"]})
    return made


class DictLedger:
    def __init__(self) -> None:
        self.calls: dict[CallRef, SavedCall] = {}

    async def saved(self) -> dict[CallRef, SavedCall]:
        return dict(self.calls)

    async def save(self, ref: CallRef, response: LLMResponse) -> bool:
        self.calls[ref] = SavedCall.of(response)
        return True


class RecordingLimiter(SharedRateLimiter):
    """Keeps (purpose, output reserved, output used, max_tokens) of every settled call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[tuple[str, float, int]] = []

    async def settle(self, admission: Admission, usage: Usage) -> None:
        self.records.append((admission.purpose, admission.output_tokens, usage.output_tokens))
        await super().settle(admission, usage)


class AsShippedBefore(SharedRateLimiter):
    """The limiter before the settle: ``max_tokens`` of output reserved and never given back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, estimator=_MaxTokens(), **kwargs)

    async def settle(self, admission: Admission, usage: Usage) -> None:
        return None


class _MaxTokens(OutputEstimator):
    def estimate(self, group: Any, max_tokens: int) -> int:
        return max_tokens


def max_tokens_of(purpose: str) -> int:
    calls = Calls.for_document(
        name="x", options=OPTIONS[purpose.split(":")[0]], analysis=None, default_model=MODEL
    )
    return calls.max_tokens(final=purpose.endswith(":final"))


# ---------------------------------------------------------------------- the estimate's error
async def estimate_part(args: argparse.Namespace) -> dict[str, Any]:
    key = f"sk-ant-bench-{secrets.token_hex(8)}"
    unlimited = RateLimits(1e9, 1e12, 1e12)
    with AnthropicEmulator(EmulatorConfig(api_key=key)) as emulator:
        limiter = RecordingLimiter(MemoryRateStore(), {MODEL: unlimited}, default=unlimited)
        provider = AnthropicProvider(
            api_key=key, prices=PriceTable.default(), base_url=emulator.url, limiter=limiter
        )
        try:
            for number in range(args.docs):
                for profile, options in OPTIONS.items():
                    calls = Calls.for_document(
                        name=f"report-{number}.md", options=options, analysis=None, default_model=MODEL
                    )
                    count = 1 + number % 4  # one to four chunks: maps, reduces, single-call documents
                    outcome = await run_plan(
                        calls, chunks(number, count, args.chunk_tokens // 4), provider, DictLedger()
                    )
                    assert outcome.kind == "done", (profile, outcome.kind, outcome.reason)
        finally:
            await provider.aclose()
    by_purpose: dict[str, list[tuple[float, int]]] = {}
    for purpose, reserved, used in limiter.records:
        by_purpose.setdefault(purpose, []).append((reserved, used))
    report: dict[str, Any] = {}
    for purpose, rows in sorted(by_purpose.items()):
        used = [u for _, u in rows]
        reserved = [r for r, _ in rows]
        limit = max_tokens_of(purpose)
        report[purpose] = {
            "calls": len(rows),
            "used_p50": statistics.median(used),
            "used_max": max(used),
            "max_tokens": limit,
            "before_mean_error": statistics.fmean(limit - u for u in used),
            "before_ratio": limit * len(used) / sum(used),
            "now_mean_abs_error": statistics.fmean(abs(r - u) for r, u in rows),
            "now_mean_error_after_5": statistics.fmean(r - u for r, u in rows[5:]) if len(rows) > 5 else None,
            "now_under": sum(1 for r, u in rows if r < u) / len(rows),
            "now_ratio": sum(reserved) / sum(used),
        }
    return report


def print_estimate(report: Mapping[str, Any]) -> None:
    print("\n== output reserved per call (tokens), by purpose")
    print(
        f"  {'purpose':16} {'calls':>5} {'used p50':>8} {'max':>5} {'max_tokens':>10} "
        f"{'before: over':>12} {'x used':>7} {'now: |err|':>10} {'err>5':>6} {'under':>6} {'x used':>7}"
    )
    for purpose, r in report.items():
        after5 = "" if r["now_mean_error_after_5"] is None else f"{r['now_mean_error_after_5']:+.0f}"
        print(
            f"  {purpose:16} {r['calls']:5d} {r['used_p50']:8.0f} {r['used_max']:5d} {r['max_tokens']:10d} "
            f"{r['before_mean_error']:12.0f} {r['before_ratio']:7.1f} {r['now_mean_abs_error']:10.1f} "
            f"{after5:>6} {r['now_under']:6.0%} {r['now_ratio']:7.2f}"
        )


# ---------------------------------------------------------------------- throughput at 5:1 limits
@dataclass
class Run:
    mode: str
    documents: int = 0
    released: int = 0
    samples: list[tuple[float, dict[str, Any], int]] = field(default_factory=list)


async def document_loop(
    provider: AnthropicProvider, run: Run, number: list[int], stop_at: float, args: argparse.Namespace
) -> None:
    while time.monotonic() < stop_at:
        number[0] += 1
        calls = Calls.for_document(
            name=f"report-{number[0]}.md", options=OPTIONS["summary"], analysis=None, default_model=MODEL
        )
        ledger = DictLedger()
        document_chunks = chunks(number[0], 2, args.chunk_tokens)
        while time.monotonic() < stop_at:
            outcome = await run_plan(calls, document_chunks, provider, ledger)
            if outcome.kind == "done":
                run.documents += 1
                break
            assert outcome.kind == "retry", (outcome.kind, outcome.reason, outcome.error)
            run.released += 1
            await asyncio.sleep(outcome.retry_after_s)


async def throughput_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    key = f"sk-ant-bench-{secrets.token_hex(8)}"
    limits = RateLimits(args.rpm, args.itpm, args.otpm)
    config = EmulatorConfig(
        api_key=key, latency_s=args.latency, limits=EmulatorLimits(args.rpm, args.itpm, args.otpm)
    )
    kind = AsShippedBefore if mode == "before" else SharedRateLimiter
    run = Run(mode)
    with AnthropicEmulator(config) as emulator:
        limiter = kind(MemoryRateStore(), {MODEL: limits}, default=limits)
        provider = AnthropicProvider(
            api_key=key, prices=PriceTable.default(), base_url=emulator.url, limiter=limiter
        )
        started = time.monotonic()
        stop_at = started + args.seconds
        number = [0]
        loops = [
            asyncio.create_task(document_loop(provider, run, number, stop_at, args))
            for _ in range(args.docs_in_flight)
        ]
        try:
            while time.monotonic() < stop_at:
                run.samples.append((time.monotonic() - started, emulator.stats, run.documents))
                await asyncio.sleep(1.0)
            run.samples.append((time.monotonic() - started, emulator.stats, run.documents))
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await provider.aclose()
    (t0, a, d0) = next(s for s in run.samples if s[0] >= args.warmup)
    (t1, b, d1) = run.samples[-1]
    minutes = (t1 - t0) / 60

    def admitted(stats: Mapping[str, Any]) -> int:
        return int(stats["by_status"].get("200", 0))

    return {
        "mode": mode,
        "window_s": t1 - t0,
        "calls_per_min": (admitted(b) - admitted(a)) / minutes,
        "docs_per_min": (d1 - d0) / minutes,
        "requests_share": (admitted(b) - admitted(a)) / minutes / args.rpm,
        "input_share": (b["input_tokens"] - a["input_tokens"]) / minutes / args.itpm,
        "output_share": (b["output_tokens"] - a["output_tokens"]) / minutes / args.otpm,
        "rate_limited": b["rate_limited"],
        "released": run.released,
    }


def print_throughput(reports: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n== throughput: {args.rpm} requests, {args.itpm:,} input and {args.otpm:,} output tokens "
        f"a minute, {args.latency:g} s a call, {args.docs_in_flight} documents in flight, two map "
        f"chunks of about {args.chunk_tokens:,} tokens and a reduce each; measured from "
        f"{args.warmup:g} s to {args.seconds:g} s"
    )
    names = {"before": "max_tokens, never given back", "now": "estimate, settled to usage"}
    for r in reports:
        print(
            f"  {names[r['mode']]:30} {r['calls_per_min']:5.1f} calls/min, "
            f"{r['docs_per_min']:4.1f} documents/min; requests {r['requests_share']:.0%}, "
            f"input {r['input_share']:.0%}, output {r['output_share']:.0%} of the limits; "
            f"{r['rate_limited']} 429s, {r['released']} waits of a document for the limiter"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("estimate", "throughput", "both"), default="both")
    parser.add_argument("--docs", type=int, default=40, help="estimate: documents per profile (default 40)")
    parser.add_argument("--chunk-tokens", type=int, default=6_000, help="input tokens of a map chunk")
    parser.add_argument("--rpm", type=int, default=120)
    parser.add_argument("--itpm", type=int, default=400_000)
    parser.add_argument("--otpm", type=int, default=80_000)
    parser.add_argument("--latency", type=float, default=1.5)
    parser.add_argument("--docs-in-flight", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=150.0, help="throughput: seconds per mode")
    parser.add_argument("--warmup", type=float, default=60.0, help="throughput: seconds not measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    output: dict[str, Any] = {}
    if args.part in ("estimate", "both"):
        output["estimate"] = asyncio.run(estimate_part(args))
        print_estimate(output["estimate"])
    if args.part in ("throughput", "both"):
        output["throughput"] = [asyncio.run(throughput_mode(mode, args)) for mode in ("before", "now")]
        print_throughput(output["throughput"], args)
    if args.json:
        print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
