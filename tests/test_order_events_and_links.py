"""Event identity (dedupe keys) and the Procore client's refusal to follow foreign links."""

import httpx
import pytest

from hub.inbound.events import MalformedEvent, parse
from hub.providers.errors import ConfigurationProblem
from hub.providers.procore.client import ProcoreClient, ProcoreDialect
from hub.providers.ratebudget import RateBudget
from hub.providers.transport import Transport


def test_doordash_order_events_are_named_by_type_and_order():
    create = {"event": {"type": "OrderCreate", "status": "NEW"}, "order": {"id": "o1"}}
    assert parse("doordash", create, b"")[0].event_id == "OrderCreate:o1"


def test_two_different_doordash_adjustments_of_one_order_are_two_events():
    first = {"event": {"type": "OrderAdjust"}, "order": {"id": "o1", "subtotal": 100}}
    second = {"event": {"type": "OrderAdjust"}, "order": {"id": "o1", "subtotal": 80}}
    ids = {parse("doordash", p, b"")[0].event_id for p in (first, second, dict(first))}
    assert len(ids) == 2  # a resent copy of the first is still the first


@pytest.mark.parametrize("payload", [
    {"event_id": "e", "event_type": "orders.notification", "meta": "not-an-object"},
    {"event_id": "e", "event_type": "orders.notification", "meta": {"user_id": "s"}},
    {"event_type": "orders.notification"},
])
def test_malformed_uber_events_are_refused(payload):
    with pytest.raises(MalformedEvent):
        parse("ubereats", payload, b"")


def test_scheduled_uber_orders_create_orders_too():
    event = parse("ubereats", {"event_id": "e", "event_type": "orders.scheduled.notification", "meta": {"resource_id": "o"}}, b"")[0]
    assert event.creates_order and event.order_id == "o"


def test_procore_never_follows_a_paging_link_to_another_host():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[{"id": 1}], headers={"Link": '<https://evil.example/rest/v1.0/x?page=2>; rel="next"'})

    transport = Transport(ProcoreDialect(), "https://api.procore.test", RateBudget("procore"),
                          http=httpx.Client(transport=httpx.MockTransport(handler)))
    pages = ProcoreClient(transport, 1).iter_pages("/rest/v1.0/projects/1/rfis")
    assert next(pages) == [{"id": 1}]
    with pytest.raises(ConfigurationProblem, match="outside the configured API host"):
        next(pages)
    assert all(url.startswith("https://api.procore.test/") for url in seen)
