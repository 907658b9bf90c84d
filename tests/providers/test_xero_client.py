"""The Xero client against the Xero emulator over real HTTP."""

import time

import pytest

from emulators.xero import create_emulator
from hub.providers.errors import ConfigurationProblem, QuotaExhausted
from hub.providers.xero.client import XeroClient, XeroDialect, parse_date, validation_messages
from tests.providers.conftest import running, transport_for

TENANT = "a3b1c5d7-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def emulator():
    return create_emulator(contacts=2200, invoices=300, accounts=15)


@pytest.fixture(scope="module")
def base_url(emulator):
    with running(emulator) as url:
        yield url


@pytest.fixture
def client(emulator, base_url):
    emulator.core.faults.reset()
    emulator.set_limits(minute=100_000, day=100_000, reset=True)  # the tests below lower them when they mean to
    transport = transport_for(emulator, base_url, XeroDialect(), "/connect/token", {"tenantId": TENANT})
    yield XeroClient(transport, TENANT)
    transport.close()


def _all_contact_ids(emulator) -> set[str]:
    return {c["ContactID"] for c in emulator.state.contacts.values() if c.get("ContactStatus") != "ARCHIVED"}


def test_connection_check(client):
    assert client.check()["tenant_id"] == TENANT


def test_full_pagination_is_exact(client, emulator):
    seen = [c["ContactID"] for page in client.iter_pages("Contacts") for c in page]
    assert len(seen) == len(set(seen)) == len(_all_contact_ids(emulator))
    assert set(seen) == _all_contact_ids(emulator)


def test_pagination_through_faults_and_token_expiry(client, emulator):
    emulator.core.faults.configure(burst_429=2, retry_after_s=0, error_rate_5xx=0.2, drop_next=2, latency_ms=5, seed=11)
    pages = client.iter_pages("Contacts", page_size=500)
    first = next(pages)
    emulator.core.oauth.expire_access_tokens()
    seen = [c["ContactID"] for c in first] + [c["ContactID"] for page in pages for c in page]
    assert len(seen) == len(set(seen)) and set(seen) == _all_contact_ids(emulator)
    assert emulator.core.faults.injected["drop"] == 2 and client.transport.refreshes >= 2


def test_if_modified_since_after_remote_edits(client, emulator):
    # the window starts on the emulator's clock, moved past every edit the module's other tests
    # made to this shared emulator (a contact created a moment ago would be in a window of "now - 1 s")
    emulator.core.clock.advance(2)
    since = emulator.core.clock.now().replace(microsecond=0)
    some = sorted(_all_contact_ids(emulator))[:3]
    for contact_id in some:
        emulator.state.mutate("update", "Contact", contact_id, {"EmailAddress": f"{contact_id[:8]}@changed.example"})
    changed = [c for page in client.iter_pages("Contacts", modified_since=since) for c in page]
    assert sorted(c["ContactID"] for c in changed) == some
    assert all(parse_date(c["UpdatedDateUTC"]) >= since.replace(microsecond=0) for c in changed)


def test_batch_save_reports_per_item_results(client, emulator):
    taken = next(iter(emulator.state.contacts.values()))["Name"]
    results = client.save("Contacts", [{"Name": "Completely New Supplier Ltd"}, {"Name": taken}], create_only=True)
    assert len(results) == 2
    assert not results[0].get("HasValidationErrors") and results[0]["ContactID"]
    assert results[1]["HasValidationErrors"] and "unique Name" in " ".join(validation_messages(results[1]))


def test_minute_limit_headers_are_respected(client, emulator):
    """With 3 calls a minute left the client slows down on its own instead of hitting 429."""
    emulator.set_limits(minute=3, reset=True)
    client.transport.budget.max_wait_s = 0.5  # a test cannot wait a real minute
    throttled_before = emulator.core.stats()["by_status"].get("429", 0)
    client.check()
    client.check()
    client.check()  # X-MinLimit-Remaining: 0 now
    assert client.transport.budget.remaining["minute"] == 0
    with pytest.raises(QuotaExhausted, match="minute quota"):
        client.check()
    assert emulator.core.stats()["by_status"].get("429", 0) == throttled_before  # we never made Xero say 429


def test_daily_limit_is_a_clear_error_not_an_endless_wait(client, emulator):
    emulator.set_limits(day=2, reset=True)
    client.transport.budget.max_wait_s = 65
    client.check()
    started = time.monotonic()
    with pytest.raises(QuotaExhausted, match="day"):
        client.check()
        client.check()
    assert time.monotonic() - started < 3


def test_unknown_tenant_is_a_configuration_problem(emulator, base_url):
    transport = transport_for(emulator, base_url, XeroDialect(), "/connect/token", {"tenantId": TENANT})
    with pytest.raises(ConfigurationProblem, match="not connected"):
        XeroClient(transport, "00000000-0000-0000-0000-000000000000").check()
    transport.close()
