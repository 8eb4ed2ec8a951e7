"""A spend cap stops the cluster: the real ``anthropic`` SDK against the emulator's spend limit.

providers       a cap answer to one process stops another's Messages calls and token
                counts without calling; ``continue-llm`` lets them call again
pipeline        30 reports, two worker processes: at most the calls in flight follow the
                first cap answer, every document ends failed saying how to resume, and
                ``docmill queue status`` says it too
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_end_to_end import MESSAGES
from test_pipeline_faults import API_KEY, ENDED, report, start_pipeline

from docmill.llm import LLMRequest, SpendLimitReached
from docmill.llm.circuit import RESUME_COMMAND, LLMCircuit, circuit_of_key, close_circuit
from docmill.llm.limits import key_fingerprint
from docmill.llm.pricing import PriceTable
from docmill.llm.providers.anthropic import AnthropicProvider
from docmill.llm.rate_store import MemoryRateStore
from docmill.queue import backend_from_url
from docmill.testing import AnthropicEmulator, EmulatorConfig

COUNT = "POST /v1/messages/count_tokens"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(EmulatorConfig(api_key=API_KEY)) as running:
        yield running


def ask() -> LLMRequest:
    return LLMRequest(
        system="You summarise reports.",
        prompt="Summarise the harbour report.",
        model="claude-sonnet-4-5",
        max_tokens=200,
    )


def test_a_cap_answer_to_one_process_stops_every_process_using_the_key(emulator: AnthropicEmulator) -> None:
    emulator.reset(EmulatorConfig(api_key=API_KEY, spend_limit_after=1))
    store = MemoryRateStore()

    def provider() -> AnthropicProvider:
        return AnthropicProvider(
            api_key=API_KEY,
            prices=PriceTable.default(),
            base_url=emulator.url,
            circuit=LLMCircuit(store, key_fingerprint(API_KEY), refresh_s=0.0),
        )

    async def go() -> None:
        first, second = provider(), provider()
        try:
            await first.complete(ask())  # the one call the cap allows
            # When the API answers the next call with the spend limit (429, no retry-after)
            with pytest.raises(SpendLimitReached, match="continue-llm") as cap:
                await first.complete(ask())
            assert "enforced_spend_limit_reached" in cap.value.reason
            asked = dict(emulator.stats["by_endpoint"])
            # Then the other process neither calls nor counts tokens with the key
            with pytest.raises(SpendLimitReached, match="continue-llm"):
                await second.complete(ask())
            with pytest.raises(SpendLimitReached, match="continue-llm"):
                await second.count_tokens(ask())
            assert emulator.stats["spend_limited"] == 1
            assert emulator.stats["by_endpoint"] == asked

            # And once the limit is raised and the circuit closed, both call again
            emulator.configure(spend_limit_after=None)
            await close_circuit(store, key_fingerprint(API_KEY))
            assert (await second.complete(ask())).usage.output_tokens > 0
            assert await first.count_tokens(ask()) > 0
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(go())


def test_a_cap_on_token_counting_trips_the_circuit_too(emulator: AnthropicEmulator) -> None:
    emulator.reset(EmulatorConfig(api_key=API_KEY, spend_limit_after=0))
    store = MemoryRateStore()
    circuit = LLMCircuit(store, key_fingerprint(API_KEY), refresh_s=0.0)
    provider = AnthropicProvider(
        api_key=API_KEY, prices=PriceTable.default(), base_url=emulator.url, circuit=circuit
    )

    async def go() -> None:
        try:
            with pytest.raises(SpendLimitReached):
                await provider.count_tokens(ask())
            with pytest.raises(SpendLimitReached):
                await provider.complete(ask())
        finally:
            await provider.aclose()

    asyncio.run(go())
    assert emulator.stats["spend_limited"] == 1
    assert emulator.stats["by_endpoint"].get(MESSAGES, 0) == 0


def test_thirty_documents_on_two_workers_stop_within_the_calls_in_flight(
    tmp_path: Path, emulator: AnthropicEmulator
) -> None:
    # Given an account whose monthly spend limit is reached after 12 answered calls
    emulator.reset(EmulatorConfig(api_key=API_KEY, latency_s=0.1, spend_limit_after=12))
    chunk_concurrency = 2
    pipeline = start_pipeline(tmp_path, emulator, DOCUMENT_CHUNK_CONCURRENCY=str(chunk_concurrency))
    worker_concurrency = 2
    try:
        pipeline.workers.start(concurrency=worker_concurrency)
        pipeline.workers.start(concurrency=worker_concurrency)

        # When 30 reports of three calls each are uploaded
        ids = pipeline.upload([report(f"cap-{n}") for n in range(30)])
        documents = pipeline.wait(ids)

        # Then at most the calls in flight when the cap was first answered followed it
        stats = emulator.stats
        after_cap = stats["spend_limited"] - 1
        in_flight = 2 * worker_concurrency * chunk_concurrency
        print(f"calls after the first cap answer: {after_cap} (in flight at most {in_flight})")
        print(f"by endpoint: {stats['by_endpoint']}")
        assert stats["spend_limited"] >= 1, [(d.status, d.error_reason) for d in documents][:3]
        assert after_cap <= in_flight, stats

        # And every document ended; those not finished failed saying why and how to resume
        assert all(d.status in ENDED for d in documents)
        failed = [d for d in documents if d.status == "failed"]
        assert failed and len(failed) + sum(d.status == "completed" for d in documents) == 30
        for document in failed:
            assert document.error_reason is not None
            assert "spend limit" in document.error_reason, document.error_reason
            assert f"`{RESUME_COMMAND}`" in document.error_reason

        # And `docmill queue status` says the calls stopped and how to resume
        env = {**os.environ, **pipeline.workers.env}
        shown = subprocess.run(
            [sys.executable, "-m", "docmill", "queue", "status"], env=env, capture_output=True, text=True
        )
        assert "LLM calls stopped since" in shown.stdout, shown.stdout + shown.stderr
        assert f"Resume with: {RESUME_COMMAND}" in " ".join(shown.stdout.split())
        as_json = subprocess.run(
            [sys.executable, "-m", "docmill", "queue", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert json.loads(as_json.stdout)["llm_calls_stopped"]["kind"] == "spend_limit"

        # And `docmill queue continue-llm` clears it for the whole cluster
        resumed = subprocess.run(
            [sys.executable, "-m", "docmill", "queue", "continue-llm"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert resumed.returncode == 0 and "Resumed LLM calls" in resumed.stdout, resumed.stderr

        async def still_open() -> bool:
            backend = backend_from_url(pipeline.settings.queue_url)
            await backend.connect()
            try:
                return await circuit_of_key(backend, API_KEY) is not None
            finally:
                await backend.close()

        assert not asyncio.run(still_open())
    finally:
        pipeline.workers.stop()
