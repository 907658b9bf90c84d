"""`hub demo billing` against the bundled Stripe emulator: the operator's Stripe integration,
the hub's receiver registered at Stripe (its webhooks verify and are applied), the catalog,
and a subscription per demo company; a second run changes nothing."""

import sqlalchemy as sa

from emulators.registry import run_all
from emulators.serve import serve
from hub.billing import events
from hub.crypto import Keyring
from hub.demo import seed
from hub.demo_billing import connect_billing
from hub.schema import billing_account, company, inbound_event
from hub.web.app import create_app


def test_demo_billing_subscribes_each_company_and_receives_stripe_webhooks(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    list(seed(clean_db, keyring))
    with run_all(["stripe"], base_port=0) as emulators, serve(create_app(clean_db)) as hub_url:
        emulator, stripe_url = emulators["stripe"]
        lines = list(connect_billing(clean_db, keyring, stripe_url, hub_url))
        assert lines[0].startswith("billing on:") and "catalog 9 created, 0 unchanged" in lines[0], lines[0]
        assert lines[1:] == ["Acme Builders: Pro plan, trialing", "Bella Pizza: Business plan, active"], lines
        with clean_db.connect() as conn:
            plans = dict(conn.execute(sa.select(company.c.name, billing_account.c.plan_key)
                                      .join(billing_account, billing_account.c.company_id == company.c.id)).all())
        assert plans == {"Acme Builders": "pro", "Bella Pizza": "business"}
        assert emulator.wait_idle(10)
        with clean_db.connect() as conn:  # Stripe's signed webhooks reached the receiver and verified
            assert conn.scalar(sa.select(sa.func.count()).select_from(inbound_event).where(inbound_event.c.provider == "stripe")) > 0
        assert events.apply_pending(clean_db, keyring).left_pending == 0
        again = list(connect_billing(clean_db, keyring, stripe_url, hub_url))
        assert "catalog 0 created, 9 unchanged" in again[0], again[0]
        assert again[1:] == ["Acme Builders: Pro subscription trialing (already)",
                             "Bella Pizza: Business subscription active (already)"], again
