"""The cluster's circuit per API key: a spend-limit or key error stops every process's calls."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from docmill.llm.circuit import (
    RESUME_COMMAND,
    LLMCircuit,
    OpenCircuit,
    circuit_of_key,
    close_circuit,
    flag_name,
    trips_circuit,
)
from docmill.llm.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelUnavailable,
    RateLimited,
    SpendLimitReached,
)
from docmill.llm.limits import key_fingerprint
from docmill.llm.rate_store import MemoryRateStore

KEY = "sk-ant-test-0123456789"
CAP = "The Claude API refused the call because of the account's spend limit (monthly cap)."


class CountingStore(MemoryRateStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes: list[tuple[str, Mapping[str, Any] | None]] = []

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return await super().get_flag(name)

    async def set_flag(self, name: str, data: Mapping[str, Any] | None) -> None:
        self.writes.append((name, data))
        await super().set_flag(name, data)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def circuit(store: MemoryRateStore, clock: Clock, account: str = key_fingerprint(KEY)) -> LLMCircuit:
    return LLMCircuit(store, account, refresh_s=1.0, clock=clock, wall_clock=lambda: 1767225600.0)


def test_only_account_wide_refusals_trip_the_circuit() -> None:
    assert trips_circuit(SpendLimitReached(CAP))
    assert trips_circuit(AuthenticationFailed("The Claude API key was rejected; check CLAUDE_API_KEY."))
    assert not trips_circuit(InvalidRequest("bad field"))
    assert not trips_circuit(ModelUnavailable("retired", model="claude-2"))
    assert not trips_circuit(RateLimited(retry_after_s=1))


def test_a_spend_limit_in_one_process_stops_another_at_its_next_read() -> None:
    async def go() -> None:
        store, clock = CountingStore(), Clock()
        first, second = circuit(store, clock), circuit(store, clock)
        await second.check()  # closed: read once, cached

        # When the first process hears the cap
        raised = await first.trip(SpendLimitReached(CAP, request_id="req_1"))

        # Then it raises the same kind of error, saying how to resume, and so does the flag
        assert isinstance(raised, SpendLimitReached) and raised.request_id == "req_1"
        assert raised.reason.startswith(CAP)
        assert f"`{RESUME_COMMAND}`" in raised.reason and "docmill documents retry" in raised.reason
        [(name, data)] = store.writes
        assert name == flag_name(key_fingerprint(KEY)) == f"llm:circuit:{key_fingerprint(KEY)}"
        assert KEY not in name and KEY not in repr(data)
        assert data == {"kind": "spend_limit", "reason": CAP, "since": 1767225600.0, "resume": RESUME_COMMAND}
        # And the first process refuses at once, without reading again
        reads = store.reads
        with pytest.raises(SpendLimitReached, match="docmill queue continue-llm"):
            await first.check()
        assert store.reads == reads

        # And the second refuses as soon as its cached read is a second old
        await second.check()
        clock.now += 1.0
        with pytest.raises(SpendLimitReached, match="stopped on every worker since 2026-01-01 00:00:00 UTC"):
            await second.check()

    asyncio.run(go())


def test_reads_the_flag_at_most_every_refresh_interval() -> None:
    async def go() -> None:
        store, clock = CountingStore(), Clock()
        one = circuit(store, clock)
        for _ in range(50):
            await one.check()
            clock.now += 0.1
        assert store.reads == 5

    asyncio.run(go())


def test_a_rejected_key_trips_as_credentials_and_the_first_reason_is_kept() -> None:
    async def go() -> None:
        store, clock = CountingStore(), Clock()
        first, second = circuit(store, clock), circuit(store, clock)
        raised = await first.trip(
            AuthenticationFailed("The Claude API key was rejected; check CLAUDE_API_KEY.")
        )
        assert isinstance(raised, AuthenticationFailed)

        later = await second.trip(SpendLimitReached(CAP))

        assert isinstance(later, AuthenticationFailed) and "key was rejected" in later.reason
        assert len(store.writes) == 1
        open_now = await circuit_of_key(store, KEY)
        assert open_now is not None and open_now.kind == "credentials"
        assert open_now.summary().startswith("LLM calls stopped since 2026-01-01 00:00:00 UTC: The Claude")
        assert open_now.summary().endswith(f"Resume with: {RESUME_COMMAND}")

    asyncio.run(go())


def test_resuming_clears_the_flag_and_every_process_calls_again_within_a_second() -> None:
    async def go() -> None:
        store, clock = CountingStore(), Clock()
        one = circuit(store, clock)
        await one.trip(SpendLimitReached(CAP))

        was = await close_circuit(store, key_fingerprint(KEY))

        assert was is not None and was.reason == CAP
        assert await circuit_of_key(store, KEY) is None
        assert await close_circuit(store, key_fingerprint(KEY)) is None
        with pytest.raises(SpendLimitReached):
            await one.check()  # cached for up to a second
        clock.now += 1.0
        await one.check()

    asyncio.run(go())


def test_each_key_has_its_own_circuit_and_no_key_has_none() -> None:
    async def go() -> None:
        store, clock = CountingStore(), Clock()
        await circuit(store, clock).trip(SpendLimitReached(CAP))
        await circuit(store, clock, account=key_fingerprint("sk-ant-other")).check()
        assert await circuit_of_key(store, "sk-ant-other") is None
        assert await circuit_of_key(store, None) is None

    asyncio.run(go())


def test_an_unreadable_store_does_not_stop_the_calls() -> None:
    class Broken(MemoryRateStore):
        async def get_flag(self, name: str) -> dict[str, Any] | None:
            raise ConnectionError("down")

    asyncio.run(circuit(Broken(), Clock()).check())


def test_a_flag_from_elsewhere_reads_with_defaults() -> None:
    opened = OpenCircuit.from_flag({"since": "x"})
    assert opened is not None and opened.kind == "spend_limit" and opened.resume == RESUME_COMMAND
    assert isinstance(opened.error(), SpendLimitReached)
    assert OpenCircuit.from_flag(None) is None
