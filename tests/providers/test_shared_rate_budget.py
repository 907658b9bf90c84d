"""One rate budget per provider account, shared by every process (hub/providers/shared_budget.py).

Four processes, real PostgreSQL, real HTTP to the QuickBooks emulator, one realm whose limit is
scaled down from 500/minute to LIMIT per WINDOW seconds so the test takes seconds. The
emulator records every request that reaches its per-realm window, accepted or not.
- shared budget: no 429 storm (at most a couple), every call done, and the requests that
  reached the provider in any WINDOW never exceed LIMIT;
- the same scenario with a budget per process (the old path): the emulator sees a storm of
  429s and more than LIMIT requests in a window, so the first test can fail.
"""

from __future__ import annotations

import multiprocessing
import time
from bisect import bisect_right

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator
from emulators.ratelimit import SlidingWindow
from emulators.serve import serve
from hub import schema
from hub.providers.errors import QuotaExhausted
from hub.providers.ratebudget import Limit
from hub.providers.shared_budget import MARGIN_S, SharedRateBudget, shared_budget_for
from tests.providers import rate_budget_worker
from tests.providers.conftest import CLIENT_ID, CLIENT_SECRET

REALM = "9130350000000777"
LIMIT, WINDOW = 30, 2.0  # the realm's 500/minute, scaled down
PROCESSES, CALLS = 4, 25  # 100 calls: at least 3 windows' worth at the limit


class RecordingWindow(SlidingWindow):
    """The emulator's per-realm window, also noting when each request reached it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: list[float] = []

    def hit(self, key: str):
        self.arrivals.append(self.clock.time())
        return super().hit(key)


def busiest_window(times: list[float], seconds: float) -> int:
    """The most requests that arrived within any `seconds` (the provider's window, (t - s, t])."""
    times = sorted(times)
    return max((i + 1 - bisect_right(times, t - seconds) for i, t in enumerate(times)), default=0)


def four_runs(database_url: str | None):
    emulator = create_emulator(realm_id=REALM, clients={CLIENT_ID: CLIENT_SECRET})
    window = emulator.minute_window = RecordingWindow(emulator.core.clock, LIMIT, WINDOW, "requests per window per realm")
    grants = [emulator.core.oauth.issue_refresh_token(CLIENT_ID, {"realmId": REALM}) for _ in range(PROCESSES)]
    with serve(emulator.app) as base_url, multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        start_at = time.time() + 4.0  # spawned interpreters import the hub first
        jobs = [pool.apply_async(rate_budget_worker.run, (database_url, base_url, REALM, grant, (CLIENT_ID, CLIENT_SECRET),
                                                          ((LIMIT, WINDOW, "minute"),), CALLS, start_at)) for grant in grants]
        results = [job.get(timeout=120) for job in jobs]
    return results, window.arrivals, emulator.core.requests_by_status[429], start_at


MAX_429 = 2  # "no 429 storm": a stray one or two may come from timing at a window's edge


def verdict(throttled: int, arrivals: list[float]) -> dict[str, bool]:
    """The two promises, as the provider saw them."""
    return {"no 429 storm": throttled <= MAX_429, "within the limit": busiest_window(arrivals, WINDOW) <= LIMIT}


def test_four_processes_share_one_realm_budget(database_url, clean_db):
    results, arrivals, throttled, start_at = four_runs(database_url.render_as_string(hide_password=False))
    assert sum(r["done"] for r in results) == PROCESSES * CALLS
    assert verdict(throttled, arrivals) == {"no 429 storm": True, "within the limit": True}, (throttled, busiest_window(arrivals, WINDOW))
    # and the budget is spent, not hoarded: the 100 calls arrive within a few times the
    # 100 / LIMIT windows they need at best (a budget that made every call wait a window would
    # take 25 windows; the slack is for a machine busy with other work)
    span = max(arrivals) - min(arrivals)
    assert span < 4 * PROCESSES * CALLS / LIMIT * (WINDOW + MARGIN_S), span
    rb = schema.rate_budget
    with clean_db.connect() as conn:
        row = conn.execute(sa.select(rb.c.calls, rb.c.per_seconds, rb.c.slots)
                           .where(rb.c.provider == "quickbooks", rb.c.account == REALM)).one()
    assert (row.calls, row.per_seconds) == (LIMIT, WINDOW + MARGIN_S) and 0 < sum(row.slots) <= LIMIT


def test_the_same_checks_fail_with_a_budget_per_process():
    """The old path, each process counting alone: both promises are broken (measured here: 6-12
    429s and 33-35 requests in a window of 30), so the test above can fail."""
    results, arrivals, throttled, _ = four_runs(None)
    assert verdict(throttled, arrivals) == {"no 429 storm": False, "within the limit": False}, (throttled, busiest_window(arrivals, WINDOW))


# ---- one process: the budget's rules, on the real database ------------------------------------
def budget(engine, account: str, *limits: Limit, max_wait_s: float = 5.0) -> SharedRateBudget:
    return SharedRateBudget("xero", limits, max_wait_s=max_wait_s, engine=engine, account=account)


def test_every_window_counts_and_a_used_up_day_raises_at_once(clean_db):
    day = budget(clean_db, "tenant-1", Limit(100, 60, "minute"), Limit(3, 86400, "day"))
    for _ in range(3):
        day.acquire()
    started = time.monotonic()
    with pytest.raises(QuotaExhausted, match="the day quota is used up"):
        day.acquire()
    assert time.monotonic() - started < 1
    # another process's object for the same tenant sees the same count; another tenant does not
    with pytest.raises(QuotaExhausted):
        budget(clean_db, "tenant-1", Limit(100, 60, "minute"), Limit(3, 86400, "day")).acquire()
    budget(clean_db, "tenant-2", Limit(100, 60, "minute"), Limit(3, 86400, "day")).acquire()


def test_a_full_window_waits_for_its_oldest_slot(clean_db):
    waits: list[float] = []
    first = budget(clean_db, "tenant-3", Limit(2, 1.0, "minute"))
    second = SharedRateBudget("xero", (Limit(2, 1.0, "minute"),), max_wait_s=5.0, engine=clean_db, account="tenant-3",
                              sleep=lambda s: (waits.append(s), time.sleep(s)))
    first.acquire(), first.acquire()
    second.acquire()
    assert len(waits) >= 1 and 0.9 + MARGIN_S <= sum(waits) <= 1.3 + MARGIN_S, waits


def test_a_providers_stop_in_one_process_pauses_the_others(clean_db):
    one = budget(clean_db, "tenant-4", Limit(100, 60, "minute"))
    other = budget(clean_db, "tenant-4", Limit(100, 60, "minute"), max_wait_s=5.0)
    one.acquire()
    one.block_for(120, "rate")  # a 429 with Retry-After: 120
    with pytest.raises(QuotaExhausted, match="rate quota"):
        other.acquire()


def test_an_unreachable_database_is_a_transient_problem():
    from hub import db
    from hub.providers.errors import TransientProblem

    nowhere = db.engine("postgresql://postgres@127.0.0.1:1/nothing")
    with pytest.raises(TransientProblem, match="shared rate budget is unreachable"):
        budget(nowhere, "tenant-5", Limit(1, 1, "minute")).acquire()


def test_clients_share_through_the_database_when_the_provider_publishes_limits(engine):
    from hub.providers.ratebudget import RateBudget

    shared = shared_budget_for(engine, "quickbooks", "realm-9", (Limit(500, 60, "minute"),))
    assert isinstance(shared, SharedRateBudget)
    assert shared_budget_for(engine, "quickbooks", "realm-9", (Limit(500, 60, "minute"),)) is shared
    headers_only = shared_budget_for(engine, "slack", "C1", ())
    assert type(headers_only) is RateBudget


def test_open_client_spends_from_the_shared_budget(clean_db, secret_keys):
    from hub import integrations as store
    from hub.crypto import Keyring
    from hub.providers.connect import open_client

    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        integration_id = store.add_integration(
            conn, keyring, company_id=company_id, provider="quickbooks", config={"realm_id": REALM},
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": "r"}, active=True)
    client = open_client(clean_db, keyring, integration_id)
    assert isinstance(client.transport.budget, SharedRateBudget)
    assert client.transport.budget.account == REALM
