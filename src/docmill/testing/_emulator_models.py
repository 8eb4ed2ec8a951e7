"""The emulator's model catalogue: which ids exist, which are aliases, which are retired.

The default catalogue follows the model names the ``anthropic`` 2.14 SDK knows
(``anthropic.types.ModelParam``) and its deprecation table, plus a few retired
models so tests can exercise the API's ``not_found_error`` for them. An alias
(``claude-sonnet-4-5``) resolves to its dated id (``claude-sonnet-4-5-20250929``),
which is what the API puts in ``Message.model`` and in the models list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Lifecycle = Literal["active", "deprecated", "retired"]

# ModelInfo.created_at "may be set to an epoch value if the release date is unknown".
UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class ModelEntry:
    """One model the emulator serves (or, when retired, refuses by name)."""

    id: str
    display_name: str
    created_at: str = UNKNOWN_RELEASE
    lifecycle: Lifecycle = "active"
    line: str | None = None
    aliases: tuple[str, ...] = ()
    max_tokens: int = 64_000
    max_input_tokens: int = 200_000

    def info(self) -> dict[str, Any]:
        """The ``ModelInfo`` object as ``GET /v1/models/{id}`` returns it."""
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "lifecycle": self.lifecycle,
            "deprecated_at": None,
            "retires_at": None,
            "line": self.line,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_tokens,
            "capabilities": None,
        }


def _m(model_id: str, name: str, line: str, **kwargs: Any) -> ModelEntry:
    return ModelEntry(id=model_id, display_name=name, line=line, **kwargs)


# Newest first, the order in which the API lists models.
DEFAULT_MODELS: tuple[ModelEntry, ...] = (
    _m("claude-fable-5-2", "Claude Fable 5.2", "fable"),
    _m("claude-mythos-5-2", "Claude Mythos 5.2", "mythos"),
    _m("claude-haiku-5-5", "Claude Haiku 5.5", "haiku"),
    _m("claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet"),
    _m("claude-opus-5-5", "Claude Opus 5.5", "opus", max_tokens=128_000),
    _m("claude-fable-5-1", "Claude Fable 5.1", "fable"),
    _m("claude-mythos-5-1", "Claude Mythos 5.1", "mythos"),
    _m("claude-sonnet-5", "Claude Sonnet 5", "sonnet"),
    _m("claude-fable-5", "Claude Fable 5", "fable"),
    _m("claude-mythos-5", "Claude Mythos 5", "mythos"),
    _m("claude-opus-5", "Claude Opus 5", "opus", max_tokens=128_000),
    _m("claude-opus-4-8", "Claude Opus 4.8", "opus", max_tokens=128_000),
    _m("claude-opus-4-7", "Claude Opus 4.7", "opus", max_tokens=128_000),
    _m("claude-mythos-preview", "Claude Mythos Preview", "mythos", lifecycle="deprecated"),
    _m("claude-opus-4-6", "Claude Opus 4.6", "opus", max_tokens=128_000),
    _m("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet"),
    _m(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "opus",
        created_at="2025-11-01T00:00:00Z",
        lifecycle="deprecated",
        aliases=("claude-opus-4-5",),
    ),
    _m(
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "haiku",
        created_at="2025-10-01T00:00:00Z",
        aliases=("claude-haiku-4-5",),
    ),
    _m(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "sonnet",
        created_at="2025-09-29T00:00:00Z",
        lifecycle="deprecated",
        aliases=("claude-sonnet-4-5",),
    ),
    _m(
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "opus",
        created_at="2025-08-05T00:00:00Z",
        lifecycle="deprecated",
        aliases=("claude-opus-4-1",),
        max_tokens=32_000,
    ),
    _m(
        "claude-3-5-sonnet-20241022",
        "Claude Sonnet 3.5 (New)",
        "sonnet",
        created_at="2024-10-22T00:00:00Z",
        lifecycle="retired",
        aliases=("claude-3-5-sonnet-latest",),
        max_tokens=8_192,
    ),
    _m(
        "claude-3-5-sonnet-20240620",
        "Claude Sonnet 3.5 (Old)",
        "sonnet",
        created_at="2024-06-20T00:00:00Z",
        lifecycle="retired",
        max_tokens=8_192,
    ),
    _m(
        "claude-3-opus-20240229",
        "Claude Opus 3",
        "opus",
        created_at="2024-02-29T00:00:00Z",
        lifecycle="retired",
        aliases=("claude-3-opus-latest",),
        max_tokens=4_096,
    ),
)


class ModelCatalogue:
    """Looks models up by id or alias and pages through them like ``GET /v1/models``."""

    def __init__(self, models: tuple[ModelEntry, ...]) -> None:
        self.models = models
        self._by_name: dict[str, ModelEntry] = {}
        for entry in models:
            for name in (entry.id, *entry.aliases):
                self._by_name[name] = entry

    def lookup(self, name: str) -> ModelEntry | None:
        """The entry for an id or alias, retired ones included; None when unknown."""
        return self._by_name.get(name)

    def servable(self, name: str) -> ModelEntry | None:
        """The entry a Messages request may use: known and not retired."""
        entry = self.lookup(name)
        return entry if entry is not None and entry.lifecycle != "retired" else None

    def page(
        self,
        *,
        limit: int = 20,
        after_id: str | None = None,
        before_id: str | None = None,
        lifecycles: frozenset[str] = frozenset({"active", "deprecated"}),
    ) -> dict[str, Any]:
        """One page of the list, in the API's ``{data, has_more, first_id, last_id}`` shape."""
        listed = [m for m in self.models if m.lifecycle in lifecycles]
        ids = [m.id for m in listed]
        if after_id is not None:
            start = ids.index(after_id) + 1 if after_id in ids else len(ids)
            window, has_more = listed[start : start + limit], start + limit < len(listed)
        elif before_id is not None:
            end = ids.index(before_id) if before_id in ids else 0
            start = max(0, end - limit)
            window, has_more = listed[start:end], start > 0
        else:
            window, has_more = listed[:limit], limit < len(listed)
        return {
            "data": [m.info() for m in window],
            "has_more": has_more,
            "first_id": window[0].id if window else None,
            "last_id": window[-1].id if window else None,
        }
