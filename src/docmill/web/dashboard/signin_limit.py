"""Failed sign-ins are limited per client address and per user name, in this process.

After ``max_failures`` failures within ``window_s`` from one address (or for one name),
further attempts are refused without checking the password until the oldest failure
leaves the window. A success does not clear the address's count: guessing many names from
one address stays slow.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SignInLimiter:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again; 0 when all may try now."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self.max_failures:
                wait = max(wait, recent[0] + self.window_s - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_keys:  # bounded memory under a flood of names
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k, now)}
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._failures.get(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        return recent
