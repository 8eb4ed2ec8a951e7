"""What crosses between the documents domain and a provider: request, usage, response.

A provider answers one ``LLMRequest`` (a system prompt and one user turn) with one
``LLMResponse`` carrying the text, the token usage the API reported and its cost in
USD from the price table. Every provider (``anthropic``, ``openai``, ``extractive``)
satisfies the ``Provider`` protocol; errors are the ``docmill.llm.errors`` tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """One call: a system prompt and one user turn."""

    model: str
    """An alias (``claude-haiku-4-5``) or dated id; the provider resolves it."""
    system: str
    prompt: str
    """The single user turn."""
    max_tokens: int
    json_output: bool = False
    """Ask for a JSON object; the response text is then that object, serialised."""
    temperature: float = 0.0
    purpose: str = ""
    """What the call is for (``summary:map``): answers of one purpose have similar lengths, so
    the rate limiter learns per purpose how many output tokens to reserve. Never sent."""
    input_tokens: int | None = None
    """The API's count of this request's input when it is known already (the estimate asked
    the API for it): the rate limiter takes it instead of counting again. Never sent."""
    cache_prefix_chars: int = 0
    """How many leading characters of ``prompt`` every call of the same kind shares (a
    document's map instructions): a provider that caches prompts marks the system prompt and
    this prefix for its cache when they reach the model's minimum."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the API counted them (the offline estimate for offline providers)."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """One answer, with what it cost."""

    text: str
    usage: Usage
    model: str
    """The model that answered (the dated id when the API reports one)."""
    provider: str
    """``"anthropic"``, ``"openai"`` or ``"extractive"``."""
    request_id: str | None
    cost_usd: float
    """From the price table and the API's usage; 0.0 when no price is known."""


@runtime_checkable
class Provider(Protocol):
    """Anything that can answer an ``LLMRequest``; built by ``docmill.llm.build_provider``."""

    name: str
    is_offline: bool
    """True for the extractive processor, so results can be labelled as not from a model."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer the request, or raise an ``LLMError``."""
        ...

    async def count_tokens(self, request: LLMRequest) -> int:
        """Input tokens of the request: the API's count when it has one, else the offline estimate."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...
