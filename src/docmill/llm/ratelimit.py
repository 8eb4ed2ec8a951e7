"""A rate limiter shared by every worker on every host, over token buckets in a ``RateStore``.

Each API key and model has three buckets per minute: requests, input tokens and output
tokens, as the Anthropic API counts them. One call goes through three steps:

    admit    take one request, the input tokens and an *estimate* of the output tokens
             (``docmill.llm.output_estimate``, at most ``max_tokens``) from the shared
             buckets, all or nothing; when they lack, *book* the call (below); a request
             whose input alone exceeds the per-minute limit raises ``RequestExceedsLimit``,
             since no wait would ever let it through
    learn    the answer's ``anthropic-ratelimit-*-limit`` headers become the limits of the
             key and model for the whole cluster
    settle   the answer's usage replaces what admit took: the difference is charged (the
             level may fall below zero, so later calls wait) or refunded (never above the
             capacity), and the output tokens teach the estimate

Limits in force for a model, first found wins: those the API last reported for this key
(the store's flag ``llm:limits:<key hash>:<model id>``; the key itself is never stored),
those configured for the model, the configured default, the built-in ``TIER_1_LIMITS``.
Every process passes its capacities to the buckets, and a smaller capacity cuts a
bucket's level, so each process reads the flag before its first call of a model and
then every ``refresh_s``; a process that knows only the built-in default reads it
before every call until the flag exists, so the first answer anywhere in the cluster
lifts every process at once and no process cuts a learned capacity down to the default.
The process that sees the limits change writes the flag; the others adopt it when they
next read it (a newer observation wins).

Waiting is a line, not a round trip through the queue. The calls of one process that find
the buckets short wait in a first-come, first-served line per model; only the call at its
head asks the shared buckets, sleeping each time exactly the wait they name, so a refund
(``settle``) or newly learned limits help at once, and the calls go in the order they
arrived, holding their jobs. (Putting the job back in the queue and taking it again, the
old way, cost thousands of put-backs per hundred calls under saturation, and documents
started first finished last.) A call waits at most ``max_wait_s`` in all (the provider's
``rate_wait_s``), and never past the moment by which its job must have started its calls
(``start_calls_by``); beyond either nothing is taken and ``RateLimited`` releases the job.
While a process knows only the built-in default limits, the head asks again at least
every ``POLL_S``: the first answer anywhere will lift the limits.

Capacities are scaled by ``headroom`` (0.95): the store's clock and the API's disagree by
network latency and jitter, and a limiter that admits exactly the API's limit would, now
and then, be a few milliseconds early and get a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from docmill.llm.errors import RateLimited, RequestExceedsLimit
from docmill.llm.limits import REFRESH_S, LearnedLimits
from docmill.llm.limits import TIER_1_LIMITS as TIER_1_LIMITS
from docmill.llm.limits import RateLimits as RateLimits
from docmill.llm.limits import key_fingerprint as key_fingerprint
from docmill.llm.models import resolve_model
from docmill.llm.output_estimate import OutputEstimator
from docmill.llm.rate_store import MemoryRateStore as MemoryRateStore
from docmill.llm.rate_store import RateStore as RateStore
from docmill.llm.types import Usage

log = logging.getLogger("docmill.llm")

WINDOW_S = 60.0
DEFAULT_HEADROOM = 0.95
MAX_SLEEP_S = 2.0
"""Longest wait ``admit`` sleeps when its caller sets no other bound."""
POLL_S = 0.5
"""How often the head of the line asks again while only the built-in default limits are known."""
DEFAULT_RATE_WAIT_S = 300.0
"""Longest wait in line by default (``LLMSettings.rate_wait_s``); a longer one releases the job."""
_WAKE_MARGIN_S = 0.01
KEY_PREFIX = "llm:rate:"
_BUCKETS = (
    ("requests", "requests_per_min"),
    ("input_tokens", "input_tokens_per_min"),
    ("output_tokens", "output_tokens_per_min"),
)


_START_BY: ContextVar[float | None] = ContextVar("docmill_llm_start_calls_by", default=None)


@contextlib.contextmanager
def start_calls_by(deadline: float | None) -> Iterator[None]:
    """Within this block no call waits in line past ``deadline``
    (``time.monotonic()`` seconds): a job near its timeout is released instead of holding
    its worker for a call it could not finish. ``None`` sets no bound."""
    token = _START_BY.set(deadline)
    try:
        yield
    finally:
        _START_BY.reset(token)


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``admit`` took for one call, for ``settle`` to correct."""

    model_id: str
    purpose: str
    taken: Mapping[str, float]
    """Bucket name -> what was taken from it; a bucket without a limit is absent."""
    slept_s: float = 0.0
    """How long the call waited for its turn."""

    @property
    def output_tokens(self) -> float:
        """The output tokens reserved: the estimate, cut to the bucket's capacity."""
        return self.taken.get("output_tokens", 0.0)


class SharedRateLimiter:
    """Keeps requests and tokens per minute of each model under the API's limits, across hosts.

    ``account`` names the API key (``key_fingerprint``), so two keys never share buckets
    or learned limits. ``clock`` times ``refresh_s``; ``estimator`` learns output sizes.
    """

    def __init__(
        self,
        store: RateStore,
        limits: Mapping[str, RateLimits],
        *,
        default: RateLimits,
        account: str = "",
        headroom: float = DEFAULT_HEADROOM,
        window_s: float = WINDOW_S,
        refresh_s: float = REFRESH_S,
        estimator: OutputEstimator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < headroom <= 1.0:
            raise ValueError(f"headroom must be in (0, 1], not {headroom}")
        self._store = store
        self._configured = {resolve_model(name): value for name, value in limits.items()}
        self._default = default
        self._default_is_builtin = default == TIER_1_LIMITS
        self._account = account
        self._headroom = headroom
        self._window_s = window_s
        self._learned = LearnedLimits(store, account, refresh_s=refresh_s, clock=clock)
        self._estimator = estimator or OutputEstimator()
        self._monotonic = time.monotonic
        # One line per model and event loop (an asyncio lock belongs to one loop).
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ limits
    def limits_for(self, model: str) -> RateLimits:
        """The limits in force for a model as this process knows them now (no I/O)."""
        model_id = resolve_model(model)
        return self._learned.get(model_id) or self._configured.get(model_id) or self._default

    async def current_limits(self, model: str) -> RateLimits:
        """``limits_for`` after reading what the cluster learned, when that is due."""
        await self._refresh(resolve_model(model))
        return self.limits_for(model)

    def _knows_only_the_builtin_default(self, model_id: str) -> bool:
        return (
            self._learned.get(model_id) is None
            and model_id not in self._configured
            and self._default_is_builtin
        )

    async def _refresh(self, model_id: str) -> None:
        # Knowing only the built-in default, read before every call: the first answer
        # anywhere in the cluster must lift this process before it cuts a bucket.
        await self._learned.refresh(model_id, always=self._knows_only_the_builtin_default(model_id))

    def _bucket_key(self, model_id: str) -> str:
        return f"{KEY_PREFIX}{self._account}:{model_id}" if self._account else KEY_PREFIX + model_id

    def observe(self, model: str, headers: Mapping[str, str]) -> RateLimits | None:
        """Learn a model's limits from ``anthropic-ratelimit-*-limit`` headers, in this process.

        A header that is absent or not a positive number keeps the limit in force. Returns
        the new limits when they changed what this process knew, else None.
        """
        model_id = resolve_model(model)
        return self._learned.observe(model_id, headers, self.limits_for(model_id))

    async def learn(self, model: str, headers: Mapping[str, str]) -> None:
        """``observe``, and when the limits changed, tell the cluster (never raises)."""
        if self.observe(model, headers) is not None:
            await self._learned.share(resolve_model(model))

    async def known_input_limit(self, model: str) -> float | None:
        """The input tokens one minute allows for ``model`` (learned or configured, headroom
        applied), or None while only the built-in default is known or there is no limit."""
        model_id = resolve_model(model)
        await self._refresh(model_id)
        if self._knows_only_the_builtin_default(model_id):
            return None
        limit = float(self.limits_for(model_id).input_tokens_per_min)
        return limit * self._headroom if limit > 0 and math.isfinite(limit) else None

    def never_fits(self, model: str, input_tokens: int) -> RequestExceedsLimit | None:
        """The error for a request whose input alone exceeds the model's input tokens per
        minute (learned or configured; the built-in default is not trusted for it), else None."""
        model_id = resolve_model(model)
        if self._knows_only_the_builtin_default(model_id):
            return None
        limit = self.limits_for(model_id).input_tokens_per_min
        if limit > 0 and math.isfinite(limit) and input_tokens > limit:
            return RequestExceedsLimit(model=model_id, needed_tokens=input_tokens, limit_per_min=limit)
        return None

    def _capacities(self, model_id: str) -> dict[str, float]:
        """Bucket name -> capacity; a limit that is not positive or not finite means none."""
        limits = self.limits_for(model_id)
        capacities: dict[str, float] = {}
        for bucket, name in _BUCKETS:
            capacity = float(getattr(limits, name))
            if capacity > 0 and math.isfinite(capacity):
                capacities[bucket] = capacity * self._headroom
        return capacities

    # ------------------------------------------------------------------ taking and settling
    async def _take(self, model_id: str, costs: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        capacities = self._capacities(model_id)
        usable = {name: float(cost) for name, cost in costs.items() if name in capacities}
        if not usable:
            return 0.0, {}
        wait_s = await self._store.rate_take(
            self._bucket_key(model_id), usable, {n: capacities[n] for n in usable}, self._window_s
        )
        return wait_s, {name: min(cost, capacities[name]) for name, cost in usable.items()}

    async def acquire(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Take one request, ``input_tokens`` and ``output_tokens`` for ``model``: 0.0 means
        go now, else wait that many seconds (nothing was taken; call again after waiting)."""
        model_id = resolve_model(model)
        await self._refresh(model_id)
        costs = {"requests": 1.0, "input_tokens": float(input_tokens), "output_tokens": float(output_tokens)}
        wait_s, _ = await self._take(model_id, costs)
        return wait_s

    def output_estimate(self, model: str, purpose: str, max_output_tokens: int) -> int:
        """The output tokens ``admit`` reserves now for a call of ``purpose``."""
        return self._estimator.estimate((resolve_model(model), purpose), max_output_tokens)

    async def admit(
        self,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        *,
        purpose: str = "",
        max_sleep_s: float = MAX_SLEEP_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Admission:
        """Take a call's request, input and estimated output, waiting in the process's line
        for the model (the module docstring) up to ``max_sleep_s`` in all.

        Raises ``RequestExceedsLimit`` when the input can never fit, and
        ``RateLimited(from_limiter=True)`` with the wait still needed when the wait allowed
        would be exceeded; either way nothing is taken and no call is made.
        """
        model_id = resolve_model(model)
        await self._refresh(model_id)
        too_large = self.never_fits(model_id, input_tokens)
        if too_large is not None:
            raise too_large
        costs = {
            "requests": 1.0,
            "input_tokens": float(input_tokens),
            "output_tokens": float(self.output_estimate(model_id, purpose, max_output_tokens)),
        }
        line = self._lines.setdefault(asyncio.get_running_loop(), {}).setdefault(model_id, asyncio.Lock())
        arrived = self._monotonic()
        if line.locked():
            try:
                await asyncio.wait_for(line.acquire(), self._wait_allowed(model_id, max_sleep_s))
            except TimeoutError:
                raise RateLimited(retry_after_s=MAX_SLEEP_S, from_limiter=True) from None
        else:
            await line.acquire()
        try:
            slept = 0.0
            while True:
                wait_s, taken = await self._take(model_id, costs)
                in_line_s = self._monotonic() - arrived
                if wait_s <= 0.0:
                    return Admission(model_id, purpose, taken, max(slept, in_line_s))
                if max(slept, in_line_s) + wait_s > self._wait_allowed(model_id, max_sleep_s):
                    raise RateLimited(retry_after_s=wait_s, from_limiter=True)
                if self._knows_only_the_builtin_default(model_id):
                    wait_s = min(wait_s, POLL_S)
                await sleep(wait_s + _WAKE_MARGIN_S)
                slept += wait_s + _WAKE_MARGIN_S
                await self._refresh(model_id)
        finally:
            line.release()

    def _wait_allowed(self, model_id: str, max_wait_s: float) -> float:
        start_by = _START_BY.get()
        if start_by is None:
            return max_wait_s
        return min(max_wait_s, start_by - self._monotonic())

    async def settle(self, admission: Admission, usage: Usage) -> None:
        """Replace what ``admit`` took by what the answer used, and learn its output size.

        Input counts as the API counts it against the limit: uncached input plus cache
        writes (cache reads are not limited). A store that cannot be reached is logged,
        never raised: the answer is paid for and must not be lost.
        """
        self._estimator.record((admission.model_id, admission.purpose), usage.output_tokens)
        used = {
            "input_tokens": float(usage.input_tokens + usage.cache_creation_input_tokens),
            "output_tokens": float(usage.output_tokens),
        }
        capacities = self._capacities(admission.model_id)
        charges = {
            name: used[name] - admission.taken.get(name, 0.0)
            for name in used
            if name in capacities and used[name] != admission.taken.get(name, 0.0)
        }
        if not charges:
            return
        try:
            await self._store.rate_settle(
                self._bucket_key(admission.model_id),
                charges,
                {name: capacities[name] for name in charges},
                self._window_s,
            )
        except Exception as exc:
            log.warning("llm.settle_failed model=%s error=%s", admission.model_id, exc)
