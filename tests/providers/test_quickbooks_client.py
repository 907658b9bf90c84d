"""The QuickBooks client against the QuickBooks emulator over real HTTP."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from emulators.quickbooks import create_emulator
from hub.providers.errors import DuplicateRecord, QuotaExhausted, StaleVersion
from hub.providers.quickbooks.client import QuickBooksClient, QuickBooksDialect
from tests.providers.conftest import qbo_rows, running, transport_for

REALM = "9130350000000001"


@pytest.fixture(scope="module")
def emulator():
    return create_emulator(vendors=2500, invoices=50, accounts=10)


@pytest.fixture(scope="module")
def base_url(emulator):
    with running(emulator) as url:
        yield url


@pytest.fixture
def client(emulator, base_url):
    emulator.core.faults.reset()
    transport = transport_for(emulator, base_url, QuickBooksDialect(), "/oauth2/v1/tokens/bearer", {"realmId": REALM})
    yield QuickBooksClient(transport, REALM)
    transport.close()


def _all_vendor_ids(emulator) -> set[str]:
    return set(qbo_rows(emulator, "Vendor"))


def test_connection_check(client):
    assert client.check()["realm_id"] == REALM


def test_full_pull_is_exact_and_includes_retired_vendors(client, emulator):
    retired = emulator.state.mutate("deactivate", "Vendor", "7")
    assert retired["Active"] is False
    seen = [v["Id"] for page in client.iter_query("Vendor") for v in page]
    assert len(seen) == len(set(seen))
    assert set(seen) == _all_vendor_ids(emulator)
    assert "7" in seen and len(seen) >= 2500
    assert client.count("Vendor", "Active IN (true, false)") == len(seen)


def test_pull_through_429s_5xx_latency_drops_and_token_expiry(client, emulator, no_secrets_in_logs):
    emulator.core.faults.configure(burst_429=2, retry_after_s=0, error_rate_5xx=0.2, latency_ms=10, drop_next=2, seed=3)
    pages = client.iter_query("Vendor")
    first = next(pages)
    emulator.core.oauth.expire_access_tokens()
    seen = [v["Id"] for v in first] + [v["Id"] for page in pages for v in page]
    assert len(seen) == len(set(seen)) and set(seen) == _all_vendor_ids(emulator)
    assert emulator.core.faults.injected["drop"] == 2 and client.transport.refreshes >= 2
    tokens = client.transport._tokens
    logged = "\n".join(r.getMessage() for r in no_secrets_in_logs.records)
    assert "retry" in logged  # the retries were logged...
    for secret in (tokens.access_token, tokens.refresh_token, "hub-demo-secret"):
        assert secret not in logged  # ...without a token or the client secret


def test_incremental_by_cdc_with_deletes(client, emulator):
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    emulator.state.mutate("update", "Vendor", "11", {"CompanyName": "Renamed Co"})
    created = emulator.state.mutate("create", "Vendor", fields={"DisplayName": "Brand New Vendor LLC"})
    invoice_id = next(iter(client.iter_query("Invoice", page_size=5)))[0]["Id"]
    emulator.state.mutate("delete", "Invoice", invoice_id)
    changed, response_time = client.cdc(["Vendor", "Invoice"], since)
    assert {v["Id"] for v in changed["Vendor"]} >= {"11", created["Id"]}
    deleted = [i["Id"] for i in changed["Invoice"] if i.get("status") == "Deleted"]
    assert deleted == [invoice_id]
    assert response_time


def test_incremental_by_query_on_last_updated_time(client, emulator):
    mark = datetime.now(timezone.utc) - timedelta(seconds=1)
    emulator.state.mutate("update", "Vendor", "12", {"CompanyName": "Queried Co"})
    where = f"Metadata.LastUpdatedTime >= '{mark.strftime('%Y-%m-%dT%H:%M:%S+00:00')}'"
    ids = {v["Id"] for page in client.iter_query("Vendor", where=where) for v in page}
    assert "12" in ids and len(ids) < 10


def test_stale_sync_token_and_duplicate_display_name(client, emulator):
    vendor = client.read("Vendor", "20")
    emulator.state.mutate("update", "Vendor", "20", {"CompanyName": "Changed by a user"})  # bumps SyncToken
    with pytest.raises(StaleVersion) as stale:
        client.update("Vendor", {"Id": "20", "SyncToken": vendor["SyncToken"], "CompanyName": "Ours"})
    assert stale.value.code == "5010"
    fresh = client.read("Vendor", "20")
    updated = client.update("Vendor", {"Id": "20", "SyncToken": fresh["SyncToken"], "CompanyName": "Ours"})
    assert int(updated["SyncToken"]) == int(fresh["SyncToken"]) + 1
    taken = client.read("Vendor", "21")["DisplayName"]
    with pytest.raises(DuplicateRecord) as duplicate:
        client.create("Vendor", {"DisplayName": taken})
    assert duplicate.value.code == "6240"


@pytest.mark.parametrize("retry_after_format", ["seconds", "http-date"])
def test_retry_after_is_honoured(client, emulator, retry_after_format):
    emulator.core.faults.configure(burst_429=1, retry_after_s=2, retry_after_format=retry_after_format)
    started = time.monotonic()
    assert client.check()["realm_id"] == REALM
    elapsed = time.monotonic() - started
    # told to wait 2 s (an HTTP date has one-second resolution, so more than 1 s)
    assert 0.95 <= elapsed < 5, elapsed
    assert client.transport.retries == 1


def test_minute_limit_beyond_the_wait_cap_is_a_clear_error(client, emulator):
    emulator.minute_window.limit = 3
    emulator.minute_window.reset()
    try:
        for _ in range(3):
            client.check()
        started = time.monotonic()
        with pytest.raises(QuotaExhausted, match="rate limited for 1 min"):
            client.check()  # Retry-After ~60 s is over this client's 2 s cap
        assert time.monotonic() - started < 2
    finally:
        emulator.minute_window.limit = 500
        emulator.minute_window.reset()
