"""Rate-limit bookkeeping the emulators enforce: sliding windows and concurrency gates.

Windows are keyed (per realm, per tenant, per token) and use the emulator's clock.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass

from emulators.clock import Clock


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the oldest counted call leaves the window


class SlidingWindow:
    """At most `limit` calls per `seconds` per key."""

    def __init__(self, clock: Clock, limit: int, seconds: float, name: str):
        self.clock, self.limit, self.seconds, self.name = clock, limit, seconds, name
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> Verdict:
        """Count one call if the window allows it; say how much is left either way."""
        now = self.clock.time()
        with self._lock:
            calls = self._calls[key]
            while calls and calls[0] <= now - self.seconds:
                calls.popleft()
            allowed = len(calls) < self.limit
            if allowed:
                calls.append(now)
            reset_at = (calls[0] + self.seconds) if calls else now + self.seconds
            return Verdict(allowed, self.limit, max(0, self.limit - len(calls)), reset_at)

    def peek(self, key: str) -> Verdict:
        now = self.clock.time()
        with self._lock:
            calls = [t for t in self._calls[key] if t > now - self.seconds]
            reset_at = (calls[0] + self.seconds) if calls else now + self.seconds
            return Verdict(len(calls) < self.limit, self.limit, max(0, self.limit - len(calls)), reset_at)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class ConcurrencyGate:
    """At most `limit` requests in flight per key."""

    def __init__(self, limit: int):
        self.limit = limit
        self._in_flight: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def enter(self, key: str) -> bool:
        with self._lock:
            if self._in_flight[key] >= self.limit:
                return False
            self._in_flight[key] += 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight[key] - 1)
