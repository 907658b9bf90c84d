"""One process of the shared-rate-budget test (tests/providers/test_shared_rate_budget.py):
a QuickBooks client of its own (its own grant, HTTP connection and budget object) that makes
`calls` connection checks on one realm from `start_at` on, as a sync run would. Module-level,
so a spawned process can import it."""

from __future__ import annotations

import time

from hub import db
from hub.providers.errors import RateLimited
from hub.providers.quickbooks.client import QuickBooksClient, QuickBooksDialect
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.shared_budget import SharedRateBudget
from hub.providers.tokens import MemoryTokenStore, OAuthClient, Tokens
from hub.providers.transport import RetrySettings, Transport

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
RETRY = RetrySettings(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, timeout_s=10.0)


def run(database_url: str | None, base_url: str, realm: str, refresh_token: str, client: tuple[str, str],
        limits: tuple[tuple[int, float, str], ...], calls: int, start_at: float) -> dict:
    """Make the calls; the budget is shared through `database_url`, or per process when None."""
    budget_limits = tuple(Limit(*limit) for limit in limits)
    if database_url is None:
        budget = RateBudget("quickbooks", budget_limits, max_wait_s=30.0)
    else:
        budget = SharedRateBudget("quickbooks", budget_limits, max_wait_s=30.0, engine=db.engine(database_url), account=realm)
    transport = Transport(QuickBooksDialect(), base_url, budget, token_store=MemoryTokenStore(Tokens(refresh_token=refresh_token)),
                          oauth=OAuthClient("quickbooks", base_url + TOKEN_PATH, *client), retry=RETRY)
    transport._bearer()  # the token exchange before the start line: only API calls are timed
    api = QuickBooksClient(transport, realm)
    time.sleep(max(0.0, start_at - time.time()))
    done, throttled_out = 0, 0
    for _ in range(calls):
        try:
            api.check()
            done += 1
        except RateLimited:  # retries used up on 429s
            throttled_out += 1
    transport.close()
    return {"done": done, "throttled_out": throttled_out, "retries": transport.retries, "finished_at": time.time()}
