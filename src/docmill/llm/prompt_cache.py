"""Where a request marks its prompt for the API's cache (``cache_control``), if anywhere.

The Messages API caches the prompt up to a block marked ``cache_control`` when that prefix
is at least the model's minimum (``models.min_cacheable_tokens``: 1,024 to 4,096 tokens);
a shorter marked prefix is simply not cached. A document's maps share the system prompt and
the instructions before their chunk (``LLMRequest.cache_prefix_chars``): a long custom
prompt or extraction schema. So:

    system + shared instructions reach the minimum   mark the instructions (the system
                                                     prompt comes first, so it is cached too)
    else the system prompt alone reaches it          mark the system prompt
    else                                             mark nothing: no cache would be made

The first calls write the cache (25 % dearer than input), later ones read it (a tenth of
the price, and not counted against the input-tokens-per-minute limit); the estimate shows
a cached price only where this marks something (``documents.estimate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from docmill.llm.models import min_cacheable_tokens
from docmill.llm.tokens import estimate_request_tokens

EPHEMERAL = {"type": "ephemeral"}


@dataclass(frozen=True, slots=True)
class CachePoint:
    """The block marked for the cache, and the prefix's size as estimated offline."""

    where: Literal["system", "prompt"]
    prefix_tokens: int


def cache_point(model: str, system: str, prompt: str, prefix_chars: int) -> CachePoint | None:
    """Where to mark a request whose prompt shares its first ``prefix_chars`` characters."""
    minimum = min_cacheable_tokens(model)
    if 0 < prefix_chars < len(prompt):
        tokens = estimate_request_tokens(system, prompt[:prefix_chars])
        if tokens >= minimum:
            return CachePoint("prompt", tokens)
    tokens = estimate_request_tokens(system, "")
    if system and tokens >= minimum:
        return CachePoint("system", tokens)
    return None


def message_params(
    model: str, system: str, prompt: str, prefix_chars: int
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API, with ``cache_control`` where it pays."""
    point = cache_point(model, system, prompt, prefix_chars)
    if point is None:
        return system, [{"role": "user", "content": prompt}]
    if point.where == "system":
        return (
            [{"type": "text", "text": system, "cache_control": EPHEMERAL}],
            [{"role": "user", "content": prompt}],
        )
    content = [
        {"type": "text", "text": prompt[:prefix_chars], "cache_control": EPHEMERAL},
        {"type": "text", "text": prompt[prefix_chars:]},
    ]
    return system, [{"role": "user", "content": content}]
