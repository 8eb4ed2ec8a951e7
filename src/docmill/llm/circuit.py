"""One circuit per API key for the whole cluster: a spend cap or a rejected key stops every call.

When the API refuses a call because of the account (``SpendLimitReached``: spend limit,
credit, billing) or the key (``AuthenticationFailed``: 401, 403), every other call with that
key would be refused too, and each one may still be counted against the account. The first
process to hear it writes a flag in the shared store, ``llm:circuit:<key hash>`` (the key
itself is never stored)::

    {"kind": "spend_limit", "reason": "The Claude API refused the call ...",
     "since": 1767225600.0, "resume": "docmill queue continue-llm"}

Before each Messages call and each token count the provider asks ``LLMCircuit.check``,
which reads the flag at most every ``refresh_s`` (as ``LearnedLimits`` reads the shared
limits) and raises the same permanent error, without calling, while the flag is set. So at
most the calls already in flight, and those started in the second before a process reads the
flag, follow the first refusal. ``docmill queue continue-llm`` clears the flag once the limit
is raised or the key replaced; every process sees that within ``refresh_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docmill.llm.errors import AuthenticationFailed, LLMError, PermanentLLMError, SpendLimitReached
from docmill.llm.limits import key_fingerprint
from docmill.llm.rate_store import FlagStore

log = logging.getLogger("docmill.llm")

REFRESH_S = 1.0
"""How often a process reads the circuit's flag."""
FLAG_PREFIX = "llm:circuit:"
RESUME_COMMAND = "docmill queue continue-llm"
_KINDS: dict[str, type[PermanentLLMError]] = {
    "spend_limit": SpendLimitReached,
    "credentials": AuthenticationFailed,
}


def flag_name(account: str) -> str:
    """The flag of the key whose ``key_fingerprint`` is ``account``."""
    return f"{FLAG_PREFIX}{account or '-'}"


def trips_circuit(error: LLMError) -> bool:
    """Whether every later call with the same key would be refused as ``error`` was."""
    return isinstance(error, (SpendLimitReached, AuthenticationFailed))


@dataclass(frozen=True, slots=True)
class OpenCircuit:
    """A circuit that stops the calls of one key: why, since when (epoch seconds), how to resume."""

    kind: str
    reason: str
    since: float
    resume: str = RESUME_COMMAND

    @property
    def since_text(self) -> str:
        return datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def summary(self) -> str:
        """One line for ``docmill queue status``."""
        return f"LLM calls stopped since {self.since_text}: {self.reason} Resume with: {self.resume}"

    def error(self) -> PermanentLLMError:
        """The error every call with the key raises while the circuit is open."""
        return _KINDS.get(self.kind, SpendLimitReached)(
            f"{self.reason} LLM calls with this key are stopped on every worker since "
            f"{self.since_text}; once that is fixed, run `{self.resume}` and retry the document "
            "(`docmill documents retry ID`)."
        )

    def to_flag(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "since": self.since, "resume": self.resume}

    @classmethod
    def from_flag(cls, data: Mapping[str, Any] | None) -> OpenCircuit | None:
        """The circuit a flag describes; None when the flag is absent (or not one of ours)."""
        if not data:
            return None
        try:
            since = float(data.get("since", 0.0))
        except (TypeError, ValueError):
            since = 0.0
        return cls(
            kind=str(data.get("kind", "spend_limit")),
            reason=str(data.get("reason", "The API refused the calls of this key.")),
            since=since,
            resume=str(data.get("resume", RESUME_COMMAND)),
        )


async def read_circuit(store: FlagStore, account: str) -> OpenCircuit | None:
    """The open circuit of the key ``account`` names (a ``key_fingerprint``), if any."""
    return OpenCircuit.from_flag(await store.get_flag(flag_name(account)))


async def circuit_of_key(store: FlagStore, api_key: str | None) -> OpenCircuit | None:
    """The open circuit of the Claude key ``api_key``; None when closed or no key is set."""
    return await read_circuit(store, key_fingerprint(api_key)) if api_key else None


async def close_circuit(store: FlagStore, account: str) -> OpenCircuit | None:
    """Clear the circuit of ``account``; the circuit that was open, if any."""
    was = await read_circuit(store, account)
    await store.set_flag(flag_name(account), None)
    return was


class LLMCircuit:
    """The circuit of one key (``account``, a ``key_fingerprint``) as one process sees it.

    ``clock`` times ``refresh_s``; ``wall_clock`` dates the trip.
    """

    def __init__(
        self,
        store: FlagStore,
        account: str = "",
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._account = account
        self._refresh_s = refresh_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._open: OpenCircuit | None = None
        self._read_at: float | None = None

    @property
    def flag_name(self) -> str:
        return flag_name(self._account)

    async def check(self) -> None:
        """Raise the circuit's error when it is open; reads the flag at most every ``refresh_s``.
        A store that cannot be read leaves what was known last (the call's own errors follow)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            try:
                self._open = await read_circuit(self._store, self._account)
            except Exception as exc:
                log.warning("llm.circuit_unreadable error=%s", exc)
            self._read_at = now
        if self._open is not None:
            raise self._open.error()

    async def trip(self, error: PermanentLLMError) -> PermanentLLMError:
        """Open the circuit for every process because of ``error``; the error to raise instead
        (the same kind, saying how to resume). A circuit already open keeps its first reason."""
        kind = "credentials" if isinstance(error, AuthenticationFailed) else "spend_limit"
        opened = OpenCircuit(kind=kind, reason=error.reason, since=self._wall_clock())
        self._open, self._read_at = opened, self._clock()
        try:
            current = await read_circuit(self._store, self._account)
            if current is None:
                await self._store.set_flag(self.flag_name, opened.to_flag())
                log.warning("llm.circuit_open kind=%s reason=%s", kind, error.reason)
            else:
                self._open = opened = current
        except Exception as exc:
            log.warning("llm.circuit_not_shared error=%s", exc)
        raised = opened.error()
        raised.request_id = error.request_id
        return raised
