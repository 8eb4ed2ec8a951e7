"""From an HTTP error status to the ``LLMError`` tree, shared by the networked providers.

========================  ==========================================================
status                    error
========================  ==========================================================
401                       AuthenticationFailed (the key was rejected)
403                       AuthenticationFailed (the key may not do this), or
                          SpendLimitReached when the error code is a billing one
402                       SpendLimitReached
404                       ModelUnavailable (retired: says so and names a successor)
408                       ProviderUnavailable
413                       InvalidRequest (too large)
429                       RateLimited(retry-after), or SpendLimitReached for a quota code
529                       Overloaded(retry-after)
500-599                   ProviderUnavailable(retry-after)
400, 422, other 4xx       SpendLimitReached when the message is about credit, billing
                          or a spend limit, else InvalidRequest
========================  ==========================================================

No answer at all is ``ProviderUnreachable`` when no connection could be made
(``is_connect_failure``), else ``ProviderUnavailable``.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from docmill.llm.errors import (
    DEFAULT_RETRY_AFTER_S,
    UNAVAILABLE_RETRY_AFTER_S,
    AuthenticationFailed,
    InvalidRequest,
    LLMError,
    ModelUnavailable,
    Overloaded,
    ProviderUnavailable,
    RateLimited,
    SpendLimitReached,
)
from docmill.llm.models import retirement_message, unknown_model_message

SPEND_ERROR_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
        "organization_on_hold",
        "insufficient_quota",
    }
)
_SPEND_MESSAGE = re.compile(
    r"credit balance|billing|spend(?:ing)? limit|usage limits?|insufficient.quota|quota",
    re.IGNORECASE,
)
MAX_MESSAGE_CHARS = 300


# The transport's errors for a connection that was never made: refused, the host name did not
# resolve, the connect timed out. Matched by class name, as the anthropic SDK may sit on httpx
# or on its own httpx2.
_CONNECT_FAILURES = frozenset({"ConnectError", "ConnectTimeout"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who answered, for the user's sentence: "the Claude API" / "CLAUDE_API_KEY"."""

    label: str
    key_env: str
    model_env: str
    claude_models: bool
    """Whether model names are Claude's, so retired ones can be named as such."""
    base_url_env: str = ""
    """The setting that says where the endpoint is."""


CLAUDE = Endpoint(
    "Claude API",
    "CLAUDE_API_KEY",
    "CLAUDE_DEFAULT_MODEL",
    claude_models=True,
    base_url_env="ANTHROPIC_BASE_URL",
)


def is_connect_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says no connection could be made."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _CONNECT_FAILURES for cls in type(current).__mro__):
            return True
        current = current.__cause__
    return False


def retry_after_s(headers: Mapping[str, str], default: float) -> float:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), else ``default``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
    except ValueError:
        pass
    value = lowered.get("retry-after", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def error_for_status(
    status: int,
    *,
    message: str,
    headers: Mapping[str, str],
    model: str,
    endpoint: Endpoint = CLAUDE,
    error_code: str | None = None,
    request_id: str | None = None,
) -> LLMError:
    """The error for an HTTP error answer; see the module docstring for the table."""
    spend_code = (error_code or "") in SPEND_ERROR_CODES
    spend_message = bool(_SPEND_MESSAGE.search(message))
    detail = _short(message) or f"HTTP {status}"
    if status == 401:
        return AuthenticationFailed(
            f"The {endpoint.label} key was rejected; check {endpoint.key_env}.", request_id=request_id
        )
    if status == 402 or spend_code or (status in {400, 403} and spend_message):
        return SpendLimitReached(
            f"The {endpoint.label} refused the call because of the account's credit, billing or spend "
            f"limit ({detail}); raise the limit or add credit, then retry the document.",
            request_id=request_id,
        )
    if status == 403:
        return AuthenticationFailed(
            f"The {endpoint.label} key is not allowed to do this ({detail}); check {endpoint.key_env} "
            "and its workspace permissions.",
            request_id=request_id,
        )
    if status == 404:
        retired = retirement_message(model) if endpoint.claude_models else None
        if retired is not None:
            return ModelUnavailable(retired, model=model, retired=True, request_id=request_id)
        reason = (
            unknown_model_message(model)
            if endpoint.claude_models
            else f"The model {model!r} is not served by the {endpoint.label} ({detail}); "
            f"check {endpoint.model_env} and the base URL."
        )
        return ModelUnavailable(reason, model=model, request_id=request_id)
    if status == 408:
        return ProviderUnavailable(
            retry_after_s=retry_after_s(headers, UNAVAILABLE_RETRY_AFTER_S), request_id=request_id
        )
    if status == 413:
        return InvalidRequest(
            f"The request is too large for the {endpoint.label} ({detail}); use smaller chunks.",
            request_id=request_id,
        )
    if status == 429:
        return RateLimited(retry_after_s=retry_after_s(headers, DEFAULT_RETRY_AFTER_S), request_id=request_id)
    if status == 529:
        return Overloaded(retry_after_s=retry_after_s(headers, DEFAULT_RETRY_AFTER_S), request_id=request_id)
    if status >= 500:
        return ProviderUnavailable(
            f"The {endpoint.label} failed with HTTP {status}: {detail}",
            retry_after_s=retry_after_s(headers, UNAVAILABLE_RETRY_AFTER_S),
            request_id=request_id,
        )
    if spend_message:
        return SpendLimitReached(
            f"The {endpoint.label} refused the call because of the account's credit, billing or spend "
            f"limit ({detail}); raise the limit or add credit, then retry the document.",
            request_id=request_id,
        )
    return InvalidRequest(f"The {endpoint.label} refused the request: {detail}", request_id=request_id)
