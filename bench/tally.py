"""Counting every job of a crash run: what the handlers recorded (bench_jobs.py) against what
was dispatched and what the failed store holds. Shared by chaos.py and supervise_chaos.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docmill.queue import backend_from_url


@dataclass(frozen=True)
class Tally:
    dispatched: int
    completed: int  # distinct ids whose handler finished
    failed: int  # in the failed store
    executions: int  # handler runs, duplicates included
    # Ran to the end once, but the ack died with its worker and every later attempt was killed
    # too, so the job is in the failed store as well: at-least-once, not a loss.
    completed_then_failed: int = 0

    @property
    def lost(self) -> int:
        """Neither completed nor failed: must be 0."""
        return self.dispatched - self.completed - self.failed + self.completed_then_failed

    @property
    def duplicates(self) -> int:
        """Extra executions: at-least-once delivery allows them after a crash; counted, never hidden."""
        return self.executions - self.completed


async def failed_bench_ids(url: str, queue: str = "default") -> list[int]:
    """The bench ids (first argument) of the jobs in the failed store."""
    backend = backend_from_url(url)
    await backend.connect()
    try:
        count = await backend.failed_count(queue)
        return [int(job.args[0]) for job in await backend.failed_page(queue, limit=max(count, 1))]
    finally:
        await backend.close()


def read_tally(recorder: Any, ns: str, dispatched: int, failed_ids: list[int]) -> Tally:
    """Read what the handlers recorded under ``ns`` (a redis-py client on the recording database)."""
    completed = {int(member) for member in recorder.zrange(f"{ns}:end", 0, -1)}
    executions = int(recorder.get(f"{ns}:exec") or 0)
    both = len(completed & set(failed_ids))
    return Tally(dispatched, len(completed), len(failed_ids), executions, both)


def print_tally(tally: Tally) -> None:
    print()
    print(f"dispatched  {tally.dispatched:>8,}")
    print(f"completed   {tally.completed:>8,}")
    print(f"failed      {tally.failed:>8,}")
    if tally.completed_then_failed:
        print(f"  of which  {tally.completed_then_failed:>8,}   ran once; its ack died with its worker")
    print(f"lost        {tally.lost:>8,}")
    print(f"duplicates  {tally.duplicates:>8,}   (extra executions; at-least-once)")
