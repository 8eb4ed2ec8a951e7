"""From HTTP statuses and SDK exceptions to the ``LLMError`` tree: the mapping table."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from docmill.llm import (
    AuthenticationFailed,
    InvalidRequest,
    LLMError,
    ModelUnavailable,
    Overloaded,
    PermanentLLMError,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    RetryableLLMError,
    SpendLimitReached,
)
from docmill.llm.providers._http import error_for_status, retry_after_s
from docmill.llm.providers.anthropic import map_anthropic_error
from docmill.llm.providers.openai_compat import OPENAI

REQUEST = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


def sdk_error(
    cls: type[anthropic.APIStatusError],
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    error_code: str | None = None,
) -> anthropic.APIStatusError:
    error: dict[str, Any] = {"type": "error_type", "message": message}
    if error_code:
        error["details"] = {"error_code": error_code}
    body = {"type": "error", "error": error, "request_id": "req_x"}
    response = httpx2.Response(status, headers={"request-id": "req_x", **(headers or {})}, request=REQUEST)
    return cls(message, response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sdk_error(anthropic.AuthenticationError, 401, "invalid x-api-key"), AuthenticationFailed),
        (sdk_error(anthropic.PermissionDeniedError, 403, "no permission"), AuthenticationFailed),
        (sdk_error(anthropic.NotFoundError, 404, "model: claude-nope"), ModelUnavailable),
        (sdk_error(anthropic.RateLimitError, 429, "rate limit", {"retry-after": "17"}), RateLimited),
        (sdk_error(anthropic.OverloadedError, 529, "Overloaded"), Overloaded),
        (sdk_error(anthropic.InternalServerError, 500, "Internal server error"), ProviderUnavailable),
        (sdk_error(anthropic.InternalServerError, 503, "unavailable"), ProviderUnavailable),
        (
            sdk_error(anthropic.BadRequestError, 400, "Your credit balance is too low to access the API."),
            SpendLimitReached,
        ),
        (
            sdk_error(anthropic.RateLimitError, 429, "limit", error_code="enforced_spend_limit_reached"),
            SpendLimitReached,
        ),
        (sdk_error(anthropic.PaymentRequiredError, 402, "payment required"), SpendLimitReached),
        (sdk_error(anthropic.BadRequestError, 400, "max_tokens: 99999 > 64000"), InvalidRequest),
        (sdk_error(anthropic.ContentTooLargeError, 413, "Request exceeds the maximum size"), InvalidRequest),
        (anthropic.APIConnectionError(request=REQUEST), ProviderUnavailable),
        (anthropic.APITimeoutError(request=REQUEST), ProviderUnavailable),
    ],
)
def test_sdk_exceptions_map_to_the_error_tree(exc: Exception, expected: type[LLMError]) -> None:
    error = map_anthropic_error(exc, "claude-haiku-4-5")

    assert type(error) is expected
    assert isinstance(error, RetryableLLMError | PermanentLLMError)


def test_a_bad_key_tells_the_user_which_setting_to_check() -> None:
    error = map_anthropic_error(sdk_error(anthropic.AuthenticationError, 401, "invalid"), "m")

    assert isinstance(error, AuthenticationFailed)
    assert error.reason == "The Claude API key was rejected; check CLAUDE_API_KEY."
    assert error.request_id == "req_x"


def test_a_404_for_a_retired_model_says_it_is_retired_and_what_to_use() -> None:
    error = map_anthropic_error(
        sdk_error(anthropic.NotFoundError, 404, "model: claude-3-5-sonnet-20241022"),
        "claude-3-5-sonnet-20241022",
    )

    assert isinstance(error, ModelUnavailable)
    assert error.retired and error.model == "claude-3-5-sonnet-20241022"
    assert "retired" in error.reason and "claude-sonnet-4-6" in error.reason


def test_a_404_for_an_unknown_model_names_it() -> None:
    error = map_anthropic_error(sdk_error(anthropic.NotFoundError, 404, "model: x"), "claude-nope-1")

    assert isinstance(error, ModelUnavailable) and not error.retired
    assert "'claude-nope-1'" in error.reason


def test_rate_limits_carry_the_apis_retry_after_or_a_default() -> None:
    with_header = map_anthropic_error(
        sdk_error(anthropic.RateLimitError, 429, "x", {"retry-after": "17"}), "m"
    )
    without = map_anthropic_error(sdk_error(anthropic.OverloadedError, 529, "x"), "m")

    assert isinstance(with_header, RateLimited) and with_header.retry_after_s == 17.0
    assert not with_header.from_limiter
    assert isinstance(without, Overloaded) and without.retry_after_s == 5.0


def test_retry_after_reads_milliseconds_seconds_and_http_dates() -> None:
    assert retry_after_s({"retry-after-ms": "1500"}, 9.0) == 1.5
    assert retry_after_s({"Retry-After": "3"}, 9.0) == 3.0
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 9.0) == 0.0
    assert retry_after_s({"retry-after": "soon"}, 9.0) == 9.0
    assert retry_after_s({}, 9.0) == 9.0


def test_the_openai_endpoint_names_its_own_settings() -> None:
    auth = error_for_status(401, message="bad key", headers={}, model="llama", endpoint=OPENAI)
    missing = error_for_status(404, message="model not found", headers={}, model="llama", endpoint=OPENAI)
    quota = error_for_status(
        429,
        message="You exceeded your quota",
        headers={},
        model="x",
        endpoint=OPENAI,
        error_code="insufficient_quota",
    )

    assert isinstance(auth, AuthenticationFailed) and "OPENAI_API_KEY" in auth.reason
    assert isinstance(missing, ModelUnavailable) and "OPENAI_MODEL" in missing.reason
    assert isinstance(quota, SpendLimitReached)


def raised_from(error: anthropic.APIConnectionError, cause: Exception) -> anthropic.APIConnectionError:
    error.__cause__ = cause  # as the SDK raises it: ``raise ... from`` its transport's error
    return error


@pytest.mark.parametrize(
    "exc",
    [
        raised_from(
            anthropic.APIConnectionError(message="Connection to llm:8443 failed: refused", request=REQUEST),
            httpx2.ConnectError("[Errno 111] Connection refused"),
        ),
        raised_from(
            anthropic.APIConnectionError(message="Connection to llm:8443 failed: unknown", request=REQUEST),
            httpx2.ConnectError("[Errno -2] Name or service not known"),
        ),
        raised_from(anthropic.APITimeoutError(request=REQUEST), httpx2.ConnectTimeout("timed out")),
    ],
    ids=["refused", "dns", "connect-timeout"],
)
def test_a_connection_that_cannot_be_made_is_unreachable_at_the_base_url(exc: Exception) -> None:
    error = map_anthropic_error(exc, "m", base_url="https://user:***@llm:8443")

    assert type(error) is ProviderUnreachable and error.retry_after_s == 10.0
    assert (error.base_url, error.base_url_setting) == (
        "https://user:***@llm:8443",
        "ANTHROPIC_BASE_URL",
    )


@pytest.mark.parametrize(
    "exc",
    [
        raised_from(anthropic.APITimeoutError(request=REQUEST), httpx2.ReadTimeout("timed out")),
        raised_from(
            anthropic.APIConnectionError(message="Connection to llm failed: reset", request=REQUEST),
            httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        ),
    ],
    ids=["read-timeout", "disconnected"],
)
def test_a_call_that_connected_and_then_failed_is_unavailable_not_unreachable(exc: Exception) -> None:
    error = map_anthropic_error(exc, "m")

    assert type(error) is ProviderUnavailable
