"""How many output tokens a call will produce, learned from the calls that completed.

The shared rate limiter reserves this estimate of a call's output, not its ``max_tokens``
(the most it could produce), and settles to the real count when the answer arrives.
Calls are grouped by model and ``purpose`` (the profile and step that built the request,
such as ``summary:map``): the answers of one purpose have similar lengths.

The estimate of a group is a high quantile (``quantile``, 0.9) of its recent outputs, each
weighted by ``decay ** age`` (the newest has age 0): it follows a change of length within
a few calls, and one long answer among many short ones moves it little. It never exceeds
the request's ``max_tokens``, and it is ``max_tokens`` itself until the group has seen
``min_samples`` answers. An estimate that is too low is safe: the settle charges the
difference and later calls wait for it; one too high holds capacity for one call's length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

DEFAULT_QUANTILE = 0.9
DEFAULT_DECAY = 0.95
DEFAULT_WINDOW = 64
DEFAULT_MIN_SAMPLES = 3


class OutputEstimator:
    """Per group, the exponentially weighted ``quantile`` of the last ``window`` outputs."""

    def __init__(
        self,
        *,
        quantile: float = DEFAULT_QUANTILE,
        decay: float = DEFAULT_DECAY,
        window: int = DEFAULT_WINDOW,
        min_samples: int = DEFAULT_MIN_SAMPLES,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], not {quantile}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], not {decay}")
        self._quantile = quantile
        self._decay = decay
        self._window = max(1, window)
        self._min_samples = max(1, min(min_samples, self._window))
        self._samples: dict[Hashable, deque[int]] = {}

    def estimate(self, group: Hashable, max_tokens: int) -> int:
        """The output tokens to reserve for one call of ``group`` asking for ``max_tokens``."""
        samples = self._samples.get(group)
        if samples is None or len(samples) < self._min_samples:
            return max_tokens
        # Oldest first in the deque, so the newest (age 0) is the last.
        weighted = sorted((value, self._decay**age) for age, value in enumerate(reversed(samples)))
        wanted = self._quantile * sum(weight for _, weight in weighted)
        running = 0.0
        chosen = weighted[-1][0]
        for value, weight in weighted:
            running += weight
            if running >= wanted:
                chosen = value
                break
        return max(1, min(max_tokens, chosen))

    def record(self, group: Hashable, output_tokens: int) -> None:
        """Learn one answer's real output tokens."""
        samples = self._samples.get(group)
        if samples is None:
            samples = self._samples[group] = deque(maxlen=self._window)
        samples.append(max(0, int(output_tokens)))

    def samples(self, group: Hashable) -> int:
        """How many answers of ``group`` the estimate rests on."""
        return len(self._samples.get(group, ()))
