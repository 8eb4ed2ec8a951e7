"""LLM providers for docmill: Anthropic (Claude), OpenAI-compatible servers, and an offline processor.

Imports only ``docmill.queue`` (DESIGN.md §1). The domain builds a provider with
``build_provider(LLMSettings.from_env())`` and calls ``complete`` / ``count_tokens``;
errors are the ``LLMError`` tree of ``docmill.llm.errors``.
"""

from docmill.llm.errors import (
    AuthenticationFailed,
    InvalidRequest,
    LLMError,
    MalformedOutput,
    ModelUnavailable,
    Overloaded,
    PermanentLLMError,
    ProviderUnavailable,
    RateLimited,
    RetryableLLMError,
    SpendLimitReached,
)
from docmill.llm.models import DEFAULT_MODEL, RETIRED_MODELS, context_window, resolve_model
from docmill.llm.pricing import ModelPrice, PriceTable
from docmill.llm.types import LLMRequest, LLMResponse, Provider, Usage

__all__ = [
    "DEFAULT_MODEL",
    "RETIRED_MODELS",
    "AuthenticationFailed",
    "InvalidRequest",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "MalformedOutput",
    "ModelPrice",
    "ModelUnavailable",
    "Overloaded",
    "PermanentLLMError",
    "PriceTable",
    "Provider",
    "ProviderUnavailable",
    "RateLimited",
    "RetryableLLMError",
    "SpendLimitReached",
    "Usage",
    "context_window",
    "resolve_model",
]
