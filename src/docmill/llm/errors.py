"""Errors of ``docmill.llm``: what went wrong with a call, and whether waiting can fix it.

::

    LLMError                          root of every error this package raises
    ├── RetryableLLMError             come back after ``retry_after_s``; no attempt is spent
    │   ├── RateLimited               429, or the shared rate limiter says wait longer than ~2 s
    │   ├── Overloaded                529: the API is overloaded right now
    │   └── ProviderUnavailable       5xx, 408, a connection reset, a call that timed out
    │       └── ProviderUnreachable   no connection at all: refused, DNS failure, connect timeout
    ├── PermanentLLMError             ``reason`` is one sentence for the user; retrying cannot fix it
    │   ├── AuthenticationFailed      401/403, or no key configured
    │   ├── ModelUnavailable          404 on the model: retired (names its successor) or unknown
    │   ├── SpendLimitReached         credit balance, billing or spend limit exhausted
    │   ├── InvalidRequest            400/413/422: the request itself is wrong (too long, bad field)
    │   └── RequestExceedsLimit       one request needs more input tokens than the model's
    │                                 per-minute limit: it would be refused (429) for ever
    └── MalformedOutput               JSON was asked for and the answer held none; ``response``
                                      carries the usage and cost already paid; a new attempt may help

The queue side maps them: a ``RetryableLLMError`` releases the job for ``retry_after_s``
without spending an attempt, a ``PermanentLLMError`` fails the document at once with
``reason``, anything else (``MalformedOutput`` included) spends an attempt. Waiting for a
``ProviderUnreachable`` is bounded: once the provider has not been reached for
``LLMSettings.unreachable_timeout_s``, the document fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docmill.llm.types import LLMResponse

DEFAULT_RETRY_AFTER_S = 5.0
"""Used when a 429/529 carries no ``retry-after`` header."""
UNAVAILABLE_RETRY_AFTER_S = 10.0
"""Used for 5xx answers, connection failures and timeouts."""


class LLMError(Exception):
    """Root of the errors raised by ``docmill.llm``."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class RetryableLLMError(LLMError):
    """The provider cannot answer now; ask again after ``retry_after_s`` (no attempt spent)."""

    default_retry_after_s = DEFAULT_RETRY_AFTER_S

    def __init__(
        self,
        message: str = "",
        *,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.retry_after_s = float(self.default_retry_after_s if retry_after_s is None else retry_after_s)
        super().__init__(message or self._default_message(), request_id=request_id)

    def _default_message(self) -> str:
        return f"the LLM provider asked to retry in {self.retry_after_s:.1f} s"


class RateLimited(RetryableLLMError):
    """A rate limit: the API answered 429, or the shared limiter would wait longer than it may sleep.

    ``from_limiter`` is True when no API call was made.
    """

    def __init__(
        self,
        message: str = "",
        *,
        retry_after_s: float | None = None,
        request_id: str | None = None,
        from_limiter: bool = False,
    ) -> None:
        self.from_limiter = from_limiter
        super().__init__(message, retry_after_s=retry_after_s, request_id=request_id)

    def _default_message(self) -> str:
        who = "the shared rate limiter" if self.from_limiter else "the API"
        return f"rate limited by {who}; retry in {self.retry_after_s:.1f} s"


class Overloaded(RetryableLLMError):
    """The API answered 529 (overloaded)."""

    def _default_message(self) -> str:
        return f"the API is overloaded; retry in {self.retry_after_s:.1f} s"


class ProviderUnavailable(RetryableLLMError):
    """A 5xx or 408 answer, a connection lost mid-call, or a call that timed out once connected."""

    default_retry_after_s = UNAVAILABLE_RETRY_AFTER_S

    def _default_message(self) -> str:
        return f"the LLM provider is unavailable; retry in {self.retry_after_s:.1f} s"


class ProviderUnreachable(ProviderUnavailable):
    """No connection could be made: refused, the host name did not resolve, the connect timed out.

    ``base_url`` is where the provider was looked for (any password masked) and
    ``base_url_setting`` the setting that moves it, so the user can be told what to check.
    """

    def __init__(
        self,
        message: str = "",
        *,
        base_url: str,
        base_url_setting: str,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.base_url_setting = base_url_setting
        super().__init__(message, retry_after_s=retry_after_s, request_id=request_id)

    def _default_message(self) -> str:
        return f"cannot reach the LLM provider at {self.base_url}; retry in {self.retry_after_s:.1f} s"


class PermanentLLMError(LLMError):
    """Retrying cannot help; ``reason`` tells the user what happened and what to do."""

    def __init__(self, reason: str, *, request_id: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason, request_id=request_id)


class AuthenticationFailed(PermanentLLMError):
    """The key was rejected (401/403) or none is configured."""


class ModelUnavailable(PermanentLLMError):
    """The model is retired or unknown (404); ``reason`` names it and a current model."""

    def __init__(
        self, reason: str, *, model: str, retired: bool = False, request_id: str | None = None
    ) -> None:
        self.model = model
        self.retired = retired
        super().__init__(reason, request_id=request_id)


class SpendLimitReached(PermanentLLMError):
    """The account's credit balance, billing or spend limit stops further calls."""


class InvalidRequest(PermanentLLMError):
    """The request itself is wrong (400/413/422): too long, a bad field, max_tokens too high."""


class RequestExceedsLimit(PermanentLLMError):
    """One request needs more input tokens than the model allows per minute, so no wait can
    ever let it through; raised before the call (or instead of the API's 429) from limits
    the API reported or the operator configured, never from the built-in defaults alone."""

    def __init__(
        self, *, model: str, needed_tokens: int, limit_per_min: float, request_id: str | None = None
    ) -> None:
        self.model = model
        self.needed_tokens = needed_tokens
        self.limit_per_min = limit_per_min
        super().__init__(
            f"A call to {model} needs {needed_tokens:,} input tokens; the limit is "
            f"{limit_per_min:,.0f} per minute, so the API would refuse it for ever; choose a model "
            "or an API tier with a higher input-token limit.",
            request_id=request_id,
        )


class MalformedOutput(LLMError):
    """JSON output was asked for and the answer held no JSON object.

    ``response`` is the answer as received (its text unparsed), so the cost already paid
    is not lost; a new attempt may produce valid JSON.
    """

    def __init__(self, message: str, *, response: LLMResponse) -> None:
        self.response = response
        super().__init__(message, request_id=response.request_id)
