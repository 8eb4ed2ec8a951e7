"""Per-minute rate limits, and those the API reported, learned once for the whole cluster.

The API reports the limits of the key on every answer (``anthropic-ratelimit-*-limit``
headers, 429s included). ``LearnedLimits`` keeps them per model in a flag of the shared
store, ``llm:limits:<key hash>:<model id>`` (the key itself is never stored)::

    {"requests_per_min": 4000.0, "input_tokens_per_min": 2000000.0,
     "output_tokens_per_min": 400000.0, "observed_at": 1767225600.0}

The process whose answer shows the limits changed writes the flag; every process reads
it before its first call of a model, then at most every ``refresh_s``, and adopts it
unless it observed something newer itself (``observed_at``, epoch seconds). A worker
started on any host therefore begins from what the API last said.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from docmill.llm.rate_store import FlagStore

log = logging.getLogger("docmill.llm")

REFRESH_S = 5.0
"""How often a process reads the limits the cluster learned."""
FLAG_PREFIX = "llm:limits:"
FIELDS = ("requests_per_min", "input_tokens_per_min", "output_tokens_per_min")
_HEADER_FIELDS = {
    "anthropic-ratelimit-requests-limit": "requests_per_min",
    "anthropic-ratelimit-input-tokens-limit": "input_tokens_per_min",
    "anthropic-ratelimit-output-tokens-limit": "output_tokens_per_min",
}


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute limits of one model."""

    requests_per_min: float
    input_tokens_per_min: float
    output_tokens_per_min: float


TIER_1_LIMITS = RateLimits(requests_per_min=50, input_tokens_per_min=30_000, output_tokens_per_min=8_000)
"""Anthropic's lowest tier for Sonnet/Opus: a safe start until the API's headers say more."""


def key_fingerprint(api_key: str) -> str:
    """A short hash naming an API key in the store, where the key itself must never be."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def reported_limits(headers: Mapping[str, str]) -> dict[str, float]:
    """The limits named by ``anthropic-ratelimit-*-limit`` headers (any case); a header that
    is absent or not a positive number is left out."""
    reported: dict[str, float] = {}
    lowered = {name.lower(): value for name, value in headers.items()}
    for header, field_name in _HEADER_FIELDS.items():
        try:
            value = float(lowered[header])
        except (KeyError, ValueError):
            continue
        if value > 0 and math.isfinite(value):
            reported[field_name] = value
    return reported


@dataclass(slots=True)
class _Known:
    limits: RateLimits | None = None
    observed_at: float = 0.0
    read_at: float | None = None  # this process's clock at the last read of the flag


class LearnedLimits:
    """What the API reported for one key (``account``, a ``key_fingerprint``), per model id.

    ``clock`` times ``refresh_s``; ``wall_clock`` dates observations so the newest wins
    across hosts.
    """

    def __init__(
        self,
        store: FlagStore,
        account: str = "",
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._account = account or "-"
        self._refresh_s = refresh_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._known: dict[str, _Known] = {}

    def get(self, model_id: str) -> RateLimits | None:
        """The limits last reported for the model, as this process knows them (no I/O)."""
        known = self._known.get(model_id)
        return None if known is None else known.limits

    def flag_name(self, model_id: str) -> str:
        return f"{FLAG_PREFIX}{self._account}:{model_id}"

    async def refresh(self, model_id: str, *, always: bool = False) -> None:
        """Read the cluster's flag when ``refresh_s`` has passed since the last read (or
        ``always``), and adopt it unless this process observed something newer."""
        known = self._known.setdefault(model_id, _Known())
        now = self._clock()
        if not always and known.read_at is not None and now - known.read_at < self._refresh_s:
            return
        record = _parse(await self._store.get_flag(self.flag_name(model_id)))
        known.read_at = now
        if record is not None and record[1] >= known.observed_at:
            known.limits, known.observed_at = record

    def observe(self, model_id: str, headers: Mapping[str, str], fallback: RateLimits) -> RateLimits | None:
        """Take in the limits an answer's headers report (a field they omit comes from
        ``fallback``, the limits in force); the new limits when they changed, else None."""
        reported = reported_limits(headers)
        if not reported:
            return None
        known = self._known.setdefault(model_id, _Known())
        new = RateLimits(**{name: reported.get(name, getattr(fallback, name)) for name in FIELDS})
        if new == known.limits:
            return None
        known.limits, known.observed_at = new, self._wall_clock()
        return new

    async def share(self, model_id: str) -> None:
        """Write what this process knows of the model to the cluster's flag. A store that
        cannot be written is logged, never raised: the answer that taught it is paid for."""
        known = self._known.get(model_id)
        if known is None or known.limits is None:
            return
        record: dict[str, Any] = {name: getattr(known.limits, name) for name in FIELDS}
        record["observed_at"] = known.observed_at
        try:
            await self._store.set_flag(self.flag_name(model_id), record)
        except Exception as exc:
            log.warning("llm.limits_not_shared model=%s error=%s", model_id, exc)
            return
        log.info(
            "llm.limits_learned model=%s requests_per_min=%g input_tokens_per_min=%g "
            "output_tokens_per_min=%g",
            model_id,
            known.limits.requests_per_min,
            known.limits.input_tokens_per_min,
            known.limits.output_tokens_per_min,
        )


def _parse(data: Mapping[str, Any] | None) -> tuple[RateLimits, float] | None:
    """The limits and observation time of a flag ``share`` wrote; None when unusable."""
    if not data:
        return None
    try:
        values = {name: float(data[name]) for name in FIELDS}
        observed_at = float(data.get("observed_at", 0.0))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(value > 0 and math.isfinite(value) for value in values.values()):
        return None
    return RateLimits(**values), observed_at
