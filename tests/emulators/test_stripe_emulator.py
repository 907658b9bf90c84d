"""The Stripe emulator through the official `stripe` SDK (StripeClient pointed at it, nothing
else changed): Stripe's conventions (form bodies, expand, paging, errors, idempotency keys),
products and prices, test cards, subscriptions and invoices, test clocks with renewals, trials
and dunning, events and signed webhooks, and the hosted Checkout and portal pages (plain form
POSTs; browser tests are elsewhere)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.registry import run_all
from emulators.serve import serve
from emulators.stripe import DEFAULT_API_KEY, create_emulator
from emulators.stripe.wire import parse_form

pytestmark = pytest.mark.timeout(60)
DAY = 86400


# ---- fixtures ---------------------------------------------------------------------------------------
class Receiver:
    """Records every POST to /hook/{key}; `fail[key] = N` answers the next N with 500."""

    def __init__(self) -> None:
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.fail: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

        async def hook(request: Request) -> Response:
            key, body = request.path_params["key"], await request.body()
            with self.lock:
                self.requests[key].append({"headers": dict(request.headers), "body": body, "at": time.monotonic()})
                if self.fail[key] > 0:
                    self.fail[key] -= 1
                    return Response("boom", status_code=500)
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/hook/{key}", hook, methods=["POST"])])

    def got(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests[key])


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def receiver():
    rec = Receiver()
    with serve(rec.app) as base:
        rec.base = base
        yield rec


def _client(url: str, key: str = DEFAULT_API_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": url, "files": url, "connect": url}, max_network_retries=0)


@pytest.fixture
def served():
    """`served(**options)` -> (emulator, base URL, SDK client), stopped when the test ends."""
    stack = []

    def start(**options):
        emulator = create_emulator(webhook_retry_s=(0.05, 0.05, 0.05), **options)
        context = serve(emulator.app)
        url = context.__enter__()
        stack.append((context, emulator))
        return emulator, url, _client(url)

    yield start
    for context, emulator in reversed(stack):
        emulator.wait_idle(1.0)
        emulator.close()
        context.__exit__(None, None, None)


@pytest.fixture
def stripe_api(served):
    return served()


def _plan(client: stripe.StripeClient, amount: int = 2000, interval: str = "month", name: str = "Pro", **extra) -> Any:
    product = client.v1.products.create(params={"name": name})
    return client.v1.prices.create(params={"product": product.id, "unit_amount": amount, "currency": "usd",
                                           "recurring": {"interval": interval}, **extra})


def _customer(client: stripe.StripeClient, card: str | None = "pm_card_visa", **params) -> tuple[Any, Any]:
    customer = client.v1.customers.create(params={"email": "billing@acme.example", "name": "Acme", **params})
    pm = None
    if card:
        pm = client.v1.payment_methods.attach(card, params={"customer": customer.id})
        client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    return customer, pm


def _clock(client: stripe.StripeClient, start: int = 1_767_225_600) -> Any:  # 2026-01-01 00:00 UTC
    return client.v1.test_helpers.test_clocks.create(params={"frozen_time": start, "name": "billing test"})


def _advance(client: stripe.StripeClient, clock: Any, to: int) -> Any:
    client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})
    return client.v1.test_helpers.test_clocks.retrieve(clock.id)


def _invoices(client, sub_id: str) -> list[Any]:
    return list(client.v1.invoices.list(params={"subscription": sub_id, "limit": 100}).auto_paging_iter())


# =================================================================================================
# conventions
# =================================================================================================
def test_registry_serves_the_stripe_emulator():
    with run_all(["stripe"], base_port=0) as started:
        emulator, url = started["stripe"]
        assert httpx.get(f"{url}/_emulator/health").json()["provider"] == "stripe"
        assert _client(url).v1.customers.list().data == []


def test_form_keys_nest_as_stripe_encodes_them():
    assert parse_form("a[b][c]=1&a[b][d]=2&x=") == {"a": {"b": {"c": "1", "d": "2"}}, "x": ""}
    assert parse_form("items[0][price]=p1&items[0][quantity]=2&items[1][price]=p2") == {
        "items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}]}
    assert parse_form("expand[]=customer&expand[]=latest_invoice") == {"expand": ["customer", "latest_invoice"]}


def test_objects_carry_stripe_ids_livemode_and_created(stripe_api):
    _, _, client = stripe_api
    customer, pm = _customer(client)
    price = _plan(client)
    assert customer.id.startswith("cus_") and pm.id.startswith("pm_") and price.id.startswith("price_")
    assert price.product.startswith("prod_")
    assert customer.livemode is False and abs(customer.created - time.time()) < 60
    assert customer.object == "customer" and price.object == "price"


def test_bad_or_missing_key_is_401(stripe_api):
    _, url, _ = stripe_api
    with pytest.raises(stripe.AuthenticationError) as err:
        _client(url, "sk_test_wrong000000000000000000").v1.customers.list()
    assert err.value.http_status == 401
    assert "Invalid API Key provided" in err.value.user_message and "wrong0000" not in err.value.user_message
    answer = httpx.get(f"{url}/v1/customers")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in answer.json()["error"]["message"]


def test_unknown_id_is_404_resource_missing_naming_the_param(stripe_api):
    _, _, client = stripe_api
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert (err.value.http_status, err.value.code, err.value.param) == (404, "resource_missing", "id")
    assert "No such customer: 'cus_doesnotexist'" in err.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(params={"customer": "cus_nope", "items": [{"price": "price_x"}]})
    assert (err.value.http_status, err.value.code, err.value.param) == (404, "resource_missing", "customer")


def test_missing_and_unknown_parameters_are_400(stripe_api):
    _, url, client = stripe_api
    product = client.v1.products.create(params={"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params={"product": product.id, "unit_amount": 100})
    assert (err.value.http_status, err.value.code, err.value.param) == (400, "parameter_missing", "currency")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create(params={"emial": "typo@example.com"})
    assert (err.value.code, err.value.param) == ("parameter_unknown", "emial")
    answer = httpx.get(f"{url}/v1/nothing_here", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    assert answer.status_code == 404 and "Unrecognized request URL" in answer.json()["error"]["message"]


def test_idempotency_key_replays_the_first_response(stripe_api):
    _, url, client = stripe_api
    first = client.v1.customers.create(params={"email": "once@example.com"}, options={"idempotency_key": "create-once"})
    again = client.v1.customers.create(params={"email": "once@example.com"}, options={"idempotency_key": "create-once"})
    assert again.id == first.id
    assert [c.id for c in client.v1.customers.list().data] == [first.id]
    raw = httpx.post(f"{url}/v1/customers", data={"email": "once@example.com"},
                     headers={"Authorization": f"Bearer {DEFAULT_API_KEY}", "Idempotency-Key": "create-once"})
    assert raw.status_code == 200 and raw.json()["id"] == first.id
    assert raw.headers["Idempotent-Replayed"] == "true"


def test_idempotency_key_with_other_parameters_is_an_idempotency_error(stripe_api):
    _, _, client = stripe_api
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k1"})
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "k1"})
    assert err.value.http_status == 400
    assert err.value.error.type == "idempotency_error"
    assert len(client.v1.customers.list().data) == 1


def test_idempotency_replays_errors_keeps_keys_a_day_and_skips_validation_failures(stripe_api):
    emulator, _, client = stripe_api
    with pytest.raises(stripe.InvalidRequestError):  # validation failure: nothing saved under the key
        client.v1.customers.create(params={"emial": "x"}, options={"idempotency_key": "k-valid"})
    made = client.v1.customers.create(params={"email": "ok@example.com"}, options={"idempotency_key": "k-valid"})
    assert made.email == "ok@example.com"
    for _ in range(2):  # a 404 after the endpoint started is saved and replayed
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_methods.attach("pm_missing", params={"customer": made.id}, options={"idempotency_key": "k-404"})
        assert err.value.http_status == 404
    emulator.core.clock.advance(24 * 3600 + 60)
    other = client.v1.customers.create(params={"email": "new@example.com"}, options={"idempotency_key": "k-valid"})
    assert other.id != made.id  # the key was pruned after 24 h


def test_list_paging_with_auto_paging_iter_and_cursors(stripe_api):
    _, _, client = stripe_api
    made = [client.v1.customers.create(params={"email": f"c{i}@example.com"}).id for i in range(23)]
    page = client.v1.customers.list(params={"limit": 10})
    assert page.object == "list" and page.has_more is True and page.url == "/v1/customers" and len(page.data) == 10
    assert [c.id for c in page.data] == made[::-1][:10]  # newest first
    everything = [c.id for c in client.v1.customers.list(params={"limit": 10}).auto_paging_iter()]
    assert everything == made[::-1]
    after = client.v1.customers.list(params={"limit": 5, "starting_after": made[10]})
    assert [c.id for c in after.data] == made[9:4:-1]
    before = client.v1.customers.list(params={"limit": 3, "ending_before": made[10]})
    assert [c.id for c in before.data] == made[13:10:-1] and before.has_more is True
    last = client.v1.customers.list(params={"limit": 100})
    assert len(last.data) == 23 and last.has_more is False
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(params={"limit": 101})
    assert err.value.param == "limit"


def test_expand_replaces_ids_with_objects(stripe_api):
    _, url, client = stripe_api
    customer, pm = _customer(client)
    price = _plan(client, name="Business")
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})
    assert isinstance(sub.customer, str) and isinstance(sub.latest_invoice, str)
    full = client.v1.subscriptions.retrieve(sub.id, params={
        "expand": ["customer", "latest_invoice", "default_payment_method", "items.data.price.product"]})
    assert full.customer.email == "billing@acme.example"
    assert full.latest_invoice.object == "invoice" and full.latest_invoice.status == "paid"
    assert full["items"].data[0].price.product.name == "Business"
    listed = client.v1.subscriptions.list(params={"expand": ["data.customer"]})
    assert listed.data[0].customer.id == customer.id
    raw = httpx.get(f"{url}/v1/customers/{customer.id}?expand[]=invoice_settings.default_payment_method",
                    headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}).json()
    assert raw["invoice_settings"]["default_payment_method"]["card"]["last4"] == "4242"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve(customer.id, params={"expand": ["email"]})
    assert "cannot be expanded" in err.value.user_message


# =================================================================================================
# products, prices, payment methods
# =================================================================================================
def test_prices_filter_by_product_lookup_key_and_active(stripe_api):
    _, _, client = stripe_api
    monthly = _plan(client, 2900, "month", "Starter", lookup_key="starter_monthly")
    yearly = client.v1.prices.create(params={"product": monthly.product, "unit_amount": 29000, "currency": "usd",
                                             "recurring": {"interval": "year"}, "lookup_key": "starter_yearly"})
    other = _plan(client, 9900, "month", "Pro", lookup_key="pro_monthly")
    assert monthly.recurring.interval == "month" and yearly.recurring.interval == "year" and yearly.type == "recurring"
    by_product = {p.id for p in client.v1.prices.list(params={"product": monthly.product}).data}
    assert by_product == {monthly.id, yearly.id}
    by_key = client.v1.prices.list(params={"lookup_keys": ["starter_yearly", "pro_monthly"]}).data
    assert {p.id for p in by_key} == {yearly.id, other.id}
    client.v1.prices.update(yearly.id, params={"active": False})
    assert {p.id for p in client.v1.prices.list(params={"active": True}).data} == {monthly.id, other.id}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params={"product": monthly.product, "unit_amount": 1, "currency": "usd", "lookup_key": "pro_monthly"})
    assert err.value.param == "lookup_key"
    moved = client.v1.prices.create(params={"product": monthly.product, "unit_amount": 1, "currency": "usd",
                                            "lookup_key": "pro_monthly", "transfer_lookup_key": True})
    assert client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data[0].id == moved.id
    assert client.v1.prices.retrieve(other.id).lookup_key is None


def test_payment_methods_from_test_tokens_and_numbers_attach_and_detach(stripe_api):
    _, _, client = stripe_api
    customer, pm = _customer(client)
    assert pm.card.brand == "visa" and pm.card.last4 == "4242" and pm.customer == customer.id
    typed = client.v1.payment_methods.create(params={"type": "card", "card": {"number": "5555555555554444", "exp_month": 12,
                                                                                "exp_year": 2034, "cvc": "123"}})
    client.v1.payment_methods.attach(typed.id, params={"customer": customer.id})
    listed = client.v1.customers.payment_methods.list(customer.id)
    assert {p.card.last4 for p in listed.data} == {"4242", "4444"}
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method == pm.id
    client.v1.payment_methods.detach(pm.id)
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    assert {p.id for p in client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"}).data} == {typed.id}


def test_declining_cards_are_card_errors(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client, card=None)
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.attach("pm_card_visa_chargeDeclinedInsufficientFunds", params={"customer": customer.id})
    assert err.value.http_status == 402 and err.value.code == "card_declined"
    assert err.value.error.decline_code == "insufficient_funds"
    typed = client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4000000000009995", "exp_month": 1,
                                                                                "exp_year": 2035}})
    with pytest.raises(stripe.CardError) as err:  # the typed number declines as its token does
        client.v1.payment_methods.attach(typed.id, params={"customer": customer.id})
    assert err.value.error.decline_code == "insufficient_funds"
    assert client.v1.payment_methods.retrieve(typed.id).customer is None
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4242424242424241", "exp_month": 1,
                                                                          "exp_year": 2035}})
    assert err.value.code == "incorrect_number"


def test_card_0341_attaches_then_fails_the_charge(stripe_api):
    _, _, client = stripe_api
    customer, pm = _customer(client, card="pm_card_chargeCustomerFail")
    assert pm.card.last4 == "0341"
    price = _plan(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}],
                                                 "expand": ["latest_invoice.payments"]})
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open" and sub.latest_invoice.attempt_count == 1
    pi = client.v1.payment_intents.retrieve(sub.latest_invoice.payments.data[0].payment.payment_intent)
    assert pi.status == "requires_payment_method" and pi.last_payment_error.code == "card_declined"
    with pytest.raises(stripe.CardError) as err:
        client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}],
                                               "payment_behavior": "error_if_incomplete"})
    assert err.value.code == "card_declined"
    assert len(client.v1.subscriptions.list(params={"customer": customer.id, "status": "all"}).data) == 1
    for _ in range(2):  # a card error is saved under its idempotency key: the retry is its replay, not a second charge
        with pytest.raises(stripe.CardError) as err:
            client.v1.invoices.pay(sub.latest_invoice.id, options={"idempotency_key": "pay-once"})
        assert err.value.code == "card_declined"
    assert client.v1.invoices.retrieve(sub.latest_invoice.id).attempt_count == 2
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    paid = client.v1.invoices.pay(sub.latest_invoice.id, params={"payment_method": good.id})
    assert paid.status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_card_3155_needs_authentication_off_session(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client, card="pm_card_authenticationRequiredOnSetup")
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}],
                                                 "expand": ["latest_invoice"]})
    assert sub.status == "incomplete" and sub.latest_invoice.status == "open"
    events = client.v1.events.list(params={"type": "invoice.payment_action_required"}).data
    assert [e.data.object.id for e in events] == [sub.latest_invoice.id]


# =================================================================================================
# subscriptions and invoices
# =================================================================================================
def test_subscription_with_trial_starts_trialing_with_a_zero_invoice(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    price = _plan(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id, "quantity": 3}],
                                                 "trial_period_days": 14, "expand": ["latest_invoice"]})
    item = sub["items"].data[0]
    assert sub.status == "trialing" and sub.trial_end - sub.trial_start == 14 * DAY
    assert item.quantity == 3 and item.price.id == price.id and item.current_period_end == sub.trial_end
    assert sub.latest_invoice.amount_due == 0 and sub.latest_invoice.status == "paid"
    assert sub.latest_invoice.billing_reason == "subscription_create"
    assert sub.latest_invoice.parent.subscription_details.subscription == sub.id


def test_subscription_without_trial_is_invoiced_and_paid_at_once(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    price = _plan(client, 4900)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]})
    assert sub.status == "active"
    created = client.v1.events.list(params={"type": "customer.subscription.*"}).data
    assert [(e.type, e.data.object.status) for e in created] == [("customer.subscription.created", "active")]
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (invoice.status, invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == ("paid", 9800, 9800, 0)
    assert invoice.number and invoice.hosted_invoice_url and invoice.invoice_pdf
    line = invoice.lines.data[0]
    assert line.amount == 9800 and line.quantity == 2 and line.pricing.price_details.price == price.id
    assert line.parent.subscription_item_details.proration is False
    page = httpx.get(invoice.hosted_invoice_url)
    assert page.status_code == 200 and invoice.number in page.text
    pdf = httpx.get(invoice.invoice_pdf)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_quantity_change_creates_proration_invoice_items(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    price = _plan(client, 3000)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id, "quantity": 1}]})
    item = sub["items"].data[0]
    midway = (item.current_period_start + item.current_period_end) // 2
    preview = client.v1.invoices.create_preview(params={
        "customer": customer.id, "subscription": sub.id,
        "subscription_details": {"items": [{"id": item.id, "quantity": 3}], "proration_date": midway}})
    prorations = [l for l in preview.lines.data if l.parent.subscription_item_details.proration]
    assert sorted(l.amount for l in prorations) == [-1500, 4500]
    client.v1.subscriptions.update(sub.id, params={"items": [{"id": item.id, "quantity": 3}], "proration_date": midway})
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data
    assert sorted(i.amount for i in pending) == [-1500, 4500] and all(i.proration for i in pending)
    assert any(i.description.startswith("Unused time on 1 × Pro") for i in pending)
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 3
    upcoming = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert upcoming.amount_due == 3000 + 9000  # the prorations and the next period at 3 seats
    assert upcoming.period_end == item.current_period_end


def test_price_swap_with_always_invoice_bills_the_difference_now(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    starter, pro = _plan(client, 1000, name="Starter"), _plan(client, 5000, name="Pro")
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": starter.id}]})
    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(sub.id, params={"items": [{"id": item.id, "price": pro.id}],
                                                             "proration_behavior": "always_invoice",
                                                             "expand": ["latest_invoice"]})
    assert updated["items"].data[0].price.id == pro.id
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert invoice.amount_paid == pytest.approx(4000, abs=5)  # the whole period left: 50.00 - 10.00
    assert client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data == []


def test_switching_to_an_annual_price_resets_the_cycle(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    monthly = _plan(client, 1000)
    yearly = client.v1.prices.create(params={"product": monthly.product, "unit_amount": 10000, "currency": "usd",
                                             "recurring": {"interval": "year"}})
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": monthly.id}]})
    updated = client.v1.subscriptions.update(sub.id, params={"items": [{"id": sub["items"].data[0].id, "price": yearly.id}],
                                                             "expand": ["latest_invoice"]})
    item = updated["items"].data[0]
    assert 365 * DAY <= item.current_period_end - item.current_period_start <= 366 * DAY
    assert updated.latest_invoice.amount_paid == pytest.approx(10000 - 1000, abs=5)


def test_cancel_at_period_end_resume_and_cancel_now(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}]})
    ending = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert ending.cancel_at_period_end is True and ending.cancel_at == ending["items"].data[0].current_period_end
    assert ending.status == "active"
    resumed = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert resumed.cancel_at_period_end is False and resumed.cancel_at is None
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []
    assert [s.id for s in client.v1.subscriptions.list(params={"customer": customer.id, "status": "canceled"}).data] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)
    kinds = [e.type for e in client.v1.events.list(params={"limit": 100}).data if e.data.object.id == sub.id]
    assert "customer.subscription.deleted" in kinds and kinds.count("customer.subscription.updated") >= 2


def test_manual_invoice_finalize_pay_void_and_uncollectible(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    invoices = []
    for amount in (1200, 800, 500):
        invoice = client.v1.invoices.create(params={"customer": customer.id, "auto_advance": False})
        assert invoice.status == "draft" and invoice.hosted_invoice_url is None
        client.v1.invoice_items.create(params={"customer": customer.id, "invoice": invoice.id, "amount": amount,
                                               "currency": "usd", "description": "Setup fee"})
        invoices.append(client.v1.invoices.finalize_invoice(invoice.id))
    assert all(i.status == "open" and i.hosted_invoice_url for i in invoices)
    assert [i.amount_due for i in invoices] == [1200, 800, 500]
    assert client.v1.invoices.pay(invoices[0].id).status == "paid"
    assert client.v1.invoices.void_invoice(invoices[1].id).status == "void"
    assert client.v1.invoices.mark_uncollectible(invoices[2].id).status == "uncollectible"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(invoices[0].id)
    statuses = {i.id: i.status for i in client.v1.invoices.list(params={"customer": customer.id}).data}
    assert statuses == {invoices[0].id: "paid", invoices[1].id: "void", invoices[2].id: "uncollectible"}


# =================================================================================================
# test clocks
# =================================================================================================
def test_test_clock_renewals_are_invoiced_and_paid(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client, 2500).id}]})
    assert sub.start_date == clock.frozen_time and sub.test_clock == clock.id
    with pytest.raises(stripe.InvalidRequestError) as err:  # Stripe moves a clock two intervals at most at once
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": clock.frozen_time + 62 * DAY})
    assert err.value.param == "frozen_time"
    _advance(client, clock, clock.frozen_time + 40 * DAY)
    ready = _advance(client, clock, clock.frozen_time + 62 * DAY)  # Jan 1 -> Mar 4: two renewals
    assert ready.status == "ready" and ready.frozen_time == clock.frozen_time + 62 * DAY
    invoices = _invoices(client, sub.id)
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_cycle", "subscription_create"]
    assert all(i.status == "paid" and i.amount_paid == 2500 for i in invoices)
    item = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert item.current_period_start == 1_772_323_200  # 2026-03-01
    assert item.current_period_end == 1_775_001_600  # 2026-04-01
    kinds = {e.type for e in client.v1.events.list(params={"limit": 100}).data}
    assert {"invoice.upcoming", "invoice.created", "invoice.finalized", "invoice.paid",
            "test_helpers.test_clock.ready"} <= kinds


def test_trial_end_makes_the_subscription_active_and_bills(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client, 2500).id}],
                                                 "trial_period_days": 7})
    _advance(client, clock, clock.frozen_time + 5 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "trialing"
    assert client.v1.events.list(params={"type": "customer.subscription.trial_will_end"}).data[0].data.object.id == sub.id
    _advance(client, clock, clock.frozen_time + 7 * DAY + 2 * 3600)
    after = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert after.status == "active" and after.latest_invoice.amount_paid == 2500
    assert after["items"].data[0].current_period_start == sub.trial_end


def test_failed_renewals_go_past_due_then_canceled_by_the_dunning_schedule(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client, 2500).id}]})
    failing = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": failing.id}})
    renewal = 1_769_904_000  # 2026-02-01
    _advance(client, clock, renewal + 2 * 3600)
    after = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert after.status == "past_due"
    invoice = after.latest_invoice
    assert invoice.status == "open" and invoice.attempt_count == 1
    assert invoice.next_payment_attempt == renewal + 3600 + 3 * DAY
    assert client.v1.customers.retrieve(customer.id).delinquent is True
    _advance(client, clock, renewal + 5 * DAY)
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2
    _advance(client, clock, renewal + 20 * DAY)  # retries at +3, +8, +15 days all fail
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 4
    final = client.v1.subscriptions.retrieve(sub.id)
    assert final.status == "canceled" and final.cancellation_details.reason == "payment_failed"
    failed = [e for e in client.v1.events.list(params={"type": "invoice.payment_failed", "limit": 100}).auto_paging_iter()]
    assert len(failed) == 4


def test_unpaid_after_dunning_then_a_new_card_pays_and_reactivates(served):
    _, _, client = served(dunning_final="unpaid", retry_days=(1,))
    clock = _clock(client)
    customer, _ = _customer(client, card="pm_card_chargeCustomerFail", test_clock=clock.id)
    price = _plan(client, 2500)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 3})
    _advance(client, clock, clock.frozen_time + 3 * DAY + 2 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    _advance(client, clock, clock.frozen_time + 5 * DAY)
    unpaid = client.v1.subscriptions.retrieve(sub.id)
    assert unpaid.status == "unpaid"
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.invoices.pay(unpaid.latest_invoice, params={"payment_method": good.id})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_cancel_at_period_end_takes_effect_when_the_clock_passes_it(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}]})
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    _advance(client, clock, clock.frozen_time + 20 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    _advance(client, clock, clock.frozen_time + 40 * DAY)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == 1_769_904_000
    assert len(_invoices(client, sub.id)) == 1  # no renewal invoice


def test_incomplete_subscription_expires_after_23_hours(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, card="pm_card_chargeCustomerFail", test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}]})
    assert sub.status == "incomplete"
    _advance(client, clock, clock.frozen_time + DAY)
    expired = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert expired.status == "incomplete_expired" and expired.latest_invoice.status == "void"


# =================================================================================================
# events and webhooks
# =================================================================================================
def test_events_list_and_retrieve(stripe_api):
    _, _, client = stripe_api
    customer = client.v1.customers.create(params={"email": "e@example.com"}, options={"idempotency_key": "evt-key"})
    events = client.v1.events.list(params={"type": "customer.created"}).data
    assert len(events) == 1 and events[0].id.startswith("evt_")
    event = client.v1.events.retrieve(events[0].id)
    assert event.data.object.id == customer.id and event.request.idempotency_key == "evt-key"
    assert event.api_version and event.livemode is False
    client.v1.customers.update(customer.id, params={"name": "New name"})
    updated = client.v1.events.list(params={"type": "customer.*"}).data
    assert [e.type for e in updated] == ["customer.updated", "customer.created"]
    assert updated[0].data.previous_attributes.name is None


def test_webhooks_are_signed_as_stripe_signs_and_verify_with_the_sdk(stripe_api, receiver):
    _, _, client = stripe_api
    endpoint = client.v1.webhook_endpoints.create(params={"url": f"{receiver.base}/hook/signed",
                                                          "enabled_events": ["customer.created", "invoice.paid"]})
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id)
    customer = client.v1.customers.create(params={"email": "hook@example.com"})
    client.v1.products.create(params={"name": "not subscribed to"})
    got = wait_for(lambda: receiver.got("signed"))
    time.sleep(0.2)
    assert len(receiver.got("signed")) == 1
    body, header = got[0]["body"], got[0]["headers"]["stripe-signature"]
    assert header.startswith("t=") and ",v1=" in header
    event = stripe.Webhook.construct_event(body, header, endpoint.secret)
    assert event.type == "customer.created" and event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace(b"hook@", b"evil@"), header, endpoint.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_" + "0" * 64)


def test_webhook_retries_after_non_2xx(stripe_api, receiver):
    emulator, url, client = stripe_api
    receiver.fail["retry"] = 2
    endpoint = client.v1.webhook_endpoints.create(params={"url": f"{receiver.base}/hook/retry", "enabled_events": ["*"]})
    client.v1.customers.create(params={"email": "retry@example.com"})
    attempts = wait_for(lambda: (lambda got: got if len(got) >= 3 else None)(receiver.got("retry")))
    assert len({a["body"] for a in attempts}) == 1  # the same event each time
    for attempt in attempts:
        stripe.Webhook.construct_event(attempt["body"], attempt["headers"]["stripe-signature"], endpoint.secret)
    assert emulator.wait_idle(5)
    assert [d["status"] for d in emulator.webhooks.deliveries] == ["delivered"]
    assert client.v1.events.list().data[0].pending_webhooks == 0
    receiver.fail["dead"] = 10
    client.v1.webhook_endpoints.update(endpoint.id, params={"url": f"{receiver.base}/hook/dead"})
    client.v1.customers.create(params={"email": "dead@example.com"})
    assert emulator.wait_idle(5)
    assert len(receiver.got("dead")) == 4  # the first attempt and three retries
    assert emulator.webhooks.deliveries[-1]["status"] == "failed"
    assert client.v1.events.list().data[0].pending_webhooks == 1  # never delivered
    seen = httpx.get(f"{url}/_emulator/deliveries").json()
    assert [d["status"] for d in seen["deliveries"]] == ["delivered", "failed"] and len(seen["attempts"]) == 3 + 4


# =================================================================================================
# hosted Checkout and Billing Portal
# =================================================================================================
def test_checkout_session_completes_on_the_hosted_page(stripe_api):
    _, _, client = stripe_api
    price = _plan(client, 4900)
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}], "customer_email": "new@acme.example",
        "success_url": "https://hub.example/billing/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://hub.example/billing", "client_reference_id": "company-7",
        "subscription_data": {"trial_period_days": 14}})
    assert session.id.startswith("cs_test_") and session.status == "open" and session.url
    page = httpx.get(session.url)
    assert page.status_code == 200 and 'name="number"' in page.text and "Subscribe" in page.text
    declined = httpx.post(session.url, data={"email": "new@acme.example", "number": "4000 0000 0000 9995",
                                             "expiry": "12 / 34", "cvc": "123"})
    assert declined.status_code == 402 and "insufficient funds" in declined.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    done = httpx.post(session.url, data={"email": "new@acme.example", "name": "Ada", "number": "4242 4242 4242 4242",
                                         "expiry": "12 / 34", "cvc": "123"})
    assert done.status_code == 303
    assert done.headers["location"] == f"https://hub.example/billing/done?session={session.id}"
    completed = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "customer"]})
    assert completed.status == "complete" and completed.client_reference_id == "company-7"
    assert completed.subscription.status == "trialing" and completed.customer.email == "new@acme.example"
    assert completed.payment_status == "no_payment_required"
    pm = client.v1.payment_methods.retrieve(completed.subscription.default_payment_method)
    assert pm.card.last4 == "4242"
    events = client.v1.events.list(params={"type": "checkout.session.completed"}).data
    assert [e.data.object.id for e in events] == [session.id]
    again = httpx.post(session.url, data={"number": "4242424242424242", "expiry": "12/34", "cvc": "1"})
    assert again.status_code == 400 and "complete" in again.text  # nothing is bought twice


def test_checkout_cancel_link_returns_to_cancel_url_and_sessions_expire(stripe_api):
    _, url, client = stripe_api
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": _plan(client).id, "quantity": 1}],
        "success_url": "https://hub.example/ok", "cancel_url": "https://hub.example/cancelled"})
    cancel = httpx.get(f"{session.url}/cancel")
    assert cancel.status_code == 303 and cancel.headers["location"] == "https://hub.example/cancelled"
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    later = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": _plan(client).id, "quantity": 1}], "success_url": "https://hub.example/ok"})
    assert later.expires_at - later.created == DAY
    httpx.post(f"{url}/_emulator/clock", json={"advance": DAY + 1})
    assert client.v1.checkout.sessions.retrieve(later.id).status == "expired"
    kinds = [e.data.object.id for e in client.v1.events.list(params={"type": "checkout.session.expired"}).data]
    assert kinds == [later.id, session.id]
    assert httpx.get(later.url).status_code == 200 and "expired" in httpx.get(later.url).text
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(params={"mode": "subscription", "line_items": [{"price": "price_nope"}],
                                                   "success_url": "https://hub.example/ok"})


def test_billing_portal_updates_card_switches_plan_and_cancels(stripe_api):
    _, _, client = stripe_api
    starter, pro = _plan(client, 1000, name="Starter"), _plan(client, 5000, name="Pro")
    config = client.v1.billing_portal.configurations.create(params={"features": {
        "payment_method_update": {"enabled": True}, "invoice_history": {"enabled": True},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
        "subscription_update": {"enabled": True, "default_allowed_updates": ["price"], "proration_behavior": "create_prorations",
                                "products": [{"product": starter.product, "prices": [starter.id]},
                                             {"product": pro.product, "prices": [pro.id]}]}}})
    customer, _ = _customer(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": starter.id}]})
    session = client.v1.billing_portal.sessions.create(params={"customer": customer.id, "configuration": config.id,
                                                               "return_url": "https://hub.example/settings"})
    assert session.id.startswith("bps_") and session.url
    page = httpx.get(session.url)
    assert page.status_code == 200 and "Starter" in page.text and "ending 4242" in page.text
    card = httpx.post(f"{session.url}/card", data={"number": "5555555555554444", "expiry": "11/33", "cvc": "123"})
    assert card.status_code == 200 and "ending 4444" in card.text
    new_default = client.v1.customers.retrieve(customer.id, params={"expand": ["invoice_settings.default_payment_method"]})
    assert new_default.invoice_settings.default_payment_method.card.last4 == "4444"
    switched = httpx.post(f"{session.url}/switch", data={"subscription": sub.id, "price": pro.id})
    assert switched.status_code == 200
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == pro.id
    assert len(client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data) == 2
    refused = httpx.post(f"{session.url}/switch", data={"subscription": sub.id, "price": "price_other"})
    assert refused.status_code == 400
    cancel = httpx.post(f"{session.url}/cancel", data={"subscription": sub.id})
    assert cancel.status_code == 200 and client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    httpx.post(f"{session.url}/renew", data={"subscription": sub.id})
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False
    defaults = client.v1.billing_portal.configurations.list(params={"is_default": True}).data
    assert len(defaults) == 1 and defaults[0].features.subscription_update.proration_behavior == "none"
    back = httpx.get(f"{session.url}/return")
    assert back.status_code == 303 and back.headers["location"] == "https://hub.example/settings"


def test_portal_card_update_pays_a_past_due_invoice(stripe_api):
    _, _, client = stripe_api
    clock = _clock(client)
    customer, _ = _customer(client, card="pm_card_chargeCustomerFail", test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}],
                                                 "trial_period_days": 7})
    _advance(client, clock, clock.frozen_time + 7 * DAY + 2 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    session = client.v1.billing_portal.sessions.create(params={"customer": customer.id, "return_url": "https://hub.example/"})
    assert httpx.post(f"{session.url}/card", data={"number": "4242424242424242", "expiry": "12/34", "cvc": "1"}).status_code == 200
    after = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert after.status == "active" and after.latest_invoice.status == "paid"


# =================================================================================================
# search, previews, hosted invoice page, tiers
# =================================================================================================
def test_search_customers_and_subscriptions_with_paging(stripe_api):
    _, _, client = stripe_api
    for i in range(12):
        client.v1.customers.create(params={"email": f"s{i}@acme.example", "metadata": {"company_id": str(i % 3)}})
    hits = client.v1.customers.search(params={"query": "metadata['company_id']:'1'"})
    assert hits.object == "search_result" and {c.metadata["company_id"] for c in hits.data} == {"1"} and len(hits.data) == 4
    every = [c.id for c in client.v1.customers.search(params={"query": "email~'acme'", "limit": 5}).auto_paging_iter()]
    assert len(every) == len(set(every)) == 12
    one = client.v1.customers.search(params={"query": "email:'s7@acme.example' AND metadata['company_id']:'1'"}).data
    assert [c.email for c in one] == ["s7@acme.example"]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.search(params={"query": "email:'a' AND name:'b' OR name:'c'"})
    assert err.value.param == "query"
    customer, _ = _customer(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}]})
    found = client.v1.subscriptions.search(params={"query": f"status:'active' AND customer:'{customer.id}'"}).data
    assert [s.id for s in found] == [sub.id]
    invoices = client.v1.invoices.search(params={"query": f"subscription:'{sub.id}'"}).data
    assert [i.id for i in invoices] == [sub.latest_invoice]


def test_previews_of_a_new_subscription_and_of_a_canceling_one(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    price = _plan(client, 1500)
    first = client.v1.invoices.create_preview(params={"customer": customer.id,
                                                      "subscription_details": {"items": [{"price": price.id, "quantity": 2}]}})
    assert first.amount_due == 3000 and first.id.startswith("upcoming_")
    assert client.v1.invoices.list(params={"customer": customer.id}).data == []  # a preview is not stored
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}],
                                                 "cancel_at_period_end": True})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert (err.value.http_status, err.value.code) == (404, "invoice_upcoming_none")


def test_hosted_invoice_page_pays_an_open_invoice(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client, card="pm_card_chargeCustomerFail")
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client, 1900).id}],
                                                 "expand": ["latest_invoice"]})
    url = sub.latest_invoice.hosted_invoice_url
    page = httpx.get(url)
    assert page.status_code == 200 and "Pay 19.00 USD" in page.text
    refused = httpx.post(f"{url}/pay", data={"number": "4000000000000341", "expiry": "12/34", "cvc": "1"})
    assert refused.status_code == 402 and "declined" in refused.text
    paid = httpx.post(f"{url}/pay", data={"number": "4242424242424242", "expiry": "12/34", "cvc": "1"})
    assert paid.status_code == 200 and ">paid<" in paid.text
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_tiered_prices_bill_graduated_and_volume(stripe_api):
    _, _, client = stripe_api
    product = client.v1.products.create(params={"name": "Seats"})
    tiers = [{"up_to": 5, "unit_amount": 1000}, {"up_to": "inf", "unit_amount": 500}]
    graduated = client.v1.prices.create(params={"product": product.id, "currency": "usd", "recurring": {"interval": "month"},
                                                "billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": tiers})
    volume = client.v1.prices.create(params={"product": product.id, "currency": "usd", "recurring": {"interval": "month"},
                                             "billing_scheme": "tiered", "tiers_mode": "volume", "tiers": tiers})
    customer, _ = _customer(client)
    amounts = []
    for price in (graduated, volume):
        sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id, "quantity": 8}],
                                                     "expand": ["latest_invoice"]})
        amounts.append(sub.latest_invoice.amount_paid)
    assert amounts == [5 * 1000 + 3 * 500, 8 * 500]


def test_setup_intents_save_a_card_for_off_session_use(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client, card=None)
    si = client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": "pm_card_authenticationRequiredOnSetup",
                                                "confirm": True})
    assert si.status == "requires_action" and si.id.startswith("seti_")
    ok = client.v1.setup_intents.create(params={"customer": customer.id})
    assert ok.status == "requires_payment_method" and ok.client_secret.startswith(ok.id + "_secret_")
    done = client.v1.setup_intents.confirm(ok.id, params={"payment_method": "pm_card_visa"})
    assert done.status == "succeeded"
    assert client.v1.payment_methods.retrieve(done.payment_method).customer == customer.id
    failed = client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": "pm_card_chargeDeclined",
                                                    "confirm": True})
    assert failed.status == "requires_payment_method" and failed.last_setup_error.decline_code == "generic_decline"
    assert client.v1.setup_intents.cancel(failed.id).status == "canceled"


def test_subscriptions_without_a_test_clock_renew_when_the_emulator_clock_moves(stripe_api):
    emulator, url, client = stripe_api
    customer, _ = _customer(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client, 700).id}]})
    httpx.post(f"{url}/_emulator/clock", json={"advance": 32 * DAY})
    invoices = _invoices(client, sub.id)  # the next call catches up: renewal, then finalization an hour later
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    assert invoices[0].status == "paid" and invoices[0].amount_paid == 700


def test_dunning_events_reach_the_webhook_endpoint_signed(stripe_api, receiver):
    _, _, client = stripe_api
    endpoint = client.v1.webhook_endpoints.create(params={
        "url": f"{receiver.base}/hook/dunning", "enabled_events": ["invoice.payment_failed", "customer.subscription.updated"]})
    clock = _clock(client)
    customer, _ = _customer(client, card="pm_card_chargeCustomerFail", test_clock=clock.id)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}],
                                                 "trial_period_days": 2})
    _advance(client, clock, clock.frozen_time + 2 * DAY + 2 * 3600)

    def events() -> list:
        return [stripe.Webhook.construct_event(r["body"], r["headers"]["stripe-signature"], endpoint.secret)
                for r in receiver.got("dunning")]

    def past_due_seen() -> list | None:
        got = events()
        kinds = {x.type for x in got}
        past_due = any(x.type == "customer.subscription.updated" and x.data.object.status == "past_due" for x in got)
        return got if past_due and "invoice.payment_failed" in kinds else None

    got = wait_for(past_due_seen)
    assert {e.type for e in got} == {"invoice.payment_failed", "customer.subscription.updated"}
    updated = [e for e in got if e.type == "customer.subscription.updated" and e.data.object.status == "past_due"]
    assert updated[0].data.object.id == sub.id and updated[0].data.previous_attributes.status == "active"


def test_deleting_a_customer_cancels_its_subscriptions_and_leaves_a_stub(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client)
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}]})
    gone = client.v1.customers.delete(customer.id)
    assert gone.deleted is True
    stub = client.v1.customers.retrieve(customer.id)
    assert stub.deleted is True and stub.id == customer.id
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(customer.id, params={"name": "x"})
    assert err.value.http_status == 404
    assert customer.id not in [c.id for c in client.v1.customers.list().data]


def test_error_if_incomplete_without_a_payment_method_is_400(stripe_api):
    _, _, client = stripe_api
    customer, _ = _customer(client, card=None)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": _plan(client).id}],
                                               "payment_behavior": "error_if_incomplete"})
    assert err.value.http_status == 400 and "no attached payment source" in err.value.user_message
    assert client.v1.subscriptions.list(params={"customer": customer.id, "status": "all"}).data == []


def test_injected_faults_arrive_as_stripe_errors_and_sdk_retries_stay_idempotent(stripe_api):
    emulator, url, client = stripe_api
    emulator.core.faults.configure(burst_429=1)
    with pytest.raises(stripe.RateLimitError) as err:
        client.v1.customers.list()
    assert err.value.http_status == 429 and err.value.json_body["error"]["code"] == "rate_limit"
    emulator.core.faults.configure(fail_next_5xx=1)
    with pytest.raises(stripe.APIError) as err:
        client.v1.customers.list()
    assert err.value.http_status == 503
    # a reply that comes too late: the write is done, the SDK times out and retries with its own
    # Idempotency-Key, and the retry gets the saved answer instead of a second customer
    retrying = stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": url, "files": url, "connect": url},
                                   max_network_retries=2, http_client=stripe.HTTPXClient(timeout=0.5, allow_sync_methods=True))
    emulator.core.faults.configure(reply_delay_ms=1500)
    threading.Timer(0.3, lambda: emulator.core.faults.configure(reply_delay_ms=0)).start()
    made = retrying.v1.customers.create(params={"email": "lost-reply@example.com"})
    assert made.last_response.headers["Idempotent-Replayed"] == "true"  # the answer came from the retry
    assert [c.id for c in client.v1.customers.list().data] == [made.id]


def test_issue_flow_checkout_trial_renewal_failed_card_portal_fix(stripe_api):
    """The billing flow the hub's browser test walks, here through the API and plain form posts."""
    _, _, client = stripe_api
    clock = _clock(client)
    customer = client.v1.customers.create(params={"email": "owner@acme.example", "name": "Acme", "test_clock": clock.id})
    price = _plan(client, 4900, name="Pro")
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer.id, "line_items": [{"price": price.id, "quantity": 1}],
        "subscription_data": {"trial_period_days": 14}, "success_url": "https://hub.example/ok?cs={CHECKOUT_SESSION_ID}"})
    assert httpx.post(session.url, data={"number": "4242424242424242", "expiry": "12/34", "cvc": "123"}).status_code == 303
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription
    assert client.v1.subscriptions.retrieve(sub_id).status == "trialing"
    start = clock.frozen_time
    _advance(client, clock, start + 14 * DAY + 2 * 3600)  # the trial ends: first invoice paid
    assert client.v1.subscriptions.retrieve(sub_id).status == "active"
    portal = client.v1.billing_portal.sessions.create(params={"customer": customer.id, "return_url": "https://hub.example/"})
    assert httpx.post(f"{portal.url}/card", data={"number": "4000000000000341", "expiry": "12/34", "cvc": "1"}).status_code == 200
    renewal = client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end
    _advance(client, clock, renewal + 2 * 3600)  # the renewal charge fails
    past_due = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert past_due.status == "past_due" and past_due.latest_invoice.status == "open"
    assert httpx.post(f"{portal.url}/card", data={"number": "4242424242424242", "expiry": "12/34", "cvc": "1"}).status_code == 200
    healed = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice", "default_payment_method"]})
    assert healed.status == "active" and healed.latest_invoice.status == "paid"
    assert healed.default_payment_method.card.last4 == "4242"
    paid = [i.status for i in _invoices(client, sub_id)]
    assert paid == ["paid", "paid", "paid"]  # renewal, trial end, the trial's 0.00
