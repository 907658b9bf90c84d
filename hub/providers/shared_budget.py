"""One rate budget per provider account, shared by every process that uses the database.

A provider's published limit belongs to the account (QuickBooks: 500 requests/minute per
realm), not to a process. `RateBudget` (ratebudget.py) counts in one process, so four runs on
one realm could each spend the realm's 500 and the provider would answer a storm of 429s.
`SharedRateBudget` keeps the count in PostgreSQL, which every hub process on every host
already shares: the table `rate_budget` and the function `rate_budget_take` (migration 0011).

How it counts, and why:
- **a sliding window of 60 slots per limit** (a counter per 1/60 of the window, 61 kept), not
  a token bucket: the providers count in sliding windows (a day for Xero's 5,000), and a
  bucket that may burst its whole capacity lets up to twice the limit through in one of
  their windows, while one that bursts little paces a daily quota to one call every 17 s.
  The slots over-count by at most one slot, so the count never falls short of the
  provider's: at a steady rate 60/61 of the limit is usable, and a burst is allowed.
  An exact log of call times would cost a row (or an array element) per call: 5,000 a day
  per Xero tenant, rewritten on every call.
- **one round trip per call**: `SELECT * FROM rate_budget_take(provider, account)` locks the
  account's rows (`FOR UPDATE`, so concurrent takers queue on the row, not on a table or an
  advisory lock), slides the counters, and either counts the call in every window at once
  (Xero's minute and day) or counts nothing and answers how long to wait. Reserving a batch
  of calls per process would save round trips but strand calls in a process that stops
  needing them; a round trip costs well under a millisecond against a provider call of tens
  to hundreds (bench/rate_budget.py measures it).
- **a margin on every window** (`MARGIN_S`, a quarter second): a call is counted when it is
  taken, and reaches the provider later by a delay that varies (queues, the network, the
  provider's own); the provider counts arrivals. Two calls taken a window apart can arrive
  less than a window apart, so the window counted here is a little longer than the provider's
  (a minute's budget loses 0.4 %).
- **the database's clock** (`clock_timestamp()`): processes on several hosts agree on the
  window even if their clocks do not.
- a provider's own "stop" (429 with Retry-After, remaining 0 in its headers) is shared too
  (`blocked_until`): one process's 429 pauses all of them.

A waiter sleeps until the fullest window frees a call (plus a little jitter, so waiters do not
wake in step) and asks again; a wait past `max_wait_s` raises `QuotaExhausted` as the
per-process budget does. An unreachable database is a `TransientProblem`: the transport's
retries and the next run deal with it, the provider is never called uncounted.

Providers without published limits (`Limit`s) keep the per-process `RateBudget`, which only
follows the provider's headers; so do clients built without a database (tests, tools).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from hub.providers.errors import QuotaExhausted, TransientProblem
from hub.providers.ratebudget import Limit, RateBudget, budget_for

SLOTS = 60  # per window; must match `n` in rate_budget_take (migration 0011)
MARGIN_S = 0.25  # added to each window: the spread of the delay between taking a call and its arrival
JITTER = 0.1  # a waiter sleeps up to 10 % longer than needed (at most 50 ms more)

_TAKE = sa.text("SELECT wait_s, reason FROM rate_budget_take(:provider, :account)")
_REGISTER = sa.text("""
    INSERT INTO rate_budget AS b (provider, account, window_name, calls, per_seconds, slots, head)
    VALUES (:provider, :account, :window_name, :calls, :per_seconds, :slots, 0)
    ON CONFLICT (provider, account, window_name) DO UPDATE
       SET calls = excluded.calls, per_seconds = excluded.per_seconds,
           slots = CASE WHEN b.per_seconds = excluded.per_seconds THEN b.slots ELSE excluded.slots END,
           head = CASE WHEN b.per_seconds = excluded.per_seconds THEN b.head ELSE excluded.head END
""")
_DROP_OTHERS = sa.text("""
    DELETE FROM rate_budget WHERE provider = :provider AND account = :account AND NOT (window_name = ANY(:names))
""")
_BLOCK = sa.text("""
    UPDATE rate_budget
       SET blocked_until = greatest(coalesce(blocked_until, clock_timestamp()), clock_timestamp() + make_interval(secs => :seconds))
     WHERE provider = :provider AND account = :account
""")


@dataclass
class SharedRateBudget(RateBudget):
    """`RateBudget`'s interface (the transport cannot tell them apart), counted in PostgreSQL."""

    engine: Engine | None = None
    account: str = ""
    margin_s: float = MARGIN_S
    _registered: bool = False

    def __post_init__(self) -> None:
        if self.engine is None or not self.limits:
            raise ValueError("a shared rate budget needs a database engine and at least one limit")

    def acquire(self) -> None:
        while True:
            wait, reason = self._take()
            if wait <= 0:
                return
            if wait > self.max_wait_s:
                raise QuotaExhausted(
                    self.provider,
                    f"the {reason} quota is used up; the next call is possible in {wait / 60:.0f} min",
                    retry_after=wait,
                )
            pause = wait + random.uniform(0, min(wait * JITTER, 0.05))
            self.waited_s += pause
            self.sleep(pause)

    def block_for(self, seconds: float, reason: str) -> None:
        self._run(_BLOCK, seconds=max(0.0, float(seconds)))

    # ---- the database ----------------------------------------------------------------
    def _take(self) -> tuple[float, str]:
        if not self._registered:
            self.register()
        row = self._run(_TAKE)
        if row.wait_s is None:  # the rows are gone (a wiped table): put them back, ask again
            self.register()
            row = self._run(_TAKE)
        return float(row.wait_s or 0.0), row.reason or ""

    def register(self) -> None:
        """Create (or update to the spec's current limits) the account's rows; idempotent."""
        for limit in self.limits:
            self._run(_REGISTER, window_name=limit.name, calls=limit.calls, per_seconds=float(limit.per_seconds) + self.margin_s,
                      slots=[0] * (SLOTS + 1))
        self._run(_DROP_OTHERS, names=[limit.name for limit in self.limits])
        self._registered = True

    def _run(self, statement: sa.TextClause, **params) -> sa.Row | None:
        """One statement in autocommit (no BEGIN/COMMIT round trips); its one row, if any."""
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                result = conn.execute(statement, {"provider": self.provider, "account": self.account, **params})
                return result.one() if result.returns_rows else None
        except DBAPIError as exc:
            raise TransientProblem(self.provider, f"the shared rate budget is unreachable ({type(exc.orig).__name__})") from None


_SHARED: dict[tuple[int, str, str], SharedRateBudget] = {}
_SHARED_LOCK = threading.Lock()


def shared_budget_for(engine: Engine, provider: str, account: str, limits: tuple[Limit, ...],
                      max_wait_s: float = 65.0) -> RateBudget:
    """The budget a client of (provider, account) spends from: shared through `engine` when
    the provider publishes limits, else the per-process one that follows its headers."""
    if not limits:
        return budget_for(provider, account, limits, max_wait_s)
    with _SHARED_LOCK:
        key = (id(engine), provider, account)
        budget = _SHARED.get(key)
        if budget is None or budget.limits != tuple(limits) or budget.engine is not engine:
            budget = _SHARED[key] = SharedRateBudget(provider, tuple(limits), max_wait_s, engine=engine, account=account)
        return budget

