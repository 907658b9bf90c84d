"""Pure logic of the provider stack: Retry-After parsing, the rate budget, token refresh
coordination, Xero dates. No network here; the emulator tests cover the wire."""

import math
import threading
import time
from datetime import datetime, timezone
from email.utils import formatdate

import httpx
import pytest

from hub.providers.errors import QuotaExhausted, RateLimited, TransientProblem
from hub.providers.quickbooks.client import QuickBooksDialect
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.tokens import MemoryTokenStore, Tokens
from hub.providers.transport import GIVEN_UP, RetrySettings, Transport, retry_after_seconds
from hub.providers.xero.client import parse_date


def test_retry_after_in_seconds_and_as_http_date():
    assert retry_after_seconds("7") == 7.0
    now = time.time()
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_waits_for_the_window_then_goes_on():
    clock = FakeClock()
    budget = RateBudget("x", (Limit(3, 60, "minute"),), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        budget.acquire()
    assert clock.slept == []
    budget.acquire()  # the fourth call waits for the first to leave the window
    assert clock.slept == [pytest.approx(60)]
    assert budget.waited_s == pytest.approx(60)


def test_budget_refuses_to_wait_past_its_limit():
    clock = FakeClock()
    budget = RateBudget("xero", (Limit(2, 86400, "day"),), max_wait_s=65, clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.acquire()
    with pytest.raises(QuotaExhausted, match="day quota is used up"):
        budget.acquire()
    assert clock.slept == []  # a clear error, not an endless wait


def test_budget_obeys_the_provider_headers():
    clock = FakeClock()
    budget = RateBudget("procore", (), clock=clock, sleep=clock.sleep)
    budget.block_for(5, "hour")
    budget.acquire()
    assert clock.slept == [pytest.approx(5)]
    budget.block_for(3600, "hour")
    with pytest.raises(QuotaExhausted, match="hour quota"):
        budget.acquire()


def test_concurrent_refreshers_spend_the_refresh_token_once():
    store = MemoryTokenStore(Tokens(refresh_token="rt-1", access_token="at-0", expires_at=0))
    spent: list[str] = []
    lock = threading.Lock()

    def exchange(refresh_token: str) -> Tokens:
        with lock:
            spent.append(refresh_token)
        time.sleep(0.05)  # both threads are inside refresh at once
        return Tokens(refresh_token=f"{refresh_token}+", access_token="at-new", expires_at=time.time() + 3600)

    stale = store.load()
    results: list[Tokens] = []
    threads = [threading.Thread(target=lambda: results.append(store.refresh(stale, exchange))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spent == ["rt-1"]
    assert {r.access_token for r in results} == {"at-new"}


def test_tokens_repr_is_masked():
    tokens = Tokens(refresh_token="rt-very-secret-refresh-1234", access_token="at-very-secret-access-5678", expires_at=1)
    assert "very-secret" not in repr(tokens) and "very-secret" not in str(tokens)


def test_xero_dates():
    assert parse_date("/Date(1439434356790+0000)/") == datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=timezone.utc)
    assert parse_date("/Date(1439434356790)/").year == 2015
    assert parse_date(None) is None


def test_json_body_parses_pages_and_falls_back_to_httpx_for_what_orjson_refuses():
    from hub.providers.transport import json_body

    page = {"QueryResponse": {"Bill": [{"Id": "1", "TotalAmt": 12.5, "DocNumber": "Ünïcode"}]}}
    assert json_body(httpx.Response(200, json=page)) == page
    utf16 = httpx.Response(200, content='{"a": "ü"}'.encode("utf-16"), headers={"Content-Type": "application/json; charset=utf-16"})
    assert json_body(utf16) == {"a": "ü"}  # orjson reads UTF-8 only; httpx decodes the declared charset
    assert math.isnan(json_body(httpx.Response(200, content=b"{\"n\": NaN}"))["n"])  # json accepts NaN, orjson does not
    with pytest.raises(ValueError):
        json_body(httpx.Response(200, content=b"<html>not json</html>"))


def test_once_an_account_gave_up_its_next_requests_fail_without_calling():
    """A provider outage in a sync run: the first request to the account retries and gives up;
    the run's later requests to it fail at once with the same error (RetrySettings.give_up_for_s),
    another account still tries, and a transport without the setting retries on its own."""
    sent: list[str] = []
    answer = {"status": 503}

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(answer["status"], headers={"Retry-After": "0"} if answer["status"] == 429 else {})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    quick = dict(base_delay_s=0.001, max_delay_s=0.002, max_retry_after_s=1.0)

    def transport(account: str, **settings) -> Transport:
        return Transport(dialect=QuickBooksDialect(), base_url="https://qbo.test", budget=RateBudget("quickbooks", ()),
                         retry=RetrySettings(**{**quick, **settings}), http=http, account=account)

    try:
        with pytest.raises(TransientProblem, match=r"\[HTTP 503\]"):
            transport("quickbooks:1", max_attempts=3, give_up_for_s=60).request("GET", "/accounts")
        assert sent == ["/accounts"] * 3
        with pytest.raises(TransientProblem, match=r"not called: .*\[HTTP 503\] \(gave up after 3 attempts at"):
            transport("quickbooks:1", max_attempts=3, give_up_for_s=60).request("GET", "/vendors")
        assert sent == ["/accounts"] * 3  # nothing sent
        with pytest.raises(TransientProblem):
            transport("quickbooks:2", max_attempts=3, give_up_for_s=60).request("GET", "/other-realm")
        assert sent.count("/other-realm") == 3
        with pytest.raises(TransientProblem):  # the default (web pages, dispatchers): every request retries on its own
            transport("quickbooks:1", max_attempts=2).request("GET", "/default")
        assert sent.count("/default") == 2

        answer["status"] = 429  # a busy account is not a down one: not remembered
        with pytest.raises(RateLimited):
            transport("quickbooks:3", max_attempts=2, give_up_for_s=60).request("GET", "/busy")
        answer["status"] = 200
        assert transport("quickbooks:3", max_attempts=2, give_up_for_s=60).request("GET", "/busy").status_code == 200
    finally:
        GIVEN_UP.clear()
