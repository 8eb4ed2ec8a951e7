"""The emulator's Message Batches endpoints, driven by the real ``anthropic`` SDK over HTTP."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from docmill.testing import AnthropicEmulator, EmulatorConfig, digest

MODEL = "claude-haiku-4-5"
KEY = f"sk-emulator-test-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: AnthropicEmulator) -> AnthropicEmulator:
    shared_emulator.reset(EmulatorConfig(api_key=KEY))
    return shared_emulator


@pytest.fixture
def client(emulator: AnthropicEmulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=emulator.url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def request(custom_id: str, text: str = "Summarise the harbour report.", **params: Any) -> Any:
    body = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **params}
    return {"custom_id": custom_id, "params": body}


def ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    deadline = time.monotonic() + 10
    while (batch := client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, batch
        time.sleep(0.02)
    return batch


def test_a_batch_is_in_progress_then_ended_with_every_result_as_jsonl(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.configure(batch_processing_s=0.3)
    created = client.messages.batches.create(requests=[request("first", "One."), request("second", "Two.")])

    assert created.id.startswith("msgbatch_") and created.type == "message_batch"
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 2 and created.request_counts.succeeded == 0
    assert created.ended_at is None and (created.expires_at - created.created_at).total_seconds() == 86400
    with pytest.raises(anthropic.AnthropicError, match="Has it finished processing"):
        list(client.messages.batches.results(created.id))

    batch = ended(client, created.id)
    assert batch.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 2,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch.results_url == f"{emulator.url}/v1/messages/batches/{batch.id}/results"
    assert batch.ended_at is not None and batch.ended_at >= batch.created_at
    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    assert set(results) == {"first", "second"}
    first = results["first"]
    assert first.type == "succeeded"
    assert first.message.model == "claude-haiku-4-5-20251001"
    assert f"Digest: {digest('One.')[:16]}" in first.message.content[0].text  # type: ignore[union-attr]
    assert first.message.usage.service_tier == "batch" and first.message.usage.output_tokens > 0

    # Reading the results again bills nothing more
    list(client.messages.batches.results(batch.id))
    stats = emulator.stats
    assert (stats["batches"], stats["batch_requests"], stats["batch_succeeded"]) == (1, 2, 2)
    assert stats["by_endpoint"].get("POST /v1/messages", 0) == 0


def test_each_request_is_checked_as_the_messages_endpoint_checks_it_and_errors_alone(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.inject("529")
    batch = client.messages.batches.create(
        requests=[
            request("overloaded"),
            request("fine"),
            request("no-model", model="claude-nope-1"),
            request("too-many-tokens", max_tokens=10_000_000),
            request("streaming", stream=True),
        ]
    )
    batch = ended(client, batch.id)

    counts = batch.request_counts
    assert (counts.succeeded, counts.errored) == (1, 4)
    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    errors = {
        cid: (r.error.error.type, r.error.error.message) for cid, r in results.items() if r.type == "errored"
    }
    assert errors == {
        "overloaded": ("overloaded_error", "Overloaded"),
        "no-model": ("not_found_error", "model: claude-nope-1"),
        "too-many-tokens": (
            "invalid_request_error",
            "max_tokens: 10000000 > 64000, which is the maximum allowed number of output tokens for "
            "claude-haiku-4-5-20251001",
        ),
        "streaming": (
            "invalid_request_error",
            "stream: Streaming is not supported for requests within a Message Batch",
        ),
    }
    assert results["fine"].type == "succeeded"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "requests: Field required"),
        ({"requests": []}, "requests: List should have at least 1 item after validation, not 0"),
        ({"requests": [{"params": {}}]}, "requests.0.custom_id: Field required"),
        (
            {"requests": [{"custom_id": "has space", "params": {}}]},
            "requests.0.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            {"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]},
            "requests: custom_id 'a' is used more than once; each must be unique",
        ),
        ({"requests": [{"custom_id": "a"}]}, "requests.0.params: Field required"),
        (
            {"requests": [{"custom_id": "a", "params": []}]},
            "requests.0.params: Input should be a valid dictionary",
        ),
    ],
)
def test_a_malformed_batch_is_refused_whole_with_the_apis_message(
    emulator: AnthropicEmulator, client: anthropic.Anthropic, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.post("/v1/messages/batches", body=body, cast_to=httpx.Response)
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": raised.value.request_id,
    }
    assert emulator.stats["batches"] == 0


def test_cancelling_ends_the_batch_with_its_requests_canceled_and_then_it_can_be_deleted(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.configure(batch_processing_s=3600)
    batch = client.messages.batches.create(requests=[request("a"), request("b")])
    with pytest.raises(anthropic.BadRequestError, match="cancel it first"):
        client.messages.batches.delete(batch.id)

    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None

    done = ended(client, batch.id)
    assert done.request_counts.canceled == 2 and done.request_counts.processing == 0
    assert [line.result.type for line in client.messages.batches.results(batch.id)] == [
        "canceled",
        "canceled",
    ]
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)
    assert emulator.stats["batch_succeeded"] == 0


def test_a_batch_not_answered_before_it_expires_ends_expired(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    emulator.configure(batch_processing_s=3600, batch_expiry_s=0.2)
    batch = ended(client, client.messages.batches.create(requests=[request("late")]).id)

    assert batch.request_counts.expired == 1
    assert batch.ended_at == batch.expires_at
    [line] = list(client.messages.batches.results(batch.id))
    assert line.result.type == "expired"


def test_batches_are_listed_newest_first_a_page_at_a_time(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    ids = [client.messages.batches.create(requests=[request(f"r{i}")]).id for i in range(3)]

    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == [ids[2], ids[1]] and first.has_more
    assert [b.id for b in client.messages.batches.list(limit=2, after_id=ids[1]).data] == [ids[0]]
    assert [b.id for b in client.messages.batches.list()] == ids[::-1]


def test_the_batch_endpoints_want_the_key_and_unknown_batches_are_404(
    emulator: AnthropicEmulator, client: anthropic.Anthropic
) -> None:
    with anthropic.Anthropic(base_url=emulator.url, api_key="sk-wrong", max_retries=0) as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            stranger.messages.batches.create(requests=[request("a")])
        with pytest.raises(anthropic.AuthenticationError):
            stranger.messages.batches.list()
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.batches.retrieve("msgbatch_nope")
    assert raised.value.body["error"] == {
        "type": "not_found_error",
        "message": "message_batch: msgbatch_nope",
    }


def test_batch_knobs_are_set_through_the_admin_endpoint(emulator: AnthropicEmulator) -> None:
    with httpx.Client(base_url=emulator.url) as http:
        answer = http.post("/_emulator/config", json={"batch_processing_s": 5, "batch_expiry_s": 60})
        assert answer.status_code == 200
        assert (answer.json()["batch_processing_s"], answer.json()["batch_expiry_s"]) == (5.0, 60.0)
        assert json.loads(http.get("/_emulator/stats").text)["batches"] == 0
