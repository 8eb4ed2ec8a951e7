"""Configuration, fault plan, counters and limiters of one emulator, behind one lock.

The configuration is a frozen ``EmulatorConfig`` replaced whole on every change
(``EmulatorState.configure``), so a request always sees one consistent snapshot
while tests and the ``POST /_emulator/config`` endpoint change knobs at runtime.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from docmill.testing._emulator_batch_store import BatchStore
from docmill.testing._emulator_cache import PromptCache
from docmill.testing._emulator_limits import Denial, ModelLimiter, RateLimits
from docmill.testing._emulator_models import DEFAULT_MODELS, ModelCatalogue, ModelEntry

SDK_API_VERSION = "2026-10-21"  # anthropic._constants.ANTHROPIC_API_VERSION in SDK 2.14
KNOWN_API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", SDK_API_VERSION})


class FaultKind(StrEnum):
    """Faults the emulator can inject into ``POST /v1/messages``."""

    RATE_LIMIT = "rate_limit"  # 429 rate_limit_error with retry-after
    OVERLOADED = "overloaded"  # 529 overloaded_error
    API_ERROR = "api_error"  # 500 api_error
    PERMISSION = "permission_error"  # 403 permission_error
    SPEND_LIMIT = "spend_limit"  # 429 enforced_spend_limit_reached, no retry-after
    SLOW = "slow"  # answers normally after an extra ``slow_s``
    STREAM_ERROR = "stream_error"  # SSE ``error`` event mid-stream (streaming requests only)

    @classmethod
    def parse(cls, name: str) -> FaultKind:
        """A kind from its name or its HTTP status ("429", "529", "500", "403")."""
        by_status = {
            "429": cls.RATE_LIMIT,
            "529": cls.OVERLOADED,
            "500": cls.API_ERROR,
            "403": cls.PERMISSION,
        }
        return by_status.get(str(name)) or cls(str(name))


@dataclass(frozen=True)
class EmulatorConfig:
    """Every knob of the emulator; replace it whole (``dataclasses.replace``) to change it."""

    api_key: str | None = None
    """The only key accepted; ``None`` accepts any non-empty key."""
    latency_s: float = 0.0
    """Fixed delay before each Messages answer (time to first byte when streaming)."""
    latency_per_output_token_s: float = 0.0
    """Extra delay per output token (spread between the deltas when streaming)."""
    limits: RateLimits = field(default_factory=RateLimits)
    model_limits: Mapping[str, RateLimits] = field(default_factory=dict)
    """Per-model overrides of ``limits``, keyed by model id or alias."""
    fault_probabilities: Mapping[FaultKind, float] = field(default_factory=dict)
    seed: int = 0
    """Seed of the random draws behind ``fault_probabilities``."""
    slow_s: float = 2.0
    fault_retry_after_s: int = 1
    """``retry-after`` sent with an injected 429."""
    max_request_bytes: int = 32 * 1024 * 1024
    models: tuple[ModelEntry, ...] = DEFAULT_MODELS
    default_model: str = "claude-sonnet-4-5"
    """Model whose rate-limit headers answer requests that name no model."""
    api_versions: frozenset[str] = KNOWN_API_VERSIONS
    spend_limit_after: int | None = None
    """After this many answered Messages calls the monthly spend limit is reached: every later
    Messages call and token count is refused (429 ``enforced_spend_limit_reached``, no
    ``retry-after``) until the knob changes or the emulator is reset. ``None``: no limit."""
    batch_processing_s: float = 0.0
    """How long a Message Batch stays ``in_progress`` before its requests are answered."""
    batch_expiry_s: float = 24 * 3600.0
    """How long after its creation a Message Batch expires (the API's 24 hours); a batch not
    answered by then ends with its requests ``expired``."""


class EmulatorStats(TypedDict):
    """Counters since start (or the last reset), for tests and benchmarks."""

    requests: int
    by_status: dict[str, int]
    by_endpoint: dict[str, int]
    input_tokens: int
    output_tokens: int
    rate_limited: int
    faults_injected: dict[str, int]
    streams: int
    spend_limited: int
    """Calls refused because the spend limit was reached (Messages and token counts)."""
    in_flight: int
    max_in_flight: int
    batches: int
    """Message Batches kept (created and not deleted)."""
    batch_requests: int
    """Requests submitted in Message Batches."""
    batch_succeeded: int
    """Batch requests answered (each is billed once, however often its results are read)."""


class EmulatorState:
    """Shared between the server thread and the test thread; every method takes the lock."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._catalogue = ModelCatalogue(config.models)
        self._rng = random.Random(config.seed)
        self._queued: deque[FaultKind] = deque()
        self._limiters: dict[str, ModelLimiter] = {}
        self.prompt_cache = PromptCache()
        """Prefixes marked with ``cache_control`` (``_emulator_cache``)."""
        self._counts: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._by_endpoint: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self.batches = BatchStore()

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    @property
    def catalogue(self) -> ModelCatalogue:
        return self._catalogue

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Replace named fields of the configuration; changed limits start full buckets."""
        with self._lock:
            new = dataclasses.replace(self._config, **changes)
            if new.models != self._config.models:
                self._catalogue = ModelCatalogue(new.models)
            if new.seed != self._config.seed:
                self._rng = random.Random(new.seed)
            if new.limits != self._config.limits or new.model_limits != self._config.model_limits:
                self._limiters.clear()
            self._config = new
            return new

    def inject(self, kind: FaultKind, count: int = 1) -> None:
        """Make the next ``count`` Messages calls fail with ``kind`` (after earlier injections)."""
        with self._lock:
            self._queued.extend([kind] * count)

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Zero the counters, refill every bucket, drop queued faults; optionally swap the config."""
        if config is not None:
            self.configure(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
        with self._lock:
            self._rng = random.Random(self._config.seed)
            self._queued.clear()
            self._limiters.clear()
            self.prompt_cache.clear()
            in_flight = self._counts["in_flight"]
            self._counts.clear()
            self._counts["in_flight"] = in_flight
            self._by_status.clear()
            self._by_endpoint.clear()
            self._faults.clear()
        self.batches.clear()

    def draw_fault(self, streaming: bool) -> FaultKind | None:
        """The fault for this Messages call: queued ones first, then seeded random draws."""
        with self._lock:
            for index, kind in enumerate(self._queued):
                if kind is not FaultKind.STREAM_ERROR or streaming:
                    del self._queued[index]
                    self._faults[kind.value] += 1
                    return kind
            for kind, probability in sorted(self._config.fault_probabilities.items()):
                if kind is FaultKind.STREAM_ERROR and not streaming:
                    continue
                if self._rng.random() < probability:
                    self._faults[kind.value] += 1
                    return kind
            return None

    def spend_limit_reached(self) -> bool:
        """Whether the ``spend_limit_after`` answers are spent; counts the refusal when so."""
        with self._lock:
            cap = self._config.spend_limit_after
            if cap is None or self._counts["answered"] < cap:
                return False
            self._counts["spend_limited"] += 1
            return True

    def record_answered(self) -> None:
        """One Messages call answered (it counts toward ``spend_limit_after``)."""
        with self._lock:
            self._counts["answered"] += 1

    def _limiter(self, model_id: str, aliases: tuple[str, ...] = ()) -> ModelLimiter:
        limiter = self._limiters.get(model_id)
        if limiter is None:
            overrides = self._config.model_limits
            limits = next(
                (overrides[name] for name in (model_id, *aliases) if name in overrides), self._config.limits
            )
            limiter = self._limiters[model_id] = ModelLimiter(limits, time.monotonic())
        return limiter

    def admit(self, model: ModelEntry, input_tokens: int, output_tokens: int) -> Denial | None:
        with self._lock:
            return self._limiter(model.id, model.aliases).admit(input_tokens, output_tokens, time.monotonic())

    def rate_limit_headers(self, model: ModelEntry | None) -> dict[str, str]:
        with self._lock:
            if model is None:
                model = self._catalogue.lookup(self._config.default_model) or self._config.models[0]
            return self._limiter(model.id, model.aliases).headers(time.monotonic())

    def record_start(self, endpoint: str) -> None:
        with self._lock:
            self._counts["requests"] += 1
            self._counts["in_flight"] += 1
            self._counts["max_in_flight"] = max(self._counts["max_in_flight"], self._counts["in_flight"])
            self._by_endpoint[endpoint] += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self._by_status[str(status)] += 1
            if status == 429:
                self._counts["rate_limited"] += 1

    def record_end(self) -> None:
        with self._lock:
            self._counts["in_flight"] -= 1

    def record_tokens(self, input_tokens: int, output_tokens: int, *, stream: bool = False) -> None:
        with self._lock:
            self._counts["input_tokens"] += input_tokens
            self._counts["output_tokens"] += output_tokens
            self._counts["streams"] += int(stream)

    def stats(self) -> EmulatorStats:
        batches, batch_requests, batch_succeeded = self.batches.counters()
        with self._lock:
            return EmulatorStats(
                requests=self._counts["requests"],
                by_status=dict(self._by_status),
                by_endpoint=dict(self._by_endpoint),
                input_tokens=self._counts["input_tokens"],
                output_tokens=self._counts["output_tokens"],
                rate_limited=self._counts["rate_limited"],
                faults_injected=dict(self._faults),
                streams=self._counts["streams"],
                spend_limited=self._counts["spend_limited"],
                in_flight=self._counts["in_flight"],
                max_in_flight=self._counts["max_in_flight"],
                batches=batches,
                batch_requests=batch_requests,
                batch_succeeded=batch_succeeded,
            )
