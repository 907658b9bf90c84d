"""Vendors both ways against the emulators over real HTTP, on real PostgreSQL: pull merges,
conflicts and their resolution, matching, export with SyncToken and the idempotency ledger."""

import time
import uuid

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub import integrations as store
from hub.commands.conflicts import app as conflicts_app
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import TransientProblem
from hub.providers.transport import RetrySettings
from hub.schema import external_ref, sync_conflict, sync_log, sync_write, vendor
from hub.sync.engine import sync_stream
from hub.sync.export_vendors import export_vendors
from hub.sync.merge import merge
from hub.sync import write_ledger
from hub.providers.quickbooks.export import QuickBooksSide
from hub.sync.vendors import normalize_name, search_word, synced_fields, values_of
from tests.providers.conftest import qbo_rows

REALM, TENANT = "9130350000000001", "a3b1c5d7-0000-4000-8000-000000000001"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
FAST = RetrySettings(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, timeout_s=5.0)


def _connect(engine, keyring, provider, config, subject, emulator):
    with engine.begin() as conn:
        company_id = store.create_company(conn, "Acme Builders")
        iid = store.add_integration(conn, keyring, company_id=company_id, provider=provider, config=config,
                                    credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", subject)}, active=True)
    return iid, company_id


@pytest.fixture
def qbo(clean_db, secret_keys):
    emulator, keyring = quickbooks_emulator(vendors=5, invoices=0, accounts=12), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        iid, company_id = _connect(clean_db, keyring, "quickbooks", config, {"realmId": REALM}, emulator)
        yield Env(clean_db, keyring, iid, company_id, emulator, "quickbooks")


@pytest.fixture
def xero(clean_db, secret_keys):
    emulator, keyring = xero_emulator(contacts=5, invoices=5, accounts=18), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"tenant_id": TENANT, "base_url": url, "token_url": url + "/connect/token"}
        iid, company_id = _connect(clean_db, keyring, "xero", config, {"tenantId": TENANT}, emulator)
        yield Env(clean_db, keyring, iid, company_id, emulator, "xero")


class Env:
    def __init__(self, engine, keyring, iid, company_id, emulator, provider):
        self.engine, self.keyring, self.iid, self.company_id, self.emulator, self.provider = engine, keyring, iid, company_id, emulator, provider

    def pull(self):
        return sync_stream(self.engine, self.keyring, self.iid, registry.stream(f"{self.provider}/vendors"))

    def export(self, **kwargs):
        client = kwargs.pop("client", None) or open_client(self.engine, self.keyring, self.iid, retry=FAST)
        try:
            return export_vendors(self.engine, self.keyring, self.iid, client=client, **kwargs)
        finally:
            client.transport.close()

    def local(self, remote_id=None, **where):
        query = sa.select(vendor)
        if remote_id is not None:
            query = query.where(vendor.c.integration_id == self.iid, vendor.c.remote_id == remote_id)
        for name, value in where.items():
            query = query.where(vendor.c[name] == value)
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().one()

    def edit(self, vendor_id, **values):
        with self.engine.begin() as conn:
            conn.execute(sa.update(vendor).where(vendor.c.id == vendor_id).values(**values))

    def add_local(self, **values):
        with self.engine.begin() as conn:
            return conn.scalar(sa.insert(vendor).values(company_id=self.company_id, **values).returning(vendor.c.id))

    def rows(self, table, *where):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings().all()


def qbo_vendor(env, remote_id):
    return env.emulator.state.read("Vendor", remote_id)


def qbo_named(env, name):
    return [v for v in qbo_rows(env.emulator, "Vendor").values() if v["DisplayName"] == name]


def open_conflicts(env):
    return env.rows(sync_conflict, sync_conflict.c.status == "open")


# ---- the policy, as a function -------------------------------------------------------------------
def test_merge_policy_table():
    base = {"display_name": "A", "email": "a@x", "tax_id": "1", "phone": "1"}
    local = {"display_name": "L", "email": "l@x", "tax_id": "2", "phone": "1"}
    remote = {"display_name": "R", "email": "r@x", "tax_id": "3", "phone": "9"}
    owned = merge(base, local, remote, "field_ownership")
    assert owned.values == {"display_name": "L", "email": "l@x", "tax_id": "3", "phone": "9"}
    assert [c.field for c in owned.conflicts] == ["display_name"]
    assert owned.agreed == {"tax_id", "phone"}  # display_name and email stay pending for export
    assert merge(base, local, remote, "remote_wins").values == remote
    assert merge(base, local, remote, "local_wins").values == {**local, "phone": "9"}
    assert {c.field for c in merge(base, local, remote, "manual").conflicts} == {"display_name", "email", "tax_id"}
    same_change = merge(base, {**base, "email": "n@x"}, {**base, "email": "n@x"}, "manual")
    assert not same_change.conflicts and same_change.agreed == set(base)
    # no base: an empty side takes the other's value; other differences are two-sided
    first = merge(None, {"display_name": "Acme", "email": None, "phone": "1"}, {"display_name": "ACME", "email": "e@x", "phone": "2"},
                  "field_ownership")
    assert first.values == {"display_name": "Acme", "email": "e@x", "phone": "1"} and [c.field for c in first.conflicts] == ["display_name"]


def test_normalize_name():
    assert normalize_name("ACME, Inc.") == normalize_name("Acme  Inc") == normalize_name("acme") == "acme"
    assert normalize_name("Blue Supply L.L.C.") == "blue supply"
    assert normalize_name("Smith & Sons, Ltd") == "smith sons"
    assert normalize_name("Inc") == "inc"  # never empty


# ---- QuickBooks ------------------------------------------------------------------------------------
def test_pull_edit_export_updates_remote_with_the_sync_token(qbo):
    assert qbo.pull().counts.created == 5
    row = qbo.local("2")
    token = row["remote_version"]
    assert row["synced_values"]["email"] == row["email"]
    qbo.edit(row["id"], email="billing@blue.example.com", phone="+1-555-000-1111")

    result = qbo.export()
    assert (result.updated, result.created, result.failed) == (1, 0, 0)
    remote = qbo_vendor(qbo, "2")
    assert remote["PrimaryEmailAddr"]["Address"] == "billing@blue.example.com" and remote["PrimaryPhone"]["FreeFormNumber"] == "+1-555-000-1111"
    assert int(remote["SyncToken"]) == int(token) + 1
    row = qbo.local("2")
    assert row["remote_version"] == remote["SyncToken"] and row["synced_values"]["email"] == "billing@blue.example.com"
    [write] = qbo.rows(sync_write)
    assert (write["operation"], write["status"], write["remote_id"], write["attempts"]) == ("update", "succeeded", "2", 1)
    [log] = qbo.rows(sync_log, sync_log.c.action == "export_vendors")
    assert (log["direction"], log["status"], log["records_processed"]) == ("outbound", "completed", 1)

    again = qbo.export()  # nothing new
    assert (again.created, again.updated, again.linked, again.skipped) == (0, 0, 0, 0)
    assert qbo_vendor(qbo, "2")["SyncToken"] == remote["SyncToken"]
    assert qbo.pull().counts.conflicts == 0 and qbo.local("2")["email"] == "billing@blue.example.com"


def test_remote_only_change_comes_in(qbo):
    qbo.pull()
    qbo.emulator.state.mutate("update", "Vendor", "3", {"CompanyName": "Cedar Holdings LLC", "PrimaryPhone": {"FreeFormNumber": "+1-555-333-0000"}})
    qbo.emulator.state.mutate("deactivate", "Vendor", "4")
    counts = qbo.pull().counts
    assert counts.conflicts == 0
    row = qbo.local("3")
    assert (row["legal_name"], row["phone"]) == ("Cedar Holdings LLC", "+1-555-333-0000")
    assert row["synced_values"]["legal_name"] == "Cedar Holdings LLC"
    assert qbo.local("4")["is_active"] is False
    assert qbo.export().updated == 0  # nothing local to send back


def test_both_changed_display_name_is_a_conflict_until_resolved(qbo):
    qbo.pull()
    one, two = qbo.local("1"), qbo.local("2")
    qbo.edit(one["id"], display_name="Acme Local Name")
    qbo.edit(two["id"], display_name="Blue Local Name")
    qbo.emulator.state.mutate("update", "Vendor", "1", {"DisplayName": "Acme Remote Name"})
    qbo.emulator.state.mutate("update", "Vendor", "2", {"DisplayName": "Blue Remote Name"})

    assert qbo.pull().counts.conflicts == 2
    assert qbo.local("1")["display_name"] == "Acme Local Name"  # the local value is kept
    conflicts = {c["local_id"]: c for c in open_conflicts(qbo)}
    assert conflicts[one["id"]]["field"] == "display_name"
    assert (conflicts[one["id"]]["local_value"], conflicts[one["id"]]["remote_value"], conflicts[one["id"]]["base_value"]) == (
        "Acme Local Name", "Acme Remote Name", "Acme Supply Co")
    qbo.pull()  # a second pull neither piles up conflicts nor settles them
    assert len(open_conflicts(qbo)) == 2 and qbo.local("1")["display_name"] == "Acme Local Name"

    held = qbo.export()
    assert held.blocked == 2 and held.updated == 0
    assert qbo_vendor(qbo, "1")["DisplayName"] == "Acme Remote Name"  # not exported while open

    runner = CliRunner()
    listed = runner.invoke(conflicts_app, ["list", "--integration", str(qbo.iid)])
    assert listed.exit_code == 0 and "Acme Local Name" in listed.output and "Blue Remote Name" in listed.output
    assert runner.invoke(conflicts_app, ["resolve", str(conflicts[one["id"]]["id"]), "--keep", "local"]).exit_code == 0
    assert runner.invoke(conflicts_app, ["resolve", str(conflicts[two["id"]]["id"]), "--keep", "remote"]).exit_code == 0
    again = runner.invoke(conflicts_app, ["resolve", str(conflicts[two["id"]]["id"]), "--keep", "remote"])
    assert again.exit_code == 1 and "already resolved" in again.output
    bad = runner.invoke(conflicts_app, ["resolve", "999999", "--keep", "sideways"])
    assert bad.exit_code == 1 and bad.output.startswith("Error:")

    row_two = qbo.local("2")
    assert row_two["display_name"] == "Blue Remote Name" and row_two["synced_values"]["display_name"] == "Blue Remote Name"
    result = qbo.export()
    assert (result.updated, result.blocked) == (1, 0)  # only the one kept local goes out
    assert qbo_vendor(qbo, "1")["DisplayName"] == "Acme Local Name" and qbo_vendor(qbo, "2")["DisplayName"] == "Blue Remote Name"
    assert not open_conflicts(qbo)
    assert "resolved (kept_local)" in runner.invoke(conflicts_app, ["list", "--all"]).output


def test_field_ownership_remote_tax_id_wins_local_email_wins(qbo):
    qbo.pull()
    row = qbo.local("3")
    qbo.edit(row["id"], tax_id="11-1111111", email="hub@cedar.example.com")
    qbo.emulator.state.mutate("update", "Vendor", "3", {"TaxIdentifier": "22-2222222", "PrimaryEmailAddr": {"Address": "qbo@cedar.example.com"}})
    assert qbo.pull().counts.conflicts == 0
    row = qbo.local("3")
    assert (row["tax_id"], row["email"]) == ("22-2222222", "hub@cedar.example.com")
    assert qbo.export().updated == 1
    remote = qbo_vendor(qbo, "3")
    assert (remote["TaxIdentifier"], remote["PrimaryEmailAddr"]["Address"]) == ("22-2222222", "hub@cedar.example.com")


def test_adoption_on_pull_by_tax_id_email_and_name(qbo):
    remote = {i: qbo_vendor(qbo, str(i)) for i in range(1, 6)}
    by_tax = qbo.add_local(display_name="Totally Different Name", tax_id=remote[1]["TaxIdentifier"].replace("-", ""))
    by_email = qbo.add_local(display_name="Another Name", email=remote[2]["PrimaryEmailAddr"]["Address"].upper())
    by_name = qbo.add_local(display_name="CEDAR SUPPLY, co.", phone="+1-555-999-0000")
    stranger = qbo.add_local(display_name="Nobody Like Us Ltd")
    counts = qbo.pull().counts
    assert counts.created == 2  # vendors 4 and 5: nobody to adopt them
    for local_id, remote_id in ((by_tax, "1"), (by_email, "2"), (by_name, "3")):
        assert qbo.local(remote_id)["id"] == local_id
    with qbo.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(vendor)) == 6  # 5 remote + the stranger, no duplicates
        refs = conn.execute(sa.select(external_ref.c.local_id, external_ref.c.remote_id)).all()
    assert set(refs) >= {(by_tax, "1"), (by_email, "2"), (by_name, "3")}
    assert qbo.local(id=stranger)["integration_id"] is None
    adopted = qbo.local("3")
    # no base: the empty email takes the remote's; the local phone (hub-owned) is kept, pending export
    assert adopted["email"] == remote[3]["PrimaryEmailAddr"]["Address"] and adopted["phone"] == "+1-555-999-0000"
    # display names differ (shared field, no base): conflicts to settle, not silent overwrites
    assert {(c["local_id"], c["field"]) for c in open_conflicts(qbo)} == {(by_tax, "display_name"), (by_email, "display_name"),
                                                                            (by_name, "display_name")}


def test_export_matches_before_creating(qbo):
    remote = {i: qbo_vendor(qbo, str(i)) for i in range(1, 4)}
    by_tax = qbo.add_local(display_name=remote[1]["DisplayName"], tax_id=remote[1]["TaxIdentifier"], email="hub@acme.example.com")
    by_email = qbo.add_local(display_name=remote[2]["DisplayName"], email=remote[2]["PrimaryEmailAddr"]["Address"])
    by_name = qbo.add_local(display_name="Cedar Supply Company")
    new = qbo.add_local(display_name="Brand New Masonry LLC", email="ap@newmasonry.example.com", tax_id="77-7777777",
                        address={"line1": "1 Quarry Rd", "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US"})
    retired = qbo.add_local(display_name="Old Retired Vendor", is_active=False)
    before = qbo.emulator.state.count("Vendor")

    result = qbo.export()
    assert (result.linked, result.created, result.failed) == (3, 1, 0)
    assert qbo.emulator.state.count("Vendor") == before + 1  # no duplicate of vendors 1-3
    assert qbo.local("1")["id"] == by_tax and qbo.local("2")["id"] == by_email
    # vendor 3 matched by normalised name; "Company" vs "Co" differs on a shared field: a conflict
    assert qbo.local("3")["id"] == by_name and [c["local_id"] for c in open_conflicts(qbo)] == [by_name]
    # the hub owns email: the linked vendor's email went out in the same run
    assert qbo_vendor(qbo, "1")["PrimaryEmailAddr"]["Address"] == "hub@acme.example.com"
    created = qbo_named(qbo, "Brand New Masonry LLC")[0]
    assert created["BillAddr"]["Line1"] == "1 Quarry Rd" and created["TaxIdentifier"] == "77-7777777"
    row = qbo.local(created["Id"])
    assert row["id"] == new and row["address"]["Line1"] == "1 Quarry Rd"  # stored in the provider's form: not dirty
    assert qbo.local(id=retired)["integration_id"] is None

    again = qbo.export()
    assert (again.created, again.updated, again.linked, again.failed) == (0, 0, 0, 0) and again.blocked == 1
    assert qbo.emulator.state.count("Vendor") == before + 1


def test_a_refused_vendor_is_recorded_and_the_others_go_on(qbo):
    customer = qbo.emulator.state.read("Customer", 1)["DisplayName"]  # names are unique across customers and vendors
    refused = qbo.add_local(display_name=customer)
    fine = qbo.add_local(display_name="Perfectly Fine Vendor")
    result = qbo.export()
    assert (result.created, result.failed) == (1, 1)
    assert "6240" in qbo.local(id=refused)["sync_error"] and "Duplicate Name" in qbo.local(id=refused)["sync_error"]
    assert qbo.local(id=fine)["integration_id"] == qbo.iid
    [log] = qbo.rows(sync_log, sync_log.c.action == "export_vendors")
    assert log["status"] == "completed" and log["records_failed"] == 1
    assert log["errors"][0]["code"] == "6240" and log["errors"][0]["record_id"] == str(refused)
    assert [w["status"] for w in qbo.rows(sync_write, sync_write.c.local_id == refused)] == ["failed"]


def test_a_timed_out_create_is_not_created_twice(qbo):
    new = qbo.add_local(display_name="Slow Answer Lumber", tax_id="55-5555555")
    qbo.emulator.write_delay_ms = 2000  # the vendor is stored, the answer comes too late
    impatient = open_client(qbo.engine, qbo.keyring, qbo.iid, retry=RetrySettings(max_attempts=2, base_delay_s=0.01, timeout_s=0.75))
    with pytest.raises(TransientProblem):
        qbo.export(client=impatient)
    time.sleep(2.1)  # let the emulator finish answering
    qbo.emulator.write_delay_ms = 0
    [write] = qbo.rows(sync_write)
    assert (write["status"], write["operation"]) == ("pending", "create")  # outcome unknown
    assert len(qbo_named(qbo, "Slow Answer Lumber")) == 1
    assert "400" not in qbo.emulator.core.stats()["by_status"]  # the retry in the run was a replay, not a refused duplicate
    assert qbo.rows(sync_log, sync_log.c.action == "export_vendors")[0]["status"] == "failed"

    result = qbo.export()
    assert (result.created, result.linked) == (0, 1)
    [remote] = qbo_named(qbo, "Slow Answer Lumber")
    assert qbo.local(id=new)["remote_id"] == remote["Id"]
    [write] = qbo.rows(sync_write)
    assert (write["status"], write["remote_id"]) == ("succeeded", remote["Id"])  # the same ledger row, now known
    assert qbo.export().created == 0 and len(qbo_named(qbo, "Slow Answer Lumber")) == 1


def test_a_write_lost_before_the_call_is_resent_with_its_key(qbo):
    """A crash after the ledger row was committed but before the call: the next run finds no
    such vendor and resends with the same requestid; sending it once more changes nothing."""
    new = qbo.add_local(display_name="Crashed Before Sending Co")
    key = str(uuid.uuid4())
    sent = QuickBooksSide(None).party("vendor").payload(values_of(qbo.local(id=new), synced_fields("quickbooks")))  # what the export sends
    with qbo.engine.begin() as conn:
        conn.execute(sa.insert(sync_write).values(integration_id=qbo.iid, entity_type="vendor", local_id=new, operation="create",
                                                  request_key=key, payload_hash=write_ledger.payload_hash(sent), attempts=1))
    result = qbo.export()
    assert result.created == 1
    [write] = qbo.rows(sync_write)
    assert (write["request_key"], write["status"], write["attempts"]) == (key, "succeeded", 2)
    client = open_client(qbo.engine, qbo.keyring, qbo.iid, retry=FAST)
    try:
        replay = client.create("Vendor", {"DisplayName": "Crashed Before Sending Co"}, request_id=key)
    finally:
        client.transport.close()
    assert replay["Id"] == write["remote_id"] and len(qbo_named(qbo, "Crashed Before Sending Co")) == 1


def test_stale_sync_token_rereads_and_merges(qbo):
    qbo.pull()
    row = qbo.local("4")
    qbo.edit(row["id"], email="hub@delta.example.com")
    qbo.emulator.state.mutate("update", "Vendor", "4", {"PrimaryPhone": {"FreeFormNumber": "+1-555-444-4444"}})  # not pulled
    result = qbo.export()
    assert (result.updated, result.failed, result.conflicts) == (1, 0, 0)
    remote = qbo_vendor(qbo, "4")
    assert remote["PrimaryEmailAddr"]["Address"] == "hub@delta.example.com" and remote["PrimaryPhone"]["FreeFormNumber"] == "+1-555-444-4444"
    row = qbo.local("4")
    assert row["phone"] == "+1-555-444-4444" and row["remote_version"] == remote["SyncToken"]
    assert [w["status"] for w in qbo.rows(sync_write)] == ["failed", "succeeded"]  # 5010 refused, then sent with the new token

    # both sides renamed it: the stale write turns into a conflict, nothing is overwritten
    qbo.edit(row["id"], display_name="Delta Local")
    qbo.emulator.state.mutate("update", "Vendor", "4", {"DisplayName": "Delta Remote"})
    held = qbo.export()
    assert (held.updated, held.conflicts, held.blocked) == (0, 1, 1)
    assert qbo_vendor(qbo, "4")["DisplayName"] == "Delta Remote" and qbo.local("4")["display_name"] == "Delta Local"
    assert [c["field"] for c in open_conflicts(qbo)] == ["display_name"]


# ---- Xero ------------------------------------------------------------------------------------------
def test_xero_both_ways(xero):
    suppliers = {c["ContactID"]: c for c in xero.emulator.state.contacts.values() if c["IsSupplier"]}
    assert xero.pull().counts.created == len(suppliers)
    contact_id = sorted(suppliers)[0]
    row = xero.local(contact_id)
    xero.edit(row["id"], email="ap@changed.example.com", is_active=False)
    new = xero.add_local(display_name="Xero Fresh Supplies Ltd", email="ap@fresh.example.com", tax_id="12-3456789")
    non_supplier = next(c for c in xero.emulator.state.contacts.values() if not c["IsSupplier"])
    by_name = xero.add_local(display_name=non_supplier["Name"], email=non_supplier["EmailAddress"])
    count = len(xero.emulator.state.contacts)

    result = xero.export()
    assert (result.updated, result.created, result.linked, result.failed) == (1, 1, 1, 0)
    contact = xero.emulator.state.contacts[contact_id]
    assert (contact["EmailAddress"], contact["ContactStatus"]) == ("ap@changed.example.com", "ARCHIVED")
    assert len(xero.emulator.state.contacts) == count + 1
    assert xero.local(id=by_name)["remote_id"] == non_supplier["ContactID"]  # matched, not created again
    created = xero.emulator.state.contacts[xero.local(id=new)["remote_id"].lower()]
    assert created["Name"] == "Xero Fresh Supplies Ltd" and created["TaxNumber"] == "12-3456789"
    keys = [w["request_key"] for w in xero.rows(sync_write)]
    assert len(set(keys)) == len(keys) == 2 and all(w["status"] == "succeeded" for w in xero.rows(sync_write))

    # a remote edit meanwhile: the update refuses to overwrite blindly, re-reads, merges
    xero.edit(row["id"], phone="+1-555-123-0000")
    xero.emulator.state.mutate("update", "Contact", contact_id, {"TaxNumber": "99-9999999"})
    assert xero.export().updated == 1
    contact = xero.emulator.state.contacts[contact_id]
    assert contact["Phones"][0]["PhoneNumber"] == "+1-555-123-0000" and contact["TaxNumber"] == "99-9999999"
    assert xero.local(contact_id)["tax_id"] == "99-9999999"
    assert xero.export().updated == 0


def test_xero_timed_out_create_is_not_created_twice(xero):
    xero.add_local(display_name="Xero Slow Answer Co", tax_id="31-3131313")
    xero.emulator.write_delay_ms = 2000
    impatient = open_client(xero.engine, xero.keyring, xero.iid, retry=RetrySettings(max_attempts=2, base_delay_s=0.01, timeout_s=0.75))
    with pytest.raises(TransientProblem):
        xero.export(client=impatient)
    time.sleep(2.1)
    xero.emulator.write_delay_ms = 0
    assert xero.rows(sync_write)[0]["status"] == "pending"
    result = xero.export()
    assert (result.created, result.linked) == (0, 1)
    assert [c["Name"] for c in xero.emulator.state.contacts.values()].count("Xero Slow Answer Co") == 1
    assert xero.rows(sync_write)[0]["status"] == "succeeded"


# ---- matching names with accents ---------------------------------------------------------------
def test_search_word_is_a_word_of_the_name_as_written():
    assert search_word("Müller Bau GmbH") == "Müller"  # not the ASCII-folded "muller" the provider cannot match
    assert search_word("Acme Incorporated") == "Acme"  # a legal suffix only when nothing else is there
    assert search_word("Incorporated") == "Incorporated"
    assert search_word("O'Brien_%Supply") == "Supply"  # no quote or wildcard reaches the query
    assert search_word("  ") is None


@pytest.mark.parametrize("provider", ["quickbooks", "xero"])
def test_an_accented_vendor_is_found_at_the_provider_not_created_again(provider, request):
    env = request.getfixturevalue("qbo" if provider == "quickbooks" else "xero")
    if provider == "quickbooks":
        env.emulator.state.mutate("create", "Vendor", fields={"DisplayName": "Müller Bau GmbH"})
        count = lambda: env.emulator.state.count("Vendor")  # noqa: E731
    else:
        env.emulator.state.mutate("create", "Contact", fields={"Name": "Müller Bau GmbH"})
        count = lambda: len(env.emulator.state.contacts)  # noqa: E731
    before = count()
    local = env.add_local(display_name="MÜLLER BAU")  # the same vendor to the hub's matching (legal suffix, case)
    result = env.export()
    assert (result.linked, result.created, result.failed) == (1, 0, 0)
    assert count() == before
    row = env.local(id=local)
    assert row["integration_id"] == env.iid and row["remote_id"]
