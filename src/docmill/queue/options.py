"""Job, queue and worker options, and the one place their precedence is decided.

Precedence, for every option a job can carry (tries, timeout, backoff,
max_exceptions): **the job's own value, else the queue's configuration, else
the worker's default** (Laravel's ``$job->tries ?? $options->maxTries``, made
explicit). ``resolve_options`` is the only function that applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from docmill.queue.errors import ConfigurationError
from docmill.queue.names import check_queue_name

Backoff = int | tuple[int, ...]
T = TypeVar("T")


def normalize_backoff(value: int | float | Sequence[int | float] | str | None) -> Backoff | None:
    """Accept ``5``, ``[1, 5, 30]`` or ``"1,5,30"`` and return an int or a tuple of ints."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise ConfigurationError(f"backoff {value!r} is empty; give seconds like '5' or '1,5,30'")
        try:
            nums = [int(float(p)) for p in parts]
        except ValueError as exc:
            raise ConfigurationError(f"backoff {value!r} must be seconds like '5' or '1,5,30'") from exc
        return nums[0] if len(nums) == 1 else tuple(nums)
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigurationError(f"backoff must not be negative, got {value}")
        return int(value)
    nums = [int(v) for v in value]
    if not nums or any(n < 0 for n in nums):
        raise ConfigurationError(f"backoff list must be non-empty and non-negative, got {value!r}")
    return tuple(nums)


def backoff_delay_s(backoff: Backoff, attempt: int) -> int:
    """Delay before retry number ``attempt`` (1-based); a list's last value repeats."""
    if isinstance(backoff, int):
        return backoff
    index = max(0, min(attempt - 1, len(backoff) - 1))
    return backoff[index]


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What a caller may set when dispatching one job. ``None`` means "not set here"."""

    queue: str | None = None
    delay_s: float = 0.0
    tries: int | None = None
    max_exceptions: int | None = None
    timeout_s: float | None = None
    backoff_s: Backoff | None = None
    retry_until: float | None = None  # epoch seconds; after it the job is failed, not retried
    unique_key: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue_name(self.queue)
        if self.tries is not None and self.tries < 1:
            raise ConfigurationError(f"tries must be at least 1, got {self.tries}")
        if self.max_exceptions is not None and self.max_exceptions < 1:
            raise ConfigurationError(f"max_exceptions must be at least 1, got {self.max_exceptions}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout_s}")
        if self.delay_s < 0:
            raise ConfigurationError(f"delay must not be negative, got {self.delay_s}")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Per-queue defaults (from configuration); ``None`` falls through to the worker."""

    tries: int | None = None
    max_exceptions: int | None = None
    timeout_s: float | None = None
    backoff_s: Backoff | None = None


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Everything one worker process runs with; passed whole, never as loose kwargs.

    Names follow Laravel's ``WorkerOptions`` and the seed's ``queue:work`` flags.
    """

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10
    tries: int = 1
    max_exceptions: int | None = None
    timeout_s: float = 60.0
    backoff_s: Backoff = 0
    sleep_s: float = 3.0
    max_time_s: float = 0.0  # 0 = unlimited
    max_jobs: int = 0  # 0 = unlimited
    # Recycle after the current jobs when RSS exceeds this (0 = off): about twice what the
    # heaviest pipeline worker settles at once its SDKs are loaded (docs/benchmarks.md,
    # "Worker memory"), so a healthy worker is never recycled and a leak still is.
    memory_mb: int = 256
    rest_s: float = 0.0  # pause after each job, per concurrency slot
    stop_when_empty: bool = False
    lease_s: float = 30.0
    stop_grace_s: float = 30.0  # after SIGTERM, how long running jobs may finish
    # How long a job whose handler this worker does not know is put back for a worker that
    # has it (a rolling deploy reaches old workers first) before it fails; 0 fails it at once.
    unknown_handler_wait_s: float = 300.0
    queue_config: Mapping[str, QueueConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        for queue in self.queues:
            check_queue_name(queue, where="queues")
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.tries < 1:
            raise ConfigurationError(f"tries must be at least 1, got {self.tries}")
        if self.lease_s <= 0:
            raise ConfigurationError(f"lease must be positive, got {self.lease_s}")
        if not 0 <= self.unknown_handler_wait_s < float("inf"):
            raise ConfigurationError(
                f"the unknown-handler wait must be 0 or more seconds, got {self.unknown_handler_wait_s}"
            )


@dataclass(frozen=True, slots=True)
class EffectiveOptions:
    """The options a job actually runs with, after precedence was applied."""

    tries: int
    max_exceptions: int | None
    timeout_s: float
    backoff_s: Backoff


def resolve_options(
    *,
    tries: int | None,
    max_exceptions: int | None,
    timeout_s: float | None,
    backoff_s: Backoff | None,
    queue: QueueConfig | None,
    worker: WorkerOptions,
) -> EffectiveOptions:
    """Apply job > queue > worker precedence. The single source of that rule."""
    q = queue or QueueConfig()
    return EffectiveOptions(
        tries=_first(tries, q.tries, worker.tries),
        max_exceptions=_first_optional(max_exceptions, q.max_exceptions, worker.max_exceptions),
        timeout_s=_first(timeout_s, q.timeout_s, worker.timeout_s),
        backoff_s=_first(backoff_s, q.backoff_s, worker.backoff_s),
    )


def _first(job: T | None, queue: T | None, worker: T) -> T:
    if job is not None:
        return job
    if queue is not None:
        return queue
    return worker


def _first_optional(*values: T | None) -> T | None:
    for value in values:
        if value is not None:
            return value
    return None
