"""The real ``anthropic`` SDK (sync and async) against the Messages API emulator."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

import docmill.testing
from docmill.testing import AnthropicEmulator, EmulatorConfig, FaultKind, digest
from docmill.testing.anthropic_emulator import emulator_from_args

MODEL = "claude-haiku-4-5"
PROMPT = "Summarise the quarterly report on harbour logistics in three sentences."
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def api_key() -> str:
    return f"sk-emulator-test-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def shared_emulator(api_key: str) -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=api_key)) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: AnthropicEmulator, api_key: str) -> AnthropicEmulator:
    """One server for the module, back to its initial knobs, full buckets and zero counters."""
    shared_emulator.reset(EmulatorConfig(api_key=api_key))
    return shared_emulator


@pytest.fixture(scope="module")
def shared_client(shared_emulator: AnthropicEmulator, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=shared_emulator.url, api_key=api_key, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def http(shared_emulator: AnthropicEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_emulator.url) as plain_client:
        yield plain_client


@pytest.fixture
def client(emulator: AnthropicEmulator, shared_client: anthropic.Anthropic) -> anthropic.Anthropic:
    return shared_client


def _headers(api_key: str) -> dict[str, str]:
    return {"x-api-key": api_key, "anthropic-version": "2023-06-01"}


def test_exported_names_are_importable() -> None:
    for name in docmill.testing.__all__:
        assert getattr(docmill.testing, name) is not None


def test_plain_message_is_a_deterministic_function_of_the_last_user_message(
    client: anthropic.Anthropic,
) -> None:
    first = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
    again = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)

    text = first.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Echo: Summarise the quarterly report on harbour logistics in\n")
    assert f"Digest: {digest(PROMPT)[:16]}" in text
    assert again.content == first.content
    assert first.model == "claude-haiku-4-5-20251001"  # the alias resolves to the dated id
    assert first.stop_reason == "end_turn"
    assert first.usage.output_tokens > 0
    assert first.id.startswith("msg_") and first._request_id and first._request_id.startswith("req_")


def test_streamed_text_equals_the_plain_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)

    with client.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_stream_sends_the_api_event_sequence(
    emulator: AnthropicEmulator, http: httpx.Client, api_key: str
) -> None:
    body = {"model": MODEL, "max_tokens": 512, "messages": MESSAGES, "stream": True}
    with http.stream("POST", "/v1/messages", json=body, headers=_headers(api_key)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]

    deltas = names.count("content_block_delta")
    assert deltas > 1
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_count_tokens_agrees_with_usage(client: anthropic.Anthropic) -> None:
    system = "You are a careful analyst of shipping documents."
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=MESSAGES)
    message = client.messages.create(model=MODEL, max_tokens=64, system=system, messages=MESSAGES)

    assert (
        counted.input_tokens
        == message.usage.input_tokens
        == docmill.testing.count_input_tokens({"system": system, "messages": MESSAGES})
    )


async def test_async_client_plain_stream_and_count(emulator: AnthropicEmulator, api_key: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=emulator.url, api_key=api_key, max_retries=0) as client:
        plain = await client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
        async with client.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES) as stream:
            streamed = await stream.get_final_text()
        counted = await client.messages.count_tokens(model=MODEL, messages=MESSAGES)

    assert streamed == plain.content[0].text  # type: ignore[union-attr]
    assert counted.input_tokens == plain.usage.input_tokens


def test_models_list_pages_and_hides_retired_models(client: anthropic.Anthropic) -> None:
    listed = [model.id for model in client.models.list(limit=5)]  # auto-pagination over pages of 5
    first_page = client.models.list(limit=5)
    retired = [model.id for model in client.models.list(lifecycle=["retired"])]

    assert first_page.has_more is True and len(first_page.data) == 5
    assert "claude-haiku-4-5-20251001" in listed and "claude-sonnet-4-6" in listed
    assert len(listed) == len(set(listed))
    assert "claude-3-5-sonnet-20241022" not in listed and "claude-3-5-sonnet-20241022" in retired
    info = client.models.retrieve("claude-haiku-4-5")
    assert (info.id, info.display_name, info.lifecycle) == (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "active",
    )


def test_wrong_key_is_an_authentication_error(emulator: AnthropicEmulator) -> None:
    bad = anthropic.Anthropic(
        base_url=emulator.url, api_key=f"sk-wrong-{secrets.token_hex(4)}", max_retries=0
    )

    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": caught.value.request_id,
    }
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


def test_x_api_key_header_works_and_the_version_header_is_required(
    emulator: AnthropicEmulator, http: httpx.Client, api_key: str
) -> None:
    body = {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}

    accepted = http.post("/v1/messages", json=body, headers=_headers(api_key))
    unversioned = http.post("/v1/messages", json=body, headers={"x-api-key": api_key})
    no_max_tokens = http.post(
        "/v1/messages", json={"model": MODEL, "messages": MESSAGES}, headers=_headers(api_key)
    )

    assert accepted.status_code == 200 and accepted.headers["request-id"].startswith("req_")
    assert unversioned.status_code == 400
    assert unversioned.json()["error"]["message"] == "anthropic-version: header is required"
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


def test_empty_messages_is_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=[])

    assert caught.value.type == "invalid_request_error"
    assert caught.value.api_message == "messages: at least one message is required"


def test_retired_model_is_not_found_and_named(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=16, messages=MESSAGES)

    assert caught.value.type == "not_found_error"
    assert caught.value.api_message == "model: claude-3-5-sonnet-20241022"


def test_oversized_request_is_request_too_large(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.configure(max_request_bytes=2_000)

    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x" * 5_000}]
        )

    assert caught.value.type == "request_too_large"


def test_injected_429_carries_a_readable_retry_after(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.configure(fault_retry_after_s=3)
    emulator.inject(FaultKind.RATE_LIMIT)

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert emulator.stats["rate_limited"] == 1


def test_sdk_retry_honours_retry_after_and_then_succeeds(emulator: AnthropicEmulator, api_key: str) -> None:
    # Given one injected 429 asking for a one-second wait
    emulator.inject("429")
    client = anthropic.Anthropic(base_url=emulator.url, api_key=api_key, max_retries=2)

    # When the SDK retries on its own
    started = time.monotonic()
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    elapsed_s = time.monotonic() - started

    # Then it waited as asked and the second attempt succeeded
    assert message.content[0].text.startswith("Echo:")  # type: ignore[union-attr]
    assert elapsed_s >= 1.0
    assert emulator.stats["by_status"] == {"429": 1, "200": 1}


def test_token_bucket_refuses_over_the_request_limit(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.set_limits(rpm=2)
    for _ in range(2):
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "2 requests per minute" in (caught.value.api_message or "")


def test_input_token_limit_is_per_model(emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    emulator.set_limits(itpm=30)
    client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    other = client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES)

    assert other.stop_reason in {"end_turn", "max_tokens"}


def test_overloaded_is_a_529_overloaded_error(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.inject("529")

    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"


def test_injected_500_and_403(emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    emulator.inject(FaultKind.API_ERROR)
    emulator.inject(FaultKind.PERMISSION)

    with pytest.raises(anthropic.InternalServerError) as server_error:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    with pytest.raises(anthropic.PermissionDeniedError) as forbidden:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert (server_error.value.status_code, server_error.value.type) == (500, "api_error")
    assert forbidden.value.type == "permission_error"


def test_mid_stream_error_event_raises_in_the_sdk(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.inject(FaultKind.STREAM_ERROR)
    received: list[str] = []

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)

    assert received, "some text arrives before the error event"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert emulator.stats["faults_injected"] == {"stream_error": 1}


def test_rate_limit_headers_are_present_and_decreasing(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.set_limits(rpm=60, itpm=10_000, otpm=10_000)
    raw = [
        client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        for _ in range(3)
    ]

    for kind in ("requests", "input-tokens", "output-tokens", "tokens"):
        for suffix in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{kind}-{suffix}" in raw[0].headers
    requests_left = [int(r.headers["anthropic-ratelimit-requests-remaining"]) for r in raw]
    input_left = [int(r.headers["anthropic-ratelimit-input-tokens-remaining"]) for r in raw]
    assert requests_left == [59, 58, 57]
    assert input_left[0] > input_left[1] > input_left[2]


def test_latency_knob_delays_answers(emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    emulator.configure(latency_s=0.3)

    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert time.monotonic() - started >= 0.3


def test_json_is_returned_when_the_prompt_asks_for_it(client: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "pages": {"type": "integer"}}}
    prompt = f"Respond with JSON matching this schema: {json.dumps(schema)}\n\nDocument: Annual report 2024"

    message = client.messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": prompt}]
    )

    answer = json.loads(message.content[0].text)  # type: ignore[union-attr]
    assert set(answer) == {"title", "pages"}
    assert isinstance(answer["title"], str) and isinstance(answer["pages"], int)


def test_admin_endpoints_change_knobs_and_report_stats(
    emulator: AnthropicEmulator, http: httpx.Client, client: anthropic.Anthropic
) -> None:
    changed = http.post("/_emulator/config", json={"limits": {"rpm": 600}, "inject": {"500": 1}})

    assert changed.status_code == 200 and changed.json()["limits"]["rpm"] == 600
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    stats = http.get("/_emulator/stats").json()
    assert stats["by_status"] == {"500": 1, "200": 1}
    assert stats["output_tokens"] > 0 and stats["input_tokens"] > 0
    assert http.post("/_emulator/config", json={"nonsense": 1}).status_code == 400


def test_command_line_options_configure_the_emulator(api_key: str) -> None:
    argv = ["--port", "0", "--api-key", api_key, "--latency", "0.01", "--rpm", "600", "--fault", "529=0.25"]

    with emulator_from_args(argv) as served:
        client = anthropic.Anthropic(base_url=served.url, api_key=api_key, max_retries=0)
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    assert raw.headers["anthropic-ratelimit-requests-limit"] == "600"
    assert served.config.latency_s == 0.01
    assert served.config.fault_probabilities == {FaultKind.OVERLOADED: 0.25}
