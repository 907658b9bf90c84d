"""The export preview against the QuickBooks and Xero emulators over real HTTP, on real
PostgreSQL: for seeded data it lists create / update (field by field) / link / hold back with
the reasons; it writes nothing (every table and the emulator's write counter are the same
before and after); then the real export does exactly what it said, record by record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub import schema
from hub.crypto import Keyring
from hub.providers.connect import open_client
from hub.schema import invoice, sync_conflict, sync_write, vendor
from hub.sync import preferences
from hub.sync.export import ACTIONS
from hub.sync.export_preview import preview_export
from hub.sync.export_vendors import export_vendors
from hub.web.record_trail import load_trail
from tests.test_invoice_export import Books
from tests.test_vendor_two_way import FAST, REALM, TENANT, _connect

MAPPINGS = {"quickbooks": {"Lumber": "Job Materials", "Rent": "Rent or Lease"}, "xero": {"Lumber": "453", "Rent": "469"}}


@pytest.fixture(params=["quickbooks", "xero"])
def books(request, clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    if request.param == "quickbooks":
        emulator = quickbooks_emulator(vendors=4, bills=3, invoices=2, accounts=12)
        with serve(emulator.app) as url:
            config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
            iid, company_id = _connect(clean_db, keyring, "quickbooks", config, {"realmId": REALM}, emulator)
            yield Books(clean_db, keyring, iid, company_id, emulator, "quickbooks")
    else:
        emulator = xero_emulator(contacts=6, invoices=6, accounts=18)
        with serve(emulator.app) as url:
            config = {"tenant_id": TENANT, "base_url": url, "token_url": url + "/connect/token"}
            iid, company_id = _connect(clean_db, keyring, "xero", config, {"tenantId": TENANT}, emulator)
            yield Books(clean_db, keyring, iid, company_id, emulator, "xero")


def _linked_vendors(books) -> list:
    return books.rows(vendor, vendor.c.integration_id == books.iid, vendor.c.is_active)


def _tables(engine) -> dict[str, list]:
    """Every row of every hub table, as text (sorted: the comparison is of sets of rows). Not
    `rate_budget`: it counts the calls made to the provider (the preview reads), not data."""
    with engine.connect() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(sa.select(t))) for t in schema.metadata.sorted_tables
                if t.name != "rate_budget"}


def _preview(books, **kwargs):
    client = open_client(books.engine, books.keyring, books.iid, retry=FAST)
    try:
        return preview_export(books.engine, books.keyring, books.iid, client=client, **kwargs)
    finally:
        client.transport.close()


def _seed(books) -> dict[str, int]:
    """One record for each thing an export can do, named; returns their local ids."""
    books.prepare(MAPPINGS[books.provider])
    first, second, third = _linked_vendors(books)[:3]
    ids = {"vendor_first": first["id"]}
    # two bills exported now, so that the preview sees linked ones to update and to hold back
    ids["bill_update"] = books.bill("P-UPD", first["id"], [("Lumber", "100.00")])
    ids["bill_conflict"] = books.bill("P-CON", first["id"], [("Rent", "40.00")])
    assert books.export_invoices().created == 2
    # vendors: a new one, a changed one, one that already exists there (its tax id), one in conflict
    ids["vendor_new"] = books.add_local(display_name="Preview Plumbing Zyxw", email="books@preview-plumbing.example")
    ids["vendor_changed"] = second["id"]
    books.edit(second["id"], email="new-address@example.com", phone="+1 555 0100")
    # the twin: a local vendor that is the third remote one (same tax id and name) with another phone,
    # which the hub owns (field_ownership): linked, then its phone sent; the imported row of that
    # remote vendor is retired and unlinked, so the remote one is free to link
    ids["vendor_twin"] = books.add_local(display_name=third["display_name"], tax_id=third["tax_id"], phone="+1 555 0199")
    books.edit(third["id"], is_active=False)
    with books.engine.begin() as conn:
        conn.execute(sa.update(vendor).where(vendor.c.id == third["id"]).values(integration_id=None, remote_id=None,
                                                                                 synced_values=None))
        conn.execute(sa.delete(schema.external_ref).where(schema.external_ref.c.local_id == third["id"],
                                                          schema.external_ref.c.entity_type == "vendor"))
    ids["vendor_conflict"] = first["id"]
    books.edit(first["id"], display_name="Renamed Locally")
    with books.engine.begin() as conn:
        conn.execute(sa.insert(sync_conflict).values(
            company_id=books.company_id, integration_id=books.iid, entity_type="vendor", local_id=first["id"],
            remote_id=first["remote_id"], field="display_name", base_value=first["display_name"],
            local_value="Renamed Locally", remote_value="Renamed Remotely"))
    # invoices: a new one, one for the new vendor, one with an unmapped category, changed ones
    ids["bill_new"] = books.bill("P-NEW", second["id"], [("Lumber", "12.00"), ("Rent", "30.00")])
    ids["bill_for_new_vendor"] = books.bill("P-NEWV", ids["vendor_new"], [("Rent", "9.00")])
    ids["bill_unmapped"] = books.bill("P-UNM", second["id"], [("Lumber", "1.00"), ("Produce", "2.00")])
    with books.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id.in_([ids["bill_update"], ids["bill_conflict"]]))
                     .values(due_date=sa.func.date("2025-05-15")))
        conn.execute(sa.insert(sync_conflict).values(
            company_id=books.company_id, integration_id=books.iid, entity_type="invoice", local_id=ids["bill_conflict"],
            remote_id=books.invoice(ids["bill_conflict"])["remote_id"], field="total", base_value="40.00",
            local_value="40.00", remote_value="44.00"))
    return ids


def _decisions(preview) -> dict[tuple[str, int], object]:
    return {(d.entity_type, d.local_id): d for d in preview.decisions}


def test_the_preview_lists_what_the_export_then_does_and_writes_nothing(books):
    ids = _seed(books)
    tables, writes = _tables(books.engine), books.emulator.state.writes
    stats_before = books.emulator.core.stats()["by_status"]

    preview = _preview(books)

    assert _tables(books.engine) == tables, "the preview wrote to the hub database"
    assert books.emulator.state.writes == writes, "the preview wrote to the provider"
    assert set(books.emulator.core.stats()["by_status"]) <= set(stats_before) | {"200"}  # read answers only
    by_record = _decisions(preview)
    actions = {key: d.action for key, d in by_record.items()}
    assert actions == {
        ("vendor", ids["vendor_new"]): "create",
        ("vendor", ids["vendor_changed"]): "update",
        ("vendor", ids["vendor_twin"]): "link",
        ("vendor", ids["vendor_conflict"]): "hold",
        ("invoice", ids["bill_new"]): "create",
        ("invoice", ids["bill_for_new_vendor"]): "create",
        ("invoice", ids["bill_unmapped"]): "hold",
        ("invoice", ids["bill_update"]): "update",
        ("invoice", ids["bill_conflict"]): "hold",
    }
    assert preview.counts == {"create": 3, "update": 2, "link": 1, "hold": 3, "skip": 0}
    assert list(preview.counts) == list(ACTIONS)

    changed = by_record[("vendor", ids["vendor_changed"])]
    old = books.rows(vendor, vendor.c.id == ids["vendor_changed"])[0]["synced_values"]
    assert {(c.field, c.old, c.new) for c in changed.changes} == {
        ("email", old["email"], "new-address@example.com"), ("phone", old["phone"], "+1 555 0100")}
    assert {c.field: c.new for c in by_record[("vendor", ids["vendor_new"])].changes}["display_name"] == "Preview Plumbing Zyxw"
    twin = by_record[("vendor", ids["vendor_twin"])]
    assert "by tax id" in twin.reason and [(c.field, c.new) for c in twin.changes] == [("phone", "+1 555 0199")]
    assert by_record[("vendor", ids["vendor_conflict"])].hold == "conflict"
    assert [(c.field, c.old, c.new) for c in by_record[("invoice", ids["bill_update"])].changes] == [
        ("due_date", "2025-03-31", "2025-05-15")]
    unmapped = by_record[("invoice", ids["bill_unmapped"])]
    assert unmapped.hold == "mapping" and unmapped.reason == "line 2: category 'Produce' has no account mapping for this integration"
    assert by_record[("invoice", ids["bill_conflict"])].hold == "conflict"
    ahead = by_record[("invoice", ids["bill_for_new_vendor"])]
    assert "is sent first in the same run (create)" in ahead.reason
    assert {c.field for c in by_record[("invoice", ids["bill_new"])].changes} >= {"number", "vendor", "total", "lines"}

    # the real export, as a sync run does it: vendors, then invoices
    first_write = _last_write_id(books)
    client = open_client(books.engine, books.keyring, books.iid, retry=FAST)
    try:
        vendors = export_vendors(books.engine, books.keyring, books.iid, client=client)
    finally:
        client.transport.close()
    invoices = books.export_invoices()
    assert (vendors.created, vendors.updated, vendors.linked, vendors.blocked, vendors.failed) == (1, 2, 1, 1, 0)
    assert (invoices.created, invoices.updated, invoices.blocked, invoices.failed) == (2, 1, 2, 0)

    # exactly the writes the preview announced: a create per create, an update per update and
    # per link with fields still to send, nothing for a hold
    expected = {(d.entity_type, d.local_id, "create" if d.action == "create" else "update") for d in preview.decisions
                if d.action in ("create", "update") or (d.action == "link" and d.changes)}
    with books.engine.connect() as conn:
        sent = {(w.entity_type, w.local_id, w.operation) for w in conn.execute(
            sa.select(sync_write).where(sync_write.c.id > first_write, sync_write.c.status == "succeeded"))}
    assert sent == expected
    for (entity, local_id), decision in by_record.items():
        table = vendor if entity == "vendor" else invoice
        row = books.rows(table, table.c.id == local_id)[0]
        if decision.action in ("create", "update", "link"):
            assert row["integration_id"] == books.iid and row["sync_error"] is None, (entity, local_id)
        if decision.action == "link":
            assert row["remote_id"] == decision.remote_id
        if decision.action == "hold" and decision.hold != "conflict":
            assert row["sync_error"] == decision.reason
    assert books.invoice(ids["bill_update"])["due_date"].isoformat() == "2025-05-15"

    # each record's trail says where it went: the held-back bill is named by the run that held it
    with books.engine.connect() as conn:
        held = load_trail(conn, books.company_id, "invoice", ids["bill_unmapped"])
        created = load_trail(conn, books.company_id, "vendor", ids["vendor_new"])
        assert load_trail(conn, books.company_id + 1, "vendor", ids["vendor_new"]) is None  # another company's: not found
        assert load_trail(conn, books.company_id, "supplier", ids["vendor_new"]) is None  # not a declared kind
    [run] = [r for r in held.runs if r["action"] == "export_invoices" and r["id"] == invoices.sync_log_id]
    assert run["why"] == ["named it in its errors: line 2: category 'Produce' has no account mapping for this integration"]
    assert held.writes == [] and held.links == []
    [write] = created.writes
    assert (write["operation"], write["status"]) == ("create", "succeeded")
    assert [link["remote_id"] for link in created.links] == [write["remote_id"]]
    assert [(r["id"], r["why"]) for r in created.runs] == [(vendors.sync_log_id, ["sent its create (succeeded)"])]

    # and the next preview has nothing left but the held-back records
    again = _preview(books)
    assert {(d.entity_type, d.local_id): d.action for d in again.decisions} == {
        key: "hold" for key, d in by_record.items() if d.action == "hold"}


def _last_write_id(books) -> int:
    with books.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.coalesce(sa.func.max(sync_write.c.id), 0)))


def test_a_failing_blocking_check_holds_its_record_back_and_preferences_skip_a_stream(books):
    books.prepare(MAPPINGS[books.provider])
    owner = _linked_vendors(books)[0]["id"]
    good = books.bill("Q-OK", owner, [("Lumber", "10.00")])
    bad = books.bill("Q-BAD", owner, [("Lumber", "10.00")])
    with books.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == bad).values(total="99.00"))
    tables = _tables(books.engine)
    preview = _preview(books)
    assert _tables(books.engine) == tables  # the check was evaluated, not recorded
    decisions = _decisions(preview)
    assert decisions[("invoice", good)].action == "create"
    held = decisions[("invoice", bad)]
    assert (held.action, held.hold) == ("hold", "check")
    assert held.reason.startswith("failing quality check invoice_totals_match_lines: invoice Q-BAD: total 99.00")
    assert [c.name for c in preview.failing_checks] == ["invoice_totals_match_lines"]
    capped = _preview(books, limit=1, checks=False)  # at most one bill worked out: the other is counted, not decided
    assert [d.local_id for d in capped.decisions] == [good] and capped.undecided == {"invoice": 1}

    with books.engine.begin() as conn:
        preferences.update(conn, books.keyring, books.iid, stream="invoices", direction="import")
    skipped = _preview(books)
    assert skipped.skipped == {"invoice": "the invoices stream is set to import only"}
    assert not [d for d in skipped.decisions if d.entity_type == "invoice"] and skipped.failing_checks == []
