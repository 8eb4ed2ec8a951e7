"""Claude models: aliases to dated ids, context windows, caching minimums, and which are retired.

``resolve_model`` turns an alias (``claude-haiku-4-5``) into the dated id the API
answers with (``claude-haiku-4-5-20251001``); names it does not know pass through
unchanged, so a model newer than this table still works. ``RETIRED_MODELS`` holds
the models Anthropic has switched off: a request naming one gets a 404, and the
user must be told plainly that the model is retired and what to use instead.
The catalogue follows ``anthropic.types.ModelParam`` and the SDK's deprecation table
(anthropic 2.14); windows not listed here default to ``DEFAULT_CONTEXT_WINDOW``.

``min_cacheable_tokens`` is the shortest prompt prefix the API caches for a model: a
``cache_control`` breakpoint on a shorter prefix is accepted but caches nothing, and the
call is billed at the full input price. The figures are those of Anthropic's
prompt-caching guide; a model it does not list (and any model not in the catalogue) gets
``DEFAULT_MIN_CACHEABLE_TOKENS``, the highest minimum of any model, so nothing counts on a
cache the API may not keep.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT_MODEL = "claude-sonnet-4-6"
"""Used when ``CLAUDE_DEFAULT_MODEL`` is not set: current, and priced in ``pricing``."""
DEFAULT_CONTEXT_WINDOW = 200_000
DEFAULT_MAX_OUTPUT_TOKENS = 64_000
DEFAULT_MIN_CACHEABLE_TOKENS = 4_096

_DATED = re.compile(r"^(?P<base>.+)-(?P<date>20\d{6})$")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model as far as docmill needs to know it."""

    id: str
    line: str
    """``opus``, ``sonnet``, ``haiku``, …: models of a line share a price level."""
    aliases: tuple[str, ...] = ()
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS
    """The shortest prefix prompt caching keeps, in tokens (see the module docstring)."""


def _m(
    model_id: str,
    line: str,
    *aliases: str,
    window: int = 200_000,
    output: int = 64_000,
    cache: int = DEFAULT_MIN_CACHEABLE_TOKENS,
) -> ModelInfo:
    return ModelInfo(model_id, line, aliases, window, output, cache)


# Newest first within each line. Sonnet 4.x offers a 1M window behind a beta header;
# docmill does not send it, so 200k is the window that applies. ``cache`` is set where
# the caching guide gives a minimum; Sonnet 4.6 is listed at 1,024 there but has been
# seen to cache only from 2,048 tokens, so the higher figure is kept.
_CATALOGUE: tuple[ModelInfo, ...] = (
    _m("claude-fable-5-2", "fable"),
    _m("claude-fable-5-1", "fable"),
    _m("claude-fable-5", "fable"),
    _m("claude-mythos-5-2", "mythos"),
    _m("claude-mythos-5-1", "mythos"),
    _m("claude-mythos-5", "mythos"),
    _m("claude-mythos-preview", "mythos"),
    _m("claude-opus-5-5", "opus", output=128_000),
    _m("claude-opus-5", "opus", output=128_000),
    _m("claude-opus-4-8", "opus", output=128_000, cache=1_024),
    _m("claude-opus-4-7", "opus", output=128_000),
    _m("claude-opus-4-6", "opus", output=128_000, cache=4_096),
    _m("claude-opus-4-5-20251101", "opus", "claude-opus-4-5", cache=4_096),
    _m("claude-opus-4-1-20250805", "opus", "claude-opus-4-1", output=32_000, cache=1_024),
    _m("claude-opus-4-20250514", "opus", "claude-opus-4-0", output=32_000, cache=1_024),
    _m("claude-sonnet-5-5", "sonnet"),
    _m("claude-sonnet-5", "sonnet"),
    _m("claude-sonnet-4-6", "sonnet", cache=2_048),
    _m("claude-sonnet-4-5-20250929", "sonnet", "claude-sonnet-4-5", cache=1_024),
    _m("claude-sonnet-4-20250514", "sonnet", "claude-sonnet-4-0", cache=1_024),
    _m("claude-haiku-5-5", "haiku"),
    _m("claude-haiku-4-5-20251001", "haiku", "claude-haiku-4-5", cache=4_096),
    # Retired: kept so old results can still be priced and named.
    _m("claude-3-7-sonnet-20250219", "sonnet", "claude-3-7-sonnet-latest", output=8_192, cache=1_024),
    _m("claude-3-5-sonnet-20241022", "sonnet", "claude-3-5-sonnet-latest", output=8_192, cache=1_024),
    _m("claude-3-5-sonnet-20240620", "sonnet", output=8_192, cache=1_024),
    _m("claude-3-5-haiku-20241022", "haiku", "claude-3-5-haiku-latest", output=8_192, cache=2_048),
    _m("claude-3-opus-20240229", "opus", "claude-3-opus-latest", output=4_096, cache=1_024),
    _m("claude-3-sonnet-20240229", "sonnet", output=4_096, cache=1_024),
)

MODELS: Mapping[str, ModelInfo] = MappingProxyType({m.id: m for m in _CATALOGUE})
ALIASES: Mapping[str, str] = MappingProxyType({a: m.id for m in _CATALOGUE for a in m.aliases})

# What to use instead of a retired model of each line.
SUCCESSORS: Mapping[str, str] = MappingProxyType(
    {"sonnet": DEFAULT_MODEL, "haiku": "claude-haiku-4-5", "opus": "claude-opus-4-6"}
)


def _retired(names: tuple[str, ...], label: str, when: str, line: str) -> dict[str, str]:
    sentence = (
        f"{label} ({names[0]}) {when} and no longer answers; "
        f"use {SUCCESSORS[line]} instead (set CLAUDE_DEFAULT_MODEL)."
    )
    return dict.fromkeys(names, sentence)


RETIRED_MODELS: Mapping[str, str] = MappingProxyType(
    {
        **_retired(
            ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-latest"),
            "Claude Sonnet 3.5",
            "was retired by Anthropic on 22 October 2025",
            "sonnet",
        ),
        **_retired(
            ("claude-3-5-sonnet-20240620",),
            "Claude Sonnet 3.5 (June 2024)",
            "was retired by Anthropic on 22 October 2025",
            "sonnet",
        ),
        **_retired(
            ("claude-3-opus-20240229", "claude-3-opus-latest"),
            "Claude Opus 3",
            "was retired by Anthropic on 5 January 2026",
            "opus",
        ),
        **_retired(
            ("claude-3-sonnet-20240229",),
            "Claude Sonnet 3",
            "was retired by Anthropic on 21 July 2025",
            "sonnet",
        ),
        **_retired(
            ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"),
            "Claude Sonnet 3.7",
            "has been retired by Anthropic",
            "sonnet",
        ),
        **_retired(
            ("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
            "Claude Haiku 3.5",
            "has been retired by Anthropic",
            "haiku",
        ),
        **_retired(("claude-2.1",), "Claude 2.1", "was retired by Anthropic on 21 July 2025", "sonnet"),
        **_retired(("claude-2.0",), "Claude 2.0", "was retired by Anthropic on 21 July 2025", "sonnet"),
    }
)
"""Model id or alias → one sentence for the user: retired when, and what to use instead."""

DEPRECATED_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "claude-sonnet-4-5-20250929": "30 November 2026",
        "claude-opus-4-5-20251101": "22 January 2027",
        "claude-mythos-preview": "30 June 2026",
    }
)
"""Dated id → the day Anthropic retires it (from the SDK's deprecation table); still answers."""


def resolve_model(name: str) -> str:
    """The dated id for an alias; an id, or a name not in the table, unchanged (stripped)."""
    name = name.strip()
    return ALIASES.get(name, name)


def model_info(name: str) -> ModelInfo | None:
    """The catalogue entry of an alias or id; a dated id of a known alias counts too."""
    resolved = resolve_model(name)
    info = MODELS.get(resolved)
    if info is None and (match := _DATED.match(resolved)) is not None:
        base = match["base"]
        info = MODELS.get(ALIASES.get(base, base))
    return info


def retirement_message(name: str) -> str | None:
    """The user's sentence when ``name`` (alias or id) is retired, else None."""
    return RETIRED_MODELS.get(name.strip()) or RETIRED_MODELS.get(resolve_model(name))


def deprecation_date(name: str) -> str | None:
    """When a deprecated (still answering) model will be retired, else None."""
    return DEPRECATED_MODELS.get(resolve_model(name))


def unknown_model_message(name: str) -> str:
    """The user's sentence for a model the API does not serve (and that we do not know as retired)."""
    return (
        f"The model {name!r} is not available to this API key (unknown or retired); "
        f"set CLAUDE_DEFAULT_MODEL to a current model such as {DEFAULT_MODEL}."
    )


def context_window(model: str) -> int:
    """Input context window in tokens; ``DEFAULT_CONTEXT_WINDOW`` for a model not in the table."""
    info = model_info(model)
    return info.context_window if info is not None else DEFAULT_CONTEXT_WINDOW


def max_output_tokens(model: str) -> int:
    """Largest ``max_tokens`` the model accepts; ``DEFAULT_MAX_OUTPUT_TOKENS`` when unknown."""
    info = model_info(model)
    return info.max_output_tokens if info is not None else DEFAULT_MAX_OUTPUT_TOKENS


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix the API caches for ``model``; ``DEFAULT_MIN_CACHEABLE_TOKENS`` when unknown."""
    info = model_info(model)
    return info.min_cacheable_tokens if info is not None else DEFAULT_MIN_CACHEABLE_TOKENS


def model_line(model: str) -> str | None:
    """``opus`` / ``sonnet`` / ``haiku`` / …, from the table or the name (``claude-<line>-…``)."""
    info = model_info(model)
    if info is not None:
        return info.line
    match = re.match(r"^claude-(?:\d+(?:-\d+)?-)?([a-z]+)", model.strip())
    return match[1] if match else None
