"""The emulator's prompt cache: ``cache_control`` as the Messages API honours it.

A request whose system prompt or message content marks a block with ``cache_control``
caches its prompt up to and including the last marked block, when that prefix holds at
least the model's minimum (``docmill.llm.models.min_cacheable_tokens``); a shorter one is
not cached and nothing is said. The first request with a prefix writes it
(``cache_creation_input_tokens``), later ones within the time to live read it
(``cache_read_input_tokens``; each read renews it); ``input_tokens`` is what follows the
prefix. Requests running at the same time as the first each write it, as on the API.
Cache reads do not count against the input-tokens-per-minute limit; writes do.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from docmill.llm.models import min_cacheable_tokens
from docmill.testing._emulator_replies import count_input_tokens

TTL_S = 300.0


@dataclass(frozen=True)
class CacheUsage:
    """How a request's input splits between the cache and the rest."""

    input_tokens: int
    creation: int = 0
    read: int = 0

    @property
    def limited_tokens(self) -> int:
        """The tokens the input-tokens-per-minute limit counts."""
        return self.input_tokens + self.creation


def marked_prefix(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request cut after its last ``cache_control`` block (system first, then messages)."""
    system = body.get("system")
    prefix: dict[str, Any] | None = None
    if isinstance(system, list):
        for number, block in enumerate(system):
            if isinstance(block, dict) and block.get("cache_control"):
                prefix = {"system": system[: number + 1]}
    messages = body.get("messages") or []
    for m_number, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for b_number, block in enumerate(content):
            if isinstance(block, dict) and block.get("cache_control"):
                cut = {**message, "content": content[: b_number + 1]}
                prefix = {"system": system or "", "messages": [*messages[:m_number], cut]}
    return prefix


class PromptCache:
    """Prefixes cached per model, each with its expiry."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self._ttl_s = ttl_s
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def usage(self, model_id: str, body: dict[str, Any], input_tokens: int) -> CacheUsage:
        prefix = marked_prefix(body)
        if prefix is None:
            return CacheUsage(input_tokens)
        tokens = min(count_input_tokens(prefix), input_tokens)
        if tokens < min_cacheable_tokens(model_id):
            return CacheUsage(input_tokens)
        key = hashlib.sha256(f"{model_id}\n{json.dumps(prefix, sort_keys=True)}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._expires.get(key, 0.0) > now
            self._expires[key] = now + self._ttl_s
        if hit:
            return CacheUsage(input_tokens - tokens, read=tokens)
        return CacheUsage(input_tokens - tokens, creation=tokens)

    def clear(self) -> None:
        with self._lock:
            self._expires.clear()
