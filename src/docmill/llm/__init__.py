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
    ProviderUnreachable,
    RateLimited,
    RequestExceedsLimit,
    RetryableLLMError,
    SpendLimitReached,
)
from docmill.llm.factory import build_provider
from docmill.llm.limits import RateLimits
from docmill.llm.models import DEFAULT_MODEL, RETIRED_MODELS, context_window, resolve_model
from docmill.llm.pricing import ModelPrice, PriceTable
from docmill.llm.rate_store import MemoryRateStore, RateStore
from docmill.llm.ratelimit import SharedRateLimiter
from docmill.llm.settings import LLMSettings
from docmill.llm.tokens import estimate_request_tokens, estimate_tokens
from docmill.llm.types import LLMRequest, LLMResponse, Provider, Usage

__all__ = [
    "DEFAULT_MODEL",
    "RETIRED_MODELS",
    "AuthenticationFailed",
    "InvalidRequest",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "LLMSettings",
    "MalformedOutput",
    "MemoryRateStore",
    "ModelPrice",
    "ModelUnavailable",
    "Overloaded",
    "PermanentLLMError",
    "PriceTable",
    "Provider",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "RateLimited",
    "RateLimits",
    "RateStore",
    "RequestExceedsLimit",
    "RetryableLLMError",
    "SharedRateLimiter",
    "SpendLimitReached",
    "Usage",
    "build_provider",
    "context_window",
    "estimate_request_tokens",
    "estimate_tokens",
    "resolve_model",
]
