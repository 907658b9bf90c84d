"""Per-target send pacing inside one dispatcher worker.

Why per target and not per provider: Slack limits chat.postMessage to about one message per
second *per channel* (providers.md 5.1); a workspace-wide gate would make #alerts wait
behind a burst to #ops, and one company's burst would delay another's. So every key (a
Slack channel of one integration, a SendGrid or Twilio account) has its own schedule, and
waiting for one key is an `asyncio.sleep` of that delivery only: other keys, other
routes and other companies go on at once.

Two inputs:
* ``interval``: the pace we keep ourselves (Slack: 1.05 s per channel, counted from when a
  request really left), so we rarely meet a 429;
* ``hold(key, seconds)``: what a provider told us (a 429's Retry-After, SendGrid's reset
  time): nothing more goes to that key until then, from this worker.

Slots are reserved in call order, so messages to one channel leave in the order their
deliveries reached the pacer. A wait longer than ``max_wait`` is not slept: the caller gets
the wait back and records a not-sent attempt due then (the dispatcher's lease must not run
out while a delivery sleeps). Several workers do not share schedules; a 429 from the
provider (with its Retry-After) is what keeps them in line.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Hashable

__all__ = ["Pacer"]


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._next: dict[Hashable, float] = {}  # key -> earliest time of the next send

    def reserve(self, key: Hashable, interval: float, max_wait: float) -> float:
        """Take the key's next slot; return how long to wait for it (0: now). A wait over
        `max_wait` takes nothing and returns the wait (negative: "do not send; due in -w s")."""
        now = self.clock()
        slot = max(now, self._next.get(key, now))
        wait = slot - now
        if wait > max_wait:
            return -wait
        self._next[key] = slot + interval
        if len(self._next) > self.max_keys:  # forget keys whose slots have passed
            self._next = {k: t for k, t in self._next.items() if t > now}
        return wait

    async def wait(self, key: Hashable, interval: float, max_wait: float) -> float | None:
        """Sleep until the key's slot; None when sent on time, else the wait that was too long."""
        wait = self.reserve(key, interval, max_wait)
        if wait < 0:
            return -wait
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    def hold(self, key: Hashable, seconds: float) -> None:
        """The provider asked for a pause: nothing to `key` for `seconds`."""
        until = self.clock() + max(0.0, seconds)
        if until > self._next.get(key, 0.0):
            self._next[key] = until

    def not_before(self, key: Hashable, when: float) -> None:
        """The key's next slot is no earlier than `when` (on the pacer's clock): a send that
        left later than its slot (thread pool, TLS) moves the next one along with it."""
        if when > self._next.get(key, 0.0):
            self._next[key] = when

    def free_at(self, key: Hashable) -> float:
        """Seconds until the key's next slot (0: free now)."""
        return max(0.0, self._next.get(key, 0.0) - self.clock())
