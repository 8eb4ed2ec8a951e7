"""Jobs reserved ahead of a free slot, so short jobs do not each wait for a round trip.

A worker of short jobs (no-ops, quick I/O) would otherwise reserve one job
per finished job and spend its time on round trips. While the jobs it runs
are short (under 250 ms) the worker keeps a job per slot reserved, two per
slot under 100 ms, and for jobs of a few milliseconds up to about 20 ms of
work if that is more (at most 32); a slot that frees takes the next one at
once. Every job held ahead is one more whose attempt a crash of this worker
spends, which is why longer jobs keep fewer.

The buffer is refilled in one ``reserve`` call, and when matters: a reservation
is a script the backend runs while every other client waits, and its reply
takes the worker a while to read, so in the middle of a burst of finishing
jobs it slows the jobs that come next. The buffer is therefore topped up
once jobs have stopped finishing for a moment (``quiet``), and at once only
when it is down to a quarter. Two jobs per slot let a whole burst of brief
jobs (every slot finishing once) pass without a refill.

While jobs are long (or before any finished), nothing is reserved ahead: a
job must not wait in one busy worker's buffer while another worker is idle.
Buffered jobs are leased like running ones: their leases are renewed, and a
stopping worker puts them back at once without spending their attempt.
"""

from __future__ import annotations

from collections import deque

from docmill.queue.job import Job

SHORT_JOB_S = 0.25  # reserve ahead only while the average job runs shorter than this (one per
# slot: a buffered job then waits at most about one such job for its slot) ...
BRIEF_JOB_S = 0.1  # ... and two per slot below this: a buffered job waits at most about 0.2 s,
# and jobs this short come in bursts that one job ahead per slot would not last through
AHEAD_PER_SLOT = 2
BUFFER_WORK_S = 0.02  # ... or, for very short jobs, about this much of the worker's work ...
MAX_DEPTH = 32  # ... but then no more jobs than this


class Prefetch:
    """The buffer of reserved, not yet started jobs, and how deep it may be."""

    def __init__(self, concurrency: int, short_job_s: float = SHORT_JOB_S) -> None:
        self.concurrency = concurrency
        self.short_job_s = short_job_s
        self.jobs: deque[Job] = deque()
        self.avg_runtime_s: float | None = None

    def observe(self, runtime_s: float) -> None:
        """Learn from one finished job (moving average over roughly the last 20)."""
        avg = self.avg_runtime_s
        self.avg_runtime_s = runtime_s if avg is None else avg + (runtime_s - avg) / 20

    @property
    def depth(self) -> int:
        """How many jobs to hold ahead: none for long jobs, one a slot for short ones and two for
        brief ones, and for very short ones up to ``BUFFER_WORK_S`` of work if that is more, so
        refills come in fewer, larger calls."""
        avg = self.avg_runtime_s
        if avg is None or avg >= self.short_job_s:
            return 0
        by_work = int(BUFFER_WORK_S * self.concurrency / max(avg, 1e-6))
        per_slot = AHEAD_PER_SLOT if avg < BRIEF_JOB_S else 1
        return max(per_slot * self.concurrency, min(by_work, MAX_DEPTH))

    def wanted(self, free_slots: int, *, quiet: bool = False) -> int:
        """How many jobs to reserve now: enough for the free slots and a full buffer, but only
        once the buffer is down to a quarter, or is not full and jobs are ``quiet``."""
        depth, ready = self.depth, len(self.jobs)
        if ready and ready > depth // 4 and not (quiet and ready < depth):
            return 0
        return max(0, free_slots) + depth - ready

    def has_room(self) -> bool:
        """Whether a quiet moment would top the buffer up."""
        return 0 < len(self.jobs) < self.depth

    def remove(self, ids: set[str]) -> list[Job]:
        """Take the jobs with these ids out of the buffer and return them."""
        removed = [job for job in self.jobs if job.id in ids]
        if removed:
            self.jobs = deque(job for job in self.jobs if job.id not in ids)
        return removed

    def take_all(self) -> list[Job]:
        jobs = list(self.jobs)
        self.jobs.clear()
        return jobs
