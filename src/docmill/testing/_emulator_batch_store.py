"""The emulator's Message Batches: what was submitted, and how each batch ends.

A batch is ``in_progress`` from its creation until ``batch_processing_s`` have passed;
then every request is answered at once (``resolve``: the same checks and replies as
``POST /v1/messages``, so a request the Messages endpoint refuses ends ``errored``, and
an injected fault errors the request it falls on). As the API does, ``request_counts``
show every request as ``processing`` until the whole batch has ended.

    cancel before the answers    ``canceling``, then ``ended`` at the next look: every
                                 request ``canceled``
    ``batch_expiry_s`` passes    ``ended``: every request not yet answered ``expired``
    first                        (set ``batch_processing_s`` above ``batch_expiry_s``)

Batches are kept until deleted or the emulator is reset; each answered request counts
once (``succeeded``), however often the results are read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Resolver = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns one request's ``params`` into its ``result`` object (``succeeded`` or ``errored``)."""


def _rfc3339(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Batch:
    """One submitted batch; ``results`` is filled once it has ended."""

    id: str
    requests: list[tuple[str, dict[str, Any]]]
    created_at: float
    answers_at: float
    expires_at: float
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"

    def counts(self) -> dict[str, int]:
        tally = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.ended_at is None:
            tally["processing"] = len(self.requests)
            return tally
        for line in self.results:
            tally[line["result"]["type"]] += 1
        return tally

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The ``MessageBatch`` object; ``results_url`` only once it has ended."""
        ended = self.ended_at is not None
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts(),
            "created_at": _rfc3339(self.created_at),
            "expires_at": _rfc3339(self.expires_at),
            "ended_at": _rfc3339(self.ended_at),
            "cancel_initiated_at": _rfc3339(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


class BatchStore:
    """Every batch of one emulator, behind one lock; the clock is ``time.time``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._batches: dict[str, Batch] = {}
        self._submitted = 0
        self._succeeded = 0

    def create(
        self,
        batch_id: str,
        requests: list[tuple[str, dict[str, Any]]],
        *,
        processing_s: float,
        expiry_s: float,
    ) -> Batch:
        now = self._clock()
        batch = Batch(batch_id, requests, now, now + processing_s, now + expiry_s)
        with self._lock:
            self._batches[batch_id] = batch
            self._submitted += len(requests)
        return batch

    def look(self, batch_id: str, resolve: Resolver) -> Batch | None:
        """The batch as it is now, ended first if its time has come."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None:
                self._advance(batch, resolve)
            return batch

    def newest_first(self, resolve: Resolver) -> list[Batch]:
        with self._lock:
            batches = sorted(self._batches.values(), key=lambda b: (b.created_at, b.id), reverse=True)
            for batch in batches:
                self._advance(batch, resolve)
            return batches

    def cancel(self, batch_id: str, resolve: Resolver) -> Batch | None:
        """Start cancelling; an ended batch is returned as it is."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            self._advance(batch, resolve)
            if batch.ended_at is None and batch.cancel_initiated_at is None:
                batch.cancel_initiated_at = self._clock()
            return batch

    def delete(self, batch_id: str) -> None:
        with self._lock:
            self._batches.pop(batch_id, None)

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()
            self._submitted = self._succeeded = 0

    def counters(self) -> tuple[int, int, int]:
        """(batches, requests submitted, requests answered and billed)."""
        with self._lock:
            return len(self._batches), self._submitted, self._succeeded

    def _advance(self, batch: Batch, resolve: Resolver) -> None:
        if batch.ended_at is not None:
            return
        now = self._clock()
        if batch.cancel_initiated_at is not None:
            # A cancel that came before the answers leaves nothing to answer.
            self._end(batch, max(batch.cancel_initiated_at, now), lambda _: {"type": "canceled"})
        elif batch.answers_at <= batch.expires_at and now >= batch.answers_at:
            self._end(batch, batch.answers_at, resolve)
        elif now >= batch.expires_at:
            self._end(batch, batch.expires_at, lambda _: {"type": "expired"})

    def _end(self, batch: Batch, at: float, result_of: Resolver) -> None:
        batch.results = [{"custom_id": cid, "result": result_of(params)} for cid, params in batch.requests]
        batch.ended_at = at
        self._succeeded += sum(1 for line in batch.results if line["result"]["type"] == "succeeded")
