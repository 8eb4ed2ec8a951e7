"""Counting every job of a crash run: what the handlers recorded (bench_jobs.py) against what
was dispatched and what the failed store holds. Shared by chaos.py and supervise_chaos.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tally:
    dispatched: int
    completed: int  # distinct ids whose handler finished
    failed: int  # in the failed store
    executions: int  # handler runs, duplicates included

    @property
    def lost(self) -> int:
        """Neither completed nor failed: must be 0."""
        return self.dispatched - self.completed - self.failed

    @property
    def duplicates(self) -> int:
        """Extra executions: at-least-once delivery allows them after a crash; counted, never hidden."""
        return self.executions - self.completed


def read_tally(recorder: Any, ns: str, dispatched: int, failed: int) -> Tally:
    """Read what the handlers recorded under ``ns`` (a redis-py client on the recording database)."""
    return Tally(dispatched, recorder.zcard(f"{ns}:end"), failed, int(recorder.get(f"{ns}:exec") or 0))


def print_tally(tally: Tally) -> None:
    print()
    print(f"dispatched  {tally.dispatched:>8,}")
    print(f"completed   {tally.completed:>8,}")
    print(f"failed      {tally.failed:>8,}")
    print(f"lost        {tally.lost:>8,}")
    print(f"duplicates  {tally.duplicates:>8,}   (extra executions; at-least-once)")
