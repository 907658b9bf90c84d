"""`hub demo sync-data` against the demo's own emulators (registry settings), then the sync
jobs as a newcomer would launch them from the UI: checks evaluated, the two-sided vendor
edit recorded as a conflict, hub vendors and bills exported, the Procore document shared,
and the remote edits the scene made (a bill paid, RFIs reassigned / rescheduled / costed)
announced to the outbox, where the demo's routes pick them up."""

import pytest
import sqlalchemy as sa

from emulators.registry import run_all
from hub import integrations as store
from hub.crypto import Keyring
from hub.demo import connect_emulated
from hub.demo_sync import prepare
from hub.schema import customer, document, invoice, outbox_event, sync_conflict, sync_log
from pipelines.definitions import defs

OAUTH = {"client_id": "hub-demo", "client_secret": "hub-demo-secret", "refresh_token": "placeholder"}


@pytest.fixture
def demo(clean_db, secret_keys, dagster_instance):
    keyring = Keyring(secret_keys)
    with run_all(["quickbooks", "procore"], base_port=0) as running:
        qb, pc = (running[name][1] for name in ("quickbooks", "procore"))
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Acme Builders")
            ids = {
                "quickbooks": store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks", credentials=OAUTH,
                                                    config={"realm_id": "9130350000000001", "base_url": qb, "token_url": qb + "/oauth2/v1/tokens/bearer"}, active=True),
                "procore": store.add_integration(conn, keyring, company_id=company_id, provider="procore", credentials=OAUTH,
                                                 config={"company_id": "562949953421312", "base_url": pc, "token_url": pc + "/oauth/token"}, active=True),
            }
        list(connect_emulated(clean_db, keyring))
        for provider, integration_id in ids.items():
            dagster_instance.add_dynamic_partitions(f"{provider}_integrations", [f"{provider}-{integration_id}"])
        yield clean_db, keyring, ids, dagster_instance


def _run(instance, provider, integration_id):
    job = defs.resolve_job_def(f"{provider}_sync_job")
    return job.execute_in_process(partition_key=f"{provider}-{integration_id}", instance=instance, raise_on_error=False)


def test_the_demo_scene_shows_every_part_of_the_sync(demo):
    engine, keyring, ids, instance = demo
    lines = list(prepare(engine, keyring))
    assert not any("not prepared" in line or "not paid" in line or "not done" in line for line in lines), lines
    assert any("renamed in the hub and in the books" in line for line in lines)
    assert any("site-safety-plan.txt waits to be shared" in line for line in lines)
    assert any("hub customer 'Harbor Events Co' waits for export" in line for line in lines), lines
    assert any("hub sales invoice SALE-2001 to 'Harbor Events Co' (775.00) waits for export" in line for line in lines), lines
    for said in ("paid in the books", "reassigned to", "due date moved to", "given a cost impact of $4,800.00"):
        assert any(said in line for line in lines), (said, lines)
    assert _events(engine) == []  # the first imports announce nothing

    books = _run(instance, "quickbooks", ids["quickbooks"])
    assert books.success
    [paid] = _events(engine)
    assert (paid.event_type, paid.payload["status"], paid.payload["previous_status"]) == ("invoice.status_changed", "paid", "authorised")
    checks = {e.check_name: e.passed for e in books.get_asset_check_evaluations()}
    assert checks["invoice_totals_match_lines"] and checks["vendor_names_valid"]
    assert checks["invoice_lines_mapped"] is False  # HUB-1003's Equipment line: shown, and the bill held back
    with engine.connect() as conn:
        conflicts = conn.execute(sa.select(sync_conflict.c.field, sync_conflict.c.status)).all()
        bills = dict(conn.execute(sa.select(invoice.c.number, invoice.c.sync_error).where(invoice.c.number.like("HUB-%"))).all())
        exported = conn.scalar(sa.select(sa.func.count()).where(invoice.c.number.like("HUB-%"), invoice.c.remote_id.is_not(None)))
        logged = conn.scalar(sa.select(sa.func.count()).where(sync_log.c.dagster_run_id == books.run_id))
    assert conflicts == [("display_name", "open")]
    assert exported == 2 and "Equipment" in bills["HUB-1003"] and bills["HUB-1001"] is None
    with engine.connect() as conn:  # the receivable went out too, after its customer
        sale = conn.execute(sa.select(invoice.c.remote_id, invoice.c.sync_error, invoice.c.customer_id)
                            .where(invoice.c.number == "SALE-2001")).one()
        sent_to = conn.scalar(sa.select(customer.c.remote_id).where(customer.c.id == sale.customer_id))
    assert sale.remote_id is not None and sale.sync_error is None and sent_to is not None
    assert logged >= 6

    site = _run(instance, "procore", ids["procore"])
    assert site.success
    announced = [e for e in _events(engine) if e.event_type != "invoice.status_changed"]
    assert sorted(e.event_type for e in announced) == ["budget.alert", "schedule.changed", "task.assigned"]
    assert all(e.payload["entity"] == "rfi" and e.payload["project"]["name"] for e in announced)
    budget = next(e.payload for e in announced if e.event_type == "budget.alert")
    assert budget["cost_impact"]["after"] == {"status": "yes_known", "value": 4800.0} and budget["project_known_cost_impact"] == 4800.0
    with engine.connect() as conn:
        assert conn.scalar(sa.select(document.c.remote_id).where(document.c.filename == "site-safety-plan.txt")) is not None

    # the demo runs this on every start: the hub side is not duplicated, the open conflict not replayed;
    # the remote edits are made again, each a change from what the hub now holds
    again = list(prepare(engine, keyring))
    assert not any("waits for export" in line or "renamed" in line for line in again), again
    assert any("given a cost impact of $6,300.00" in line for line in again), again
    before = len(_events(engine))
    assert _run(instance, "procore", ids["procore"]).success
    assert sorted(e.event_type for e in _events(engine)[before:]) == ["budget.alert", "schedule.changed", "task.assigned"]


def _events(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox_event.c.event_type, outbox_event.c.payload).order_by(outbox_event.c.id)).all()
