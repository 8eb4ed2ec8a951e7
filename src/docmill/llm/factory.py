"""``build_provider``: the provider the settings ask for, wired to the shared rate limiter."""

from __future__ import annotations

from docmill.llm.circuit import LLMCircuit
from docmill.llm.errors import AuthenticationFailed
from docmill.llm.limits import key_fingerprint
from docmill.llm.models import resolve_model
from docmill.llm.rate_store import RateStore
from docmill.llm.ratelimit import SharedRateLimiter
from docmill.llm.refusals import RefusalCounter
from docmill.llm.settings import LLMSettings
from docmill.llm.types import Provider


def build_provider(settings: LLMSettings, *, rate_store: RateStore | None = None) -> Provider:
    """The provider of ``settings.resolved_provider()``.

    With a ``rate_store`` the Anthropic provider takes every call through a
    ``SharedRateLimiter`` (configured limits, then those the API reports), its buckets and
    learned limits named by a hash of the key (of the URL and key for OpenAI). An
    OpenAI-compatible server is limited only when ``settings.limits`` names its model:
    local servers usually have no limits to keep. Raises ``AuthenticationFailed`` when
    Anthropic is chosen explicitly without a key, ``ValueError`` for OpenAI without a URL.
    The store also holds the Anthropic key's circuit (``docmill.llm.circuit``): a spend-limit,
    billing or credential error stops every worker's calls with that key; and the counts of
    the API's 429 and 529 answers per model (``docmill.llm.refusals``).
    """
    # Providers are imported when chosen: the anthropic SDK alone takes seconds to import,
    # and every CLI command that reads the settings would pay for it.
    chosen = settings.resolved_provider()
    if chosen == "anthropic":
        from docmill.llm.providers.anthropic import AnthropicProvider

        if not settings.anthropic_api_key:
            raise AuthenticationFailed(
                "No Claude API key is set; set CLAUDE_API_KEY (or choose provider extractive)."
            )
        account = key_fingerprint(settings.anthropic_api_key)
        limiter = (
            SharedRateLimiter(rate_store, settings.limits, default=settings.default_limits, account=account)
            if rate_store is not None
            else None
        )
        return AnthropicProvider(
            api_key=settings.anthropic_api_key,
            prices=settings.prices,
            base_url=settings.anthropic_base_url,
            timeout_s=settings.request_timeout_s,
            limiter=limiter,
            max_sleep_s=settings.rate_wait_s,
            circuit=LLMCircuit(rate_store, account) if rate_store is not None else None,
            refusals=RefusalCounter(rate_store) if rate_store is not None else None,
        )
    if chosen == "openai":
        if not settings.openai_base_url:
            raise ValueError("provider openai needs OPENAI_BASE_URL (e.g. http://localhost:8000/v1)")
        model = settings.openai_model
        limited = model is not None and resolve_model(model) in {resolve_model(m) for m in settings.limits}
        limiter = (
            SharedRateLimiter(
                rate_store,
                settings.limits,
                default=settings.default_limits,
                account=key_fingerprint(f"{settings.openai_base_url} {settings.openai_api_key or ''}"),
            )
            if rate_store is not None and limited
            else None
        )
        from docmill.llm.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            base_url=settings.openai_base_url,
            prices=settings.prices,
            api_key=settings.openai_api_key,
            model=model,
            timeout_s=settings.request_timeout_s,
            limiter=limiter,
            max_sleep_s=settings.rate_wait_s,
        )
    from docmill.llm.providers.extractive import ExtractiveProvider

    return ExtractiveProvider()
