"""An HTTP emulator of the Anthropic Messages API for integration tests and benchmarks.

The real ``anthropic`` SDK talks to it over HTTP::

    with AnthropicEmulator(EmulatorConfig(api_key=key, latency_s=0.05)) as emulator:
        client = anthropic.Anthropic(base_url=emulator.url, api_key=key)
        client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=[...])
        emulator.inject(FaultKind.RATE_LIMIT)        # the next call gets a 429
        emulator.configure(latency_s=0.5)            # knobs change at runtime
        emulator.stats["by_status"]                  # counters

or as a process (``POST /_emulator/config`` changes knobs, ``GET /_emulator/stats`` reads
counters; see ``_emulator_admin``)::

    python -m docmill.testing.anthropic_emulator --port 8089 --latency 2 --rpm 600 --itpm 400000

Message Batches (``client.messages.batches``) are answered ``batch_processing_s`` after
their creation (``--batch-seconds``) and expire after ``batch_expiry_s``; see
``_emulator_batches``.

Answers are deterministic functions of the last user message and token counts are an
offline estimate of about four characters a token (``_emulator_replies``); rate limits
are per-model token buckets (``_emulator_limits``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from docmill.testing._emulator_limits import RateLimits
from docmill.testing._emulator_server import AnthropicEmulator
from docmill.testing._emulator_state import EmulatorConfig, EmulatorStats, FaultKind

__all__ = [
    "AnthropicEmulator",
    "EmulatorConfig",
    "EmulatorStats",
    "FaultKind",
    "RateLimits",
    "emulator_from_args",
    "main",
]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m docmill.testing.anthropic_emulator",
        description="Serve an emulator of the Anthropic Messages API.",
    )
    defaults = RateLimits()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any non-empty key)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--latency-per-token", type=float, default=0.0, help="extra seconds per output token")
    parser.add_argument(
        "--rpm", type=int, default=defaults.requests_per_minute, help="requests/min per model"
    )
    parser.add_argument("--itpm", type=int, default=defaults.input_tokens_per_minute, help="input tokens/min")
    parser.add_argument(
        "--otpm", type=int, default=defaults.output_tokens_per_minute, help="output tokens/min"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=PROBABILITY",
        help="random fault, e.g. 529=0.05 or stream_error=0.01 (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fault draws")
    parser.add_argument(
        "--batch-seconds", type=float, default=0.0, help="seconds before a Message Batch is answered"
    )
    return parser.parse_args(argv)


def emulator_from_args(argv: Sequence[str] | None = None) -> AnthropicEmulator:
    """The (unstarted) emulator the command line describes."""
    args = _parse_args(argv)
    faults: dict[FaultKind, float] = {}
    for spec in args.fault:
        kind, _, probability = spec.partition("=")
        faults[FaultKind.parse(kind)] = float(probability)
    config = EmulatorConfig(
        api_key=args.api_key,
        latency_s=args.latency,
        latency_per_output_token_s=args.latency_per_token,
        limits=RateLimits(args.rpm, args.itpm, args.otpm),
        fault_probabilities=faults,
        seed=args.seed,
        batch_processing_s=args.batch_seconds,
    )
    return AnthropicEmulator(config, host=args.host, port=args.port)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator in the foreground until interrupted."""
    emulator = emulator_from_args(argv)
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    print(f"anthropic-emulator.listening url={emulator.url}", flush=True)
    uvicorn.run(emulator.app, host=host, port=int(port), log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
