"""Client-side rate budget per (provider, integration).

Two sources of truth, used together:
- the provider's published limits (`Limit`s in the provider spec: e.g. QuickBooks 500/min,
  Xero 60/min and 5000/day), counted here in a sliding window so we slow down before the
  provider has to say 429;
- what the provider reports in its headers (remaining calls, reset time), which also
  counts calls made by other processes; read after every response by the provider's
  `read_headers` hook.

When the next call would have to wait longer than `max_wait_s` (a daily or hourly quota
used up), `QuotaExhausted` is raised at once: a clear error, not an endless wait.

This budget counts in one process. Clients built for a stored integration (`connect.open_client`)
spend from `SharedRateBudget` instead (shared_budget.py): the same interface, counted in
PostgreSQL so that every process and host shares the account's limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from hub.providers.errors import QuotaExhausted


@dataclass(frozen=True)
class Limit:
    calls: int
    per_seconds: float
    name: str  # "minute", "day", "hour": shown in errors


@dataclass
class RateBudget:
    provider: str
    limits: tuple[Limit, ...] = ()
    max_wait_s: float = 65.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _calls: dict[str, deque] = field(default_factory=dict)
    _blocked_until: float = 0.0  # from headers, on `clock`
    _blocked_reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    waited_s: float = 0.0  # total time spent waiting, for metadata
    remaining: dict[str, int] = field(default_factory=dict)  # as last reported by the provider

    def acquire(self) -> None:
        """Wait until a call is within budget, or raise QuotaExhausted if that is too long."""
        while True:
            with self._lock:
                now = self.clock()
                wait, reason = self._wait_needed(now)
                if wait <= 0:
                    for limit in self.limits:
                        self._calls.setdefault(limit.name, deque()).append(now)
                    return
            if wait > self.max_wait_s:
                raise QuotaExhausted(
                    self.provider,
                    f"the {reason} quota is used up; the next call is possible in {wait / 60:.0f} min",
                    retry_after=wait,
                )
            self.waited_s += wait
            self.sleep(wait)

    def _wait_needed(self, now: float) -> tuple[float, str]:
        wait, reason = 0.0, ""
        if self._blocked_until > now:
            wait, reason = self._blocked_until - now, self._blocked_reason
        for limit in self.limits:
            calls = self._calls.setdefault(limit.name, deque())
            while calls and calls[0] <= now - limit.per_seconds:
                calls.popleft()
            if len(calls) >= limit.calls:
                needed = calls[0] + limit.per_seconds - now
                if needed > wait:
                    wait, reason = needed, limit.name
        return wait, reason

    def block_for(self, seconds: float, reason: str) -> None:
        """The provider said: no calls for `seconds` (remaining hit 0, or a 429)."""
        with self._lock:
            until = self.clock() + max(0.0, seconds)
            if until > self._blocked_until:
                self._blocked_until, self._blocked_reason = until, reason

    def report_remaining(self, name: str, remaining: int) -> None:
        self.remaining[name] = remaining


_BUDGETS: dict[tuple[str, str], RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(provider: str, account: str, limits: tuple[Limit, ...], max_wait_s: float = 65.0) -> RateBudget:
    """One budget per (provider, account) in this process, shared by all its clients."""
    with _BUDGETS_LOCK:
        key = (provider, account)
        if key not in _BUDGETS:
            _BUDGETS[key] = RateBudget(provider, limits, max_wait_s)
        return _BUDGETS[key]
