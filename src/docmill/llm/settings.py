"""Settings of the LLM layer, from ``[llm]`` in ``docmill.toml`` and the environment (which wins).

===========================  =====================================  ==========================
setting                      environment                            ``[llm]`` key
===========================  =====================================  ==========================
provider                     ``DOCMILL_LLM_PROVIDER``               ``provider``
anthropic_api_key            ``CLAUDE_API_KEY``, ``ANTHROPIC_API_KEY``  (environment only)
default_model                ``CLAUDE_DEFAULT_MODEL``               ``default_model``
anthropic_base_url           ``ANTHROPIC_BASE_URL``                 ``anthropic_base_url``
openai_base_url              ``OPENAI_BASE_URL``                    ``openai_base_url``
openai_api_key               ``OPENAI_API_KEY``                     (environment only)
openai_model                 ``OPENAI_MODEL``                       ``openai_model``
request_timeout_s            ``DOCMILL_LLM_TIMEOUT_S``              ``request_timeout_s``
unreachable_timeout_s        ``DOCMILL_LLM_UNREACHABLE_TIMEOUT_S``  ``unreachable_timeout_s``
rate_wait_s                  ``DOCMILL_LLM_RATE_WAIT_S``            ``rate_wait_s``
prices (overrides)           ``DOCMILL_LLM_PRICES`` (JSON)          ``[llm.prices."<model>"]``
limits (per model)           ``DOCMILL_LLM_LIMITS`` (JSON)          ``[llm.limits."<model>"]``
===========================  =====================================  ==========================

``provider = "auto"`` picks Anthropic when a Claude key is set, else the
OpenAI-compatible server when ``OPENAI_BASE_URL`` is set, else the offline
extractive processor. Prices are ``{"<model>": {"input_per_mtok": 3, ...}}`` (plus an
optional top-level ``batch_discount``); limits are ``{"<model>": {"requests_per_min":
50, "input_tokens_per_min": 30000, "output_tokens_per_min": 8000}}``, the key
``"default"`` setting the limits of every model not named. Keys never appear in
``repr`` or ``masked()``.

``unreachable_timeout_s`` (default 1800) bounds how long a document waits for a provider
that cannot be reached at all (connection refused, unknown host, connect timeout): past
it the document fails, saying since when. Rate limits and overload are never bounded by it.

``rate_wait_s`` (default 300) is the longest a call waits in line at the shared rate limiter,
holding its worker, before its job is put back in the queue instead
(``docmill.llm.ratelimit``); a wait is never booked past the job's own time budget.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from docmill.llm.limits import TIER_1_LIMITS, RateLimits
from docmill.llm.models import DEFAULT_MODEL, retirement_message
from docmill.llm.pricing import PriceTable
from docmill.llm.ratelimit import DEFAULT_RATE_WAIT_S
from docmill.queue import mask_url as queue_mask_url

PROVIDERS = frozenset({"auto", "anthropic", "openai", "extractive"})
DEFAULT_UNREACHABLE_TIMEOUT_S = 1800.0
_LIMIT_FIELDS = ("requests_per_min", "input_tokens_per_min", "output_tokens_per_min")


def mask_secret(value: str | None) -> str:
    """``"sk-a…(masked)"``: the first four characters of a long secret, nothing of a short one."""
    if not value:
        return ""
    return f"{value[:4]}…(masked)" if len(value) >= 12 else "…(masked)"


def mask_url(url: str | None) -> str:
    """A URL with every secret in it masked (the queue engine's ``mask_url``); "" for none."""
    return queue_mask_url(url) if url else ""


def _clean(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _positive_seconds(value: str, source: str) -> float:
    """``value`` as a number of seconds above zero; ``source`` names the setting in the error."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{source} must be a number of seconds above 0, not {value!r}")
    return seconds


def _seconds(value: str, source: str) -> float:
    """``value`` as a number of seconds, 0 or more; ``source`` names the setting in the error."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{source} must be a number of seconds, 0 or more, not {value!r}")
    return seconds


def _json_env(env: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc}); see docmill.llm.settings") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object keyed by model")
    return value


def _raw_limits(raw: Mapping[str, Any], source: str) -> dict[str, dict[str, float]]:
    checked: dict[str, dict[str, float]] = {}
    for model, values in raw.items():
        if not isinstance(values, Mapping) or set(values) - set(_LIMIT_FIELDS):
            raise ValueError(f"{source}: limits of {model!r} take only {', '.join(_LIMIT_FIELDS)}")
        checked[str(model)] = {name: float(value) for name, value in values.items()}
    return checked


def _limits(
    *layers: dict[str, dict[str, float]],
) -> tuple[RateLimits, dict[str, RateLimits]]:
    """(default, per model): later layers override earlier ones field by field; a field a
    model does not set comes from ``default``, whose unset fields are tier 1's."""
    merged: dict[str, dict[str, float]] = {}
    for layer in layers:
        for model, values in layer.items():
            merged.setdefault(model, {}).update(values)
    default_values = merged.pop("default", {})
    default = RateLimits(**{n: default_values.get(n, getattr(TIER_1_LIMITS, n)) for n in _LIMIT_FIELDS})
    per_model = {
        model: RateLimits(**{n: values.get(n, getattr(default, n)) for n in _LIMIT_FIELDS})
        for model, values in merged.items()
    }
    return default, per_model


@dataclass(frozen=True, repr=False)
class LLMSettings:
    """Everything ``build_provider`` needs; see the module docstring for the sources."""

    provider: str = "auto"
    anthropic_api_key: str | None = field(default=None, repr=False)
    default_model: str = DEFAULT_MODEL
    anthropic_base_url: str | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_model: str | None = None
    request_timeout_s: float = 600.0
    unreachable_timeout_s: float = DEFAULT_UNREACHABLE_TIMEOUT_S
    """How long a document waits for a provider that cannot be reached before it fails."""
    rate_wait_s: float = DEFAULT_RATE_WAIT_S
    """The longest a call waits its turn at the shared rate limiter before its job is released."""
    limits: Mapping[str, RateLimits] = field(default_factory=lambda: MappingProxyType({}))
    default_limits: RateLimits = TIER_1_LIMITS
    """Limits of a model not in ``limits``: Anthropic's lowest tier until the API's headers say more."""
    prices: PriceTable = field(default_factory=PriceTable.default)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(
                f"unknown LLM provider {self.provider!r}; use one of {', '.join(sorted(PROVIDERS))}"
            )
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be positive, not {self.request_timeout_s}")
        if not (math.isfinite(self.unreachable_timeout_s) and self.unreachable_timeout_s > 0):
            shown = self.unreachable_timeout_s
            raise ValueError(f"unreachable_timeout_s must be a number of seconds above 0, not {shown}")
        if not (math.isfinite(self.rate_wait_s) and self.rate_wait_s >= 0):
            raise ValueError(f"rate_wait_s must be a number of seconds, 0 or more, not {self.rate_wait_s}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LLMSettings:
        """Settings from the environment alone."""
        return cls.from_config({}, env)

    @classmethod
    def from_config(cls, section: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> LLMSettings:
        """Settings from the ``[llm]`` table of ``docmill.toml``, the environment overriding it."""

        def pick(env_names: tuple[str, ...], key: str | None) -> str | None:
            return picked(env_names, key)[0]

        def picked(env_names: tuple[str, ...], key: str | None) -> tuple[str | None, str]:
            """The value and the name of the setting it came from."""
            for name in env_names:
                if (value := _clean(env.get(name))) is not None:
                    return value, name
            return (_clean(section.get(key)), f"[llm] {key}") if key else (None, "")

        price_overrides = {**dict(section.get("prices") or {}), **_json_env(env, "DOCMILL_LLM_PRICES")}
        batch_discount = price_overrides.pop("batch_discount", section.get("batch_discount"))
        default_limits, limits = _limits(
            _raw_limits(dict(section.get("limits") or {}), "[llm.limits]"),
            _raw_limits(_json_env(env, "DOCMILL_LLM_LIMITS"), "DOCMILL_LLM_LIMITS"),
        )
        timeout = pick(("DOCMILL_LLM_TIMEOUT_S",), "request_timeout_s")
        unreachable, unreachable_source = picked(
            ("DOCMILL_LLM_UNREACHABLE_TIMEOUT_S",), "unreachable_timeout_s"
        )
        rate_wait, rate_wait_source = picked(("DOCMILL_LLM_RATE_WAIT_S",), "rate_wait_s")
        return cls(
            provider=(pick(("DOCMILL_LLM_PROVIDER",), "provider") or "auto").lower(),
            anthropic_api_key=pick(("CLAUDE_API_KEY", "ANTHROPIC_API_KEY"), None),
            default_model=pick(("CLAUDE_DEFAULT_MODEL",), "default_model") or DEFAULT_MODEL,
            anthropic_base_url=pick(("ANTHROPIC_BASE_URL",), "anthropic_base_url"),
            openai_base_url=pick(("OPENAI_BASE_URL",), "openai_base_url"),
            openai_api_key=pick(("OPENAI_API_KEY",), None),
            openai_model=pick(("OPENAI_MODEL",), "openai_model"),
            request_timeout_s=float(timeout) if timeout else 600.0,
            unreachable_timeout_s=(
                _positive_seconds(unreachable, unreachable_source)
                if unreachable is not None
                else DEFAULT_UNREACHABLE_TIMEOUT_S
            ),
            rate_wait_s=(
                _seconds(rate_wait, rate_wait_source) if rate_wait is not None else DEFAULT_RATE_WAIT_S
            ),
            limits=MappingProxyType(limits),
            default_limits=default_limits,
            prices=PriceTable.default().with_overrides(
                price_overrides,
                batch_discount=None if batch_discount is None else float(batch_discount),
            ),
        )

    def resolved_provider(self) -> str:
        """The provider ``build_provider`` will use: ``auto`` decided by the keys and URLs set."""
        if self.provider != "auto":
            return self.provider
        if self.anthropic_api_key:
            return "anthropic"
        if self.openai_base_url:
            return "openai"
        return "extractive"

    def problems(self) -> list[str]:
        """Sentences about settings that will fail at the first call (e.g. a retired default model)."""
        found: list[str] = []
        if self.resolved_provider() == "anthropic":
            retired = retirement_message(self.default_model)
            if retired is not None:
                found.append(retired)
            if not self.anthropic_api_key:
                found.append("No Claude API key is set; set CLAUDE_API_KEY or choose provider extractive.")
        if self.resolved_provider() == "openai" and not self.openai_base_url:
            found.append("No OpenAI-compatible endpoint is set; set OPENAI_BASE_URL.")
        return found

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.masked().items())
        return f"LLMSettings({shown})"

    def masked(self) -> dict[str, str]:
        """Every setting as text for display, secrets masked."""
        shown: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("api_key"):
                shown[item.name] = mask_secret(value)
            elif item.name.endswith("base_url"):
                shown[item.name] = mask_url(value)
            elif item.name == "limits":
                shown[item.name] = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
            elif item.name == "prices":
                shown[item.name] = f"{len(value.prices)} models, batch_discount={value.batch_discount}"
            else:
                shown[item.name] = "" if value is None else str(value)
        shown["resolved_provider"] = self.resolved_provider()
        return shown
