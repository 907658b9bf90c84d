"""Platform billing (hub/billing/) against the Stripe emulator, through the official SDK and
the hub's own webhook receiver: the catalog sync, Checkout to a mirrored subscription, events
in any order or missing converging to one state, dunning (past due, the notification, read
only after the grace) and the plan limits where an integration becomes active."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import stripe

from emulators.serve import serve
from emulators.stripe import DEFAULT_API_KEY, create_emulator
from hub import integrations as store
from hub.billing import entitlements, events, mirror, settings as billing
from hub.billing.catalog_sync import sync_catalog
from hub.billing.entitlements import EntitlementError, check_activation, standing
from hub.billing.plans import DEFAULT_FILE, load_catalog
from hub.billing.subscriptions import start_checkout
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.inbound.provider_endpoints import create_inbound, follow_credential
from hub.providers.stripe.client import make_client
from hub.schema import billing_account, billing_invoice, billing_settings, inbound_event, integration, outbox_event
from hub.web.app import create_app

DAY = 86400


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@dataclass
class World:
    engine: sa.Engine
    keyring: Keyring
    emulator: object
    client: stripe.StripeClient
    operator: int  # the operator's Stripe integration
    acme: int  # a customer company

    def pending(self) -> int:
        return events.pending_count(self.engine)

    def settle(self) -> events.Applied:
        """Wait until the emulator has delivered its webhooks to the hub, then apply them."""
        assert self.emulator.wait_idle(10)
        return events.apply_pending(self.engine, self.keyring)

    def account(self) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(billing_account).where(billing_account.c.company_id == self.acme)).mappings().first()
        return {k: v for k, v in dict(row).items() if k != "synced_at"} if row else {}

    def invoices(self) -> set[tuple]:
        with self.engine.connect() as conn:
            return {tuple(r) for r in conn.execute(sa.select(billing_invoice.c.stripe_invoice_id, billing_invoice.c.status,
                                                             billing_invoice.c.amount_paid))}


@pytest.fixture
def world(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    emulator = create_emulator(webhook_retry_s=(0.05, 0.05, 0.05))
    with serve(emulator.app) as stripe_url, serve(create_app(clean_db)) as hub_url:
        with clean_db.begin() as conn:
            operator_co = store.create_company(conn, "Hub Operator")
            acme = store.create_company(conn, "Acme Builders")
            operator = store.add_integration(conn, keyring, company_id=operator_co, provider="stripe", name="Billing", active=True,
                                             config={"base_url": stripe_url},
                                             credentials={"api_key": DEFAULT_API_KEY, "webhook_secret": "whsec_placeholder"})
            endpoint = create_inbound(conn, keyring, operator)
        client = make_client(DEFAULT_API_KEY, stripe_url, retries=0)
        # the operator registers the hub's receiver at Stripe, and stores the secret Stripe made
        hook = client.v1.webhook_endpoints.create(params={"url": f"{hub_url}/webhooks/stripe/{endpoint}", "enabled_events": ["*"]})
        with clean_db.begin() as conn:
            store.update_connection(conn, keyring, operator, credentials={"webhook_secret": hook.secret})
            assert follow_credential(conn, keyring, operator)
            billing.enable(conn, keyring, operator, grace_days=14)
        sync_catalog(client, load_catalog())
        yield World(clean_db, keyring, emulator, client, operator, acme)
        emulator.wait_idle(2)
        emulator.close()


def _checkout(world: World, plan: str = "pro", card: str = "4242 4242 4242 4242") -> None:
    with world.engine.begin() as conn:
        url = start_checkout(conn, world.client, load_catalog(), world.acme, plan, "month",
                             "https://hub.example/billing/done?session={CHECKOUT_SESSION_ID}", "https://hub.example/billing")
    paid = httpx.post(url, data={"email": "billing@acme.example", "name": "Ann", "number": card, "expiry": "12 / 34", "cvc": "123"})
    assert paid.status_code == 303, paid.text[:300]


def test_the_catalog_sync_is_idempotent_and_a_new_amount_is_a_new_price(world, tmp_path):
    again = sync_catalog(world.client, load_catalog())
    assert not again.changed and len(again.unchanged) == 9  # 3 products, 6 prices
    pro = world.client.v1.prices.list(params={"lookup_keys": ["hub_pro_month"]}).data[0]
    assert (pro.unit_amount, pro.product, pro.recurring.interval) == (14900, "hub_pro", "month")
    raised = tmp_path / "plans.toml"
    raised.write_text(DEFAULT_FILE.read_text().replace("monthly = 14900", "monthly = 15900"))
    changed = sync_catalog(world.client, load_catalog(raised))
    assert len(changed.created) == 1 and changed.archived == [f"price {pro.id}"]
    now = world.client.v1.prices.list(params={"lookup_keys": ["hub_pro_month"]}).data[0]
    assert now.id != pro.id and now.unit_amount == 15900
    assert world.client.v1.prices.retrieve(pro.id).active is False
    assert not sync_catalog(world.client, load_catalog(raised)).changed


def test_checkout_makes_a_trialing_subscription_mirrored_from_the_webhooks(world):
    _checkout(world)
    applied = world.settle()
    assert applied.events >= 1 and applied.left_pending == 0 and world.pending() == 0
    account = world.account()
    assert (account["status"], account["plan_key"], account["interval"]) == ("trialing", "pro", "month")
    assert account["trial_end"] is not None and account["had_trial"] is True
    assert account["payment_method"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
    assert account["stripe_customer_id"].startswith("cus_")
    # a second checkout for the same company is refused: it changes plan instead
    with world.engine.begin() as conn, pytest.raises(ValidationError, match="already has a subscription"):
        start_checkout(conn, world.client, load_catalog(), world.acme, "starter", "month", "https://x/ok", "https://x/no")


def test_events_out_of_order_duplicated_or_lost_converge_to_the_same_state(world):
    _checkout(world)
    world.settle()
    settled, invoices = world.account(), world.invoices()
    assert settled["status"] == "trialing"
    with world.engine.begin() as conn:
        ids = [r.id for r in conn.execute(sa.select(inbound_event.c.id, inbound_event.c.payload)
                                          .where(inbound_event.c.integration_id == world.operator).order_by(inbound_event.c.id))
               if mirror.customer_of_event(r.payload)]  # the customer's events (the catalog's are not about one)
    assert len(ids) >= 3
    for replay in (ids[:1], list(reversed(ids)), ids + ids[:2]):  # the oldest alone (stale object), reversed, duplicated
        with world.engine.begin() as conn:
            conn.execute(sa.delete(billing_invoice))
            conn.execute(sa.delete(billing_account))
            conn.execute(sa.update(inbound_event).where(inbound_event.c.id.in_(replay)).values(processed_at=None))
        events.apply_pending(world.engine, world.keyring)
        assert world.account() == settled and world.invoices() == invoices, replay
    # every webhook lost: the nightly reconciliation finds the customer at Stripe and repairs it
    with world.engine.begin() as conn:
        conn.execute(sa.delete(billing_invoice))
        conn.execute(sa.delete(billing_account))
    report = mirror.reconcile(world.engine.begin, world.client)
    assert report.repaired == [world.acme] and report.failed == []
    assert world.account() == settled and world.invoices() == invoices
    assert mirror.reconcile(world.engine.begin, world.client).repaired == []  # nothing left to repair


def test_a_failed_renewal_goes_past_due_notifies_once_and_read_only_after_the_grace(world):
    clock = world.client.v1.test_helpers.test_clocks.create(params={"frozen_time": 1_767_225_600})  # 2026-01-01
    customer = world.client.v1.customers.create(params={"name": "Acme Builders", "test_clock": clock.id,
                                                        "metadata": {mirror.COMPANY_KEY: str(world.acme)}})
    card = world.client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    world.client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})
    price = world.client.v1.prices.list(params={"lookup_keys": ["hub_starter_month"]}).data[0]
    world.client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})
    world.settle()
    assert (world.account()["status"], world.account()["plan_key"]) == ("active", "starter")
    failing = world.client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": customer.id})
    world.client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": failing.id}})
    world.client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": 1_769_904_000 + 7200})  # past Feb 1
    applied = world.settle()
    account = world.account()
    assert account["status"] == "past_due" and account["past_due_since"] is not None
    assert applied.dunning == [world.acme]
    assert {(i[1]) for i in world.invoices()} >= {"paid", "open"}
    with world.engine.connect() as conn:
        notices = conn.execute(sa.select(outbox_event.c.payload).where(outbox_event.c.event_type == "billing.past_due")).all()
        assert len(notices) == 1 and "Starter plan" in notices[0].payload["message"]
        found = standing(conn, world.acme)
        assert found.read_only is False and found.grace_ends == account["past_due_since"] + timedelta(days=14)
        assert standing(conn, world.acme, now=found.grace_ends).read_only is True
    # a second retry fails too: still one notice (once per episode)
    world.client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": 1_769_904_000 + 4 * DAY})
    world.settle()
    with world.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(outbox_event)
                           .where(outbox_event.c.event_type == "billing.past_due")) == 1
    # past the grace: nothing more can be turned on
    with world.engine.begin() as conn:
        conn.execute(sa.update(billing_account).values(past_due_since=sa.func.now() - timedelta(days=15)))
        with pytest.raises(EntitlementError, match="read-only"):
            check_activation(conn, world.acme, "quickbooks")
        with pytest.raises(EntitlementError, match="read-only"):
            entitlements.check_changes_allowed(conn, world.acme)


# ---- plan limits (no Stripe call needed: the mirror is what they read) ----------------------------
def _on_plan(conn, company_id: int, plan: str | None, status: str = "active") -> None:
    conn.execute(sa.insert(billing_account).values(company_id=company_id, stripe_customer_id=f"cus_{company_id}",
                                                   status=status, plan_key=plan))


@pytest.fixture
def limits(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        operator_co = store.create_company(conn, "Hub Operator")
        acme = store.create_company(conn, "Acme Builders")
        operator = store.add_integration(conn, keyring, company_id=operator_co, provider="stripe", name="Billing", active=True,
                                         credentials={"api_key": "sk_test_x", "webhook_secret": "whsec_x"})
        billing.enable(conn, keyring, operator)
    return clean_db, keyring, acme


def _add(conn, keyring, company_id: int, provider: str, name: str, active: bool = True) -> int:
    credentials = {"quickbooks": {"client_id": "a", "client_secret": "b", "refresh_token": "c"},
                   "slack": {"bot_token": "xoxb-1", "signing_secret": "s"},
                   "procore": {"client_id": "a", "client_secret": "b", "refresh_token": "c"}}[provider]
    config = {"quickbooks": {"realm_id": "1"}, "slack": {"default_channel": "#ops"}, "procore": {"company_id": "1"}}[provider]
    return store.add_integration(conn, keyring, company_id=company_id, provider=provider, name=name, active=active,
                                 config=config, credentials=credentials)


def test_a_provider_the_plan_lacks_is_refused_naming_the_plan_that_has_it(limits):
    engine, keyring, acme = limits
    with engine.begin() as conn:
        _on_plan(conn, acme, "starter")
        _add(conn, keyring, acme, "quickbooks", "Books")
        with pytest.raises(EntitlementError, match="The Starter plan does not include Procore. The Pro plan does"):
            _add(conn, keyring, acme, "procore", "Jobs")
    with engine.begin() as conn:  # added inactive, then enabled: the same refusal, nothing changed
        jobs = _add(conn, keyring, acme, "procore", "Jobs", active=False)
    with engine.begin() as conn, pytest.raises(EntitlementError, match="Pro plan"):
        store.set_active(conn, jobs, True)
    with engine.begin() as conn:  # a passing connection check leaves it inactive, with the reason shown
        assert store.activate_if_new(conn, jobs) is False
        row = conn.execute(sa.select(integration.c.is_active, integration.c.error_message).where(integration.c.id == jobs)).first()
        assert row.is_active is False and "does not include Procore" in row.error_message


def test_the_cap_on_active_integrations_holds_and_billing_off_enforces_nothing(limits):
    engine, keyring, acme = limits
    with engine.begin() as conn:
        _on_plan(conn, acme, "starter")
        for n in range(3):
            _add(conn, keyring, acme, "slack", f"Slack {n}")
        with pytest.raises(EntitlementError, match="allows 3 active integrations, and 3 are active. The Pro plan does"):
            _add(conn, keyring, acme, "quickbooks", "Books")
        spare = _add(conn, keyring, acme, "quickbooks", "Books", active=False)
        store.set_active(conn, spare, False)  # disabling is never refused
    with engine.begin() as conn:
        conn.execute(sa.update(billing_account).values(status="canceled"))
        with pytest.raises(EntitlementError, match="no active subscription"):
            store.set_active(conn, spare, True)
        conn.execute(sa.delete(billing_settings))  # billing off: a self-hosted hub limits nothing
        store.set_active(conn, spare, True)


def test_the_plans_file_is_validated_with_clear_errors(tmp_path):
    bad = tmp_path / "plans.toml"
    bad.write_text(DEFAULT_FILE.read_text().replace('"procore"', '"procoer"', 1))
    with pytest.raises(ValidationError, match="names unknown providers \\['procoer'\\]"):
        load_catalog(bad)
    bad.write_text(DEFAULT_FILE.read_text().replace('key = "pro"', 'key = "starter"'))
    with pytest.raises(ValidationError, match="plan keys repeat"):
        load_catalog(bad)
    bad.write_text("currency = [")
    with pytest.raises(ValidationError, match="is not TOML"):
        load_catalog(bad)
    with pytest.raises(ValidationError, match="cannot read the plans file"):
        load_catalog(tmp_path / "missing.toml")
    assert load_catalog(Path(DEFAULT_FILE)).get("pro").allows("procore")


def test_the_sensor_launches_the_events_job_and_the_assets_apply_and_reconcile(world):
    import dagster as dg

    from pipelines.assets.billing import stripe_billing_sensor, subscription_events, subscription_reconciliation
    from resources import HubDatabase, SecretStore

    resources = {"hub_db": HubDatabase(), "secrets": SecretStore()}
    world.settle()  # the catalog's own events (products, prices): about no customer, marked done
    idle = stripe_billing_sensor(dg.build_sensor_context(cursor=None, resources=resources))
    assert isinstance(idle, dg.SkipReason)
    _checkout(world)
    assert world.emulator.wait_idle(10)
    asked = stripe_billing_sensor(dg.build_sensor_context(cursor="4", resources=resources))
    assert [r.run_key for r in asked.run_requests] == ["billing-5"] and asked.cursor == "5"
    done = dg.materialize([subscription_events], resources=resources)
    applied = done.asset_materializations_for_node("billing__subscription_events")[0].metadata
    assert applied["events_applied"].value >= 1 and applied["left_pending"].value == 0
    assert world.account()["status"] == "trialing"
    assert isinstance(stripe_billing_sensor(dg.build_sensor_context(cursor="5", resources=resources)), dg.SkipReason)
    with world.engine.begin() as conn:
        conn.execute(sa.delete(billing_account))
    done = dg.materialize([subscription_reconciliation], resources=resources)
    repaired = done.asset_materializations_for_node("billing__subscription_reconciliation")[0].metadata
    assert repaired["repaired"].value == 1 and world.account()["status"] == "trialing"


def test_a_plan_change_can_be_previewed_during_the_trial(world):
    from hub.billing.subscriptions import preview_change

    _checkout(world)  # a Pro trial
    world.settle()
    with world.engine.begin() as conn:
        preview = preview_change(conn, world.client, load_catalog(), world.acme, "business", "month")
    assert preview.proration == 0 and preview.currency == "usd"  # nothing is billed for the change during a trial
