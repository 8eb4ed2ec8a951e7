"""``BatchClient``: docmill's requests through the real SDK's Message Batches, against the emulator."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from docmill.llm.batches import BatchClient, BatchItem, BatchResult, build_batch_client
from docmill.llm.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelUnavailable,
    Overloaded,
    SpendLimitReached,
)
from docmill.llm.pricing import PriceTable
from docmill.llm.settings import LLMSettings
from docmill.llm.types import LLMRequest, Usage
from docmill.testing import AnthropicEmulator, EmulatorConfig

KEY = f"sk-emulator-test-{secrets.token_hex(8)}"
MODEL = "claude-haiku-4-5"
DATED = "claude-haiku-4-5-20251001"


def ask(prompt: str, *, json_output: bool = False, max_tokens: int = 256, model: str = MODEL) -> LLMRequest:
    return LLMRequest(
        model=model, system="You are careful.", prompt=prompt, max_tokens=max_tokens, json_output=json_output
    )


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
async def client(shared_emulator: AnthropicEmulator) -> AsyncIterator[BatchClient]:
    shared_emulator.reset(EmulatorConfig(api_key=KEY, batch_processing_s=0.1))
    batches = BatchClient(api_key=KEY, prices=PriceTable(), base_url=shared_emulator.url)
    yield batches
    await batches.aclose()


async def run(client: BatchClient, requests: dict[str, LLMRequest]) -> dict[str, BatchResult]:
    state = await client.submit([BatchItem(cid, request) for cid, request in requests.items()])
    assert state.status == "in_progress" and state.counts["processing"] == len(requests)
    done = await client.wait(state.id, min_poll_s=0.05)
    assert done.ended
    return {result.custom_id: result async for result in client.results(state.id, requests.get)}


async def test_answers_come_back_by_custom_id_priced_at_the_batch_discount(client: BatchClient) -> None:
    results = await run(client, {"map-0": ask("Part one."), "map-1": ask("Part two.", json_output=True)})

    plain, as_json = results["map-0"], results["map-1"]
    assert (plain.kind, as_json.kind) == ("succeeded", "succeeded")
    assert plain.response is not None and as_json.response is not None
    assert plain.response.text.startswith("Echo: Part one.") and plain.response.model == DATED
    assert set(json.loads(as_json.response.text)) == {"echo", "digest", "summary"}
    usage = plain.response.usage
    full = PriceTable().cost_usd(DATED, Usage(usage.input_tokens, usage.output_tokens))
    assert plain.response.cost_usd == pytest.approx(full / 2) and full > 0


async def test_a_request_the_api_refuses_comes_back_as_the_error_the_provider_would_raise(
    client: BatchClient, shared_emulator: AnthropicEmulator
) -> None:
    shared_emulator.inject("529")
    results = await run(
        client, {"busy": ask("One."), "huge": ask("Two.", max_tokens=10_000_000), "fine": ask("Three.")}
    )

    assert isinstance(results["busy"].error, Overloaded)
    assert isinstance(results["huge"].error, InvalidRequest)
    assert "max_tokens: 10000000 > 64000" in results["huge"].error.reason
    assert results["fine"].kind == "succeeded" and results["fine"].error is None


async def test_results_of_requests_not_asked_about_are_left_out(client: BatchClient) -> None:
    state = await client.submit([BatchItem("map-0", ask("One.")), BatchItem("map-1", ask("Two."))])
    await client.wait(state.id, min_poll_s=0.05)

    seen = [result.custom_id async for result in client.results(state.id, {"map-1": ask("Two.")}.get)]
    assert seen == ["map-1"]


async def test_a_cancelled_batch_ends_with_its_requests_canceled(
    client: BatchClient, shared_emulator: AnthropicEmulator
) -> None:
    shared_emulator.configure(batch_processing_s=3600)
    requests = {"map-0": ask("One.")}
    state = await client.submit([BatchItem("map-0", requests["map-0"])])

    assert (await client.cancel(state.id)).status == "canceling"
    await client.wait(state.id, min_poll_s=0.05)
    assert [r.kind async for r in client.results(state.id, requests.get)] == ["canceled"]


async def test_errors_of_the_calls_are_the_llm_error_tree(
    client: BatchClient, shared_emulator: AnthropicEmulator
) -> None:
    with pytest.raises(ModelUnavailable, match="retired"):
        await client.submit([BatchItem("map-0", ask("One.", model="claude-3-opus-20240229"))])
    shared_emulator.configure(spend_limit_after=0)
    with pytest.raises(SpendLimitReached):
        await client.submit([BatchItem("map-0", ask("One."))])
    stranger = BatchClient(api_key="sk-wrong", prices=PriceTable(), base_url=shared_emulator.url)
    try:
        with pytest.raises(AuthenticationFailed, match="key was rejected"):
            await stranger.retrieve("msgbatch_any")
    finally:
        await stranger.aclose()
    assert shared_emulator.stats["batches"] == 0


def test_only_claude_settings_with_a_key_get_a_batch_client() -> None:
    assert build_batch_client(LLMSettings(provider="extractive")) is None
    assert build_batch_client(LLMSettings(provider="openai", openai_base_url="http://127.0.0.1:1/v1")) is None
    assert build_batch_client(LLMSettings(provider="anthropic")) is None
    assert isinstance(
        build_batch_client(LLMSettings(provider="anthropic", anthropic_api_key=KEY)), BatchClient
    )
