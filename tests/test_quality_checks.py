"""Data-quality checks (hub/checks, pipelines/quality_checks.py) on real PostgreSQL rows: each check
passes on clean data and fails on crafted bad data with the reason per record, every run
leaves one sync_log row, and in Dagster a failing blocking check keeps the downstream asset
of the same run from running while a passing one lets it run."""

import subprocess
import sys
from datetime import date
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from hub import integrations as store
from hub.quality import BY_NAME, CHECKS, run_check
from hub.crypto import Keyring
from hub.errors import NotFoundError
from hub.providers import registry
from hub.schema import account_mapping, customer, document, external_ref, gl_account, integration, invoice, invoice_line, project, sync_log, vendor
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import snapshots
from pipelines.assets.sync import SYNC_ASSETS
from pipelines.quality_checks import CHECK_KEYS, QUALITY_CHECKS
from pipelines.definitions import RESOURCES
from tests.test_vendor_two_way import qbo, xero  # noqa: F401  (fixtures: emulators over HTTP, connected integrations)

SECRET = "quality-check-secret-5551"


def _oauth(secret: str = SECRET) -> dict:
    return {"client_id": "c", "client_secret": secret, "refresh_token": "r" * 20}


@pytest.fixture
def world(clean_db, secret_keys):
    """Acme on QuickBooks and Xero, Bella on QuickBooks; charts, mappings, clean data only."""
    ring = Keyring(secret_keys)
    ids = {}
    with clean_db.begin() as conn:
        ids["acme"] = store.create_company(conn, "Acme")
        ids["bella"] = store.create_company(conn, "Bella")
        ids["qb"] = store.add_integration(conn, ring, company_id=ids["acme"], provider="quickbooks",
                                          config={"realm_id": "1"}, credentials=_oauth(), active=True)
        ids["xero"] = store.add_integration(conn, ring, company_id=ids["acme"], provider="xero",
                                            config={"tenant_id": "t"}, credentials=_oauth(), active=True)
        ids["qb_bella"] = store.add_integration(conn, ring, company_id=ids["bella"], provider="quickbooks",
                                                config={"realm_id": "2"}, credentials=_oauth(), active=True)

        def account(integration_id, company_id, code, name, active=True):
            return conn.scalar(sa.insert(gl_account).values(
                company_id=company_id, integration_id=integration_id, remote_id=f"r{code}", code=code, name=name,
                account_type="Expense", is_active=active).returning(gl_account.c.id))

        ids["supplies"] = account(ids["qb"], ids["acme"], "5000", "Supplies")
        ids["old"] = account(ids["qb"], ids["acme"], "6000", "Old rent", active=False)
        ids["xero_supplies"] = account(ids["xero"], ids["acme"], "400", "Supplies")
        conn.execute(sa.insert(account_mapping), [
            {"company_id": ids["acme"], "integration_id": ids["qb"], "local_category": "supplies", "gl_account_id": ids["supplies"]},
            {"company_id": ids["acme"], "integration_id": ids["xero"], "local_category": "supplies",
             "gl_account_id": ids["xero_supplies"]},
        ])
        ids["vendor"] = add_vendor(conn, ids["acme"], "Acme Supply Co")
        add_vendor(conn, ids["acme"], "Paper & Co")
        ids["good_invoice"] = add_invoice(conn, ids["acme"], "INV-1", total="109.99", tax="9.99",
                                          lines=[("supplies", "60.00"), ("supplies", "40.00")])
        # imported from QuickBooks: no category, the provider's own account (hub/sync/invoices.py)
        add_invoice(conn, ids["acme"], "QB-7", total="50.00", tax="0", lines=[(None, "50.00", ids["supplies"])],
                    integration_id=ids["qb"])
        conn.execute(sa.insert(external_ref).values(integration_id=ids["qb"], entity_type="vendor",
                                                    local_id=ids["vendor"], remote_id="56"))
        # receivables: a customer to create and its sales invoice (the sales checks)
        ids["customer"] = add_customer(conn, ids["acme"], "Harbor Cafe")
        ids["good_sale"] = add_invoice(conn, ids["acme"], "S-1", total="100.00", tax="0", lines=[("supplies", "100.00")],
                                       kind="receivable")
    return ids


def add_customer(conn, company_id, name) -> int:
    return conn.scalar(sa.insert(customer).values(company_id=company_id, display_name=name).returning(customer.c.id))


def add_vendor(conn, company_id, name, integration_id=None, remote_id=None, active=True) -> int:
    return conn.scalar(sa.insert(vendor).values(company_id=company_id, display_name=name, integration_id=integration_id,
                                                remote_id=remote_id, is_active=active).returning(vendor.c.id))


def add_invoice(conn, company_id, number, *, total, tax, lines, integration_id=None, status="draft", synced=False,
                kind="payable") -> int:
    """`lines`: (category, amount) or (category, amount, gl_account_id). `synced`: linked with
    the merge base an import writes (`synced_values` = the invoice as it is now), i.e. the
    ledger's data as imported, which the export sends again only once changed locally."""
    amounts = [Decimal(line[1]) for line in lines]
    invoice_id = conn.scalar(sa.insert(invoice).values(
        company_id=company_id, number=number, issue_date=date(2026, 11, 1), subtotal=sum(amounts, Decimal(0)),
        tax=Decimal(tax), total=Decimal(total), status=status, integration_id=integration_id, kind=kind,
        remote_id=None if integration_id is None else f"remote-{number}",
    ).returning(invoice.c.id))
    for n, line in enumerate(lines, 1):
        conn.execute(sa.insert(invoice_line).values(invoice_id=invoice_id, line_no=n, category=line[0], amount=Decimal(line[1]),
                                                    unit_amount=Decimal(line[1]), gl_account_id=line[2] if len(line) > 2 else None))
    if synced:
        conn.execute(sa.update(invoice).where(invoice.c.id == invoice_id)
                     .values(synced_values=snapshots(conn, [invoice_id])[invoice_id]))
    return invoice_id


def _log(engine, log_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(sync_log).where(sync_log.c.id == log_id)).mappings().one()


def _reasons(outcome) -> dict[str, str]:
    return {item["record_id"]: f"{item['code']}: {item['message']}" for item in outcome.sample}


# ---- each check, straight through the runner --------------------------------------------
def test_clean_data_passes_every_check_and_logs_it(world, clean_db):
    for check in CHECKS:
        outcome = run_check(clean_db, world["qb"], check, run_id="run-1")
        assert outcome.passed, (check.name, outcome.sample)
        assert outcome.rows_checked > 0 and outcome.unexpected == 0 and outcome.sample == []
        log = _log(clean_db, outcome.sync_log_id)
        assert (log["sync_type"], log["action"], log["direction"], log["entity_type"], log["status"]) == (
            "check", f"check_{check.name}", "outbound", check.entity_type, "completed")
        assert (log["records_processed"], log["records_failed"], log["errors"], log["dagster_run_id"]) == (
            outcome.rows_checked, 0, [], "run-1")
        assert log["completed_at"] is not None
    # a check is not a sync: the integration's status and last sync are left alone
    with clean_db.connect() as conn:
        row = conn.execute(sa.select(integration.c.status, integration.c.last_sync_at).where(integration.c.id == world["qb"])).one()
    assert tuple(row) == ("pending", None)


def test_invoice_total_must_equal_lines_plus_tax_to_the_cent(world, clean_db):
    with clean_db.begin() as conn:
        off_by_a_cent = add_invoice(conn, world["acme"], "INV-2", total="110.00", tax="10.00", lines=[("supplies", "99.99")])
        no_lines = add_invoice(conn, world["acme"], "INV-3", total="25.00", tax="0", lines=[])
        # imported, then changed here: the export sends it again, so it is checked
        edited = add_invoice(conn, world["acme"], "QB-8", total="70.00", tax="0", lines=[(None, "7.00", world["supplies"])],
                             integration_id=world["qb"], synced=True)
        conn.execute(sa.update(invoice).where(invoice.c.id == edited).values(due_date=date(2026, 12, 31)))
        # imported fine, then only a line changed here (the lines' digest tells): sent, checked
        line_edited = add_invoice(conn, world["acme"], "QB-9", total="20.00", tax="0", lines=[(None, "20.00", world["supplies"])],
                                  integration_id=world["qb"], synced=True)
        conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == line_edited).values(amount=Decimal("21.00")))
        # not what a QuickBooks export of Acme sends: voided, Xero's, Bella's, a sales invoice, and
        # the ledger's own data as imported and unchanged (e.g. a bill whose lines include the tax)
        add_invoice(conn, world["acme"], "INV-4", total="1.00", tax="0", lines=[], status="voided")
        add_invoice(conn, world["acme"], "X-1", total="1.00", tax="0", lines=[], integration_id=world["xero"], synced=True)
        add_invoice(conn, world["bella"], "B-1", total="1.00", tax="0", lines=[])
        add_invoice(conn, world["acme"], "AR-1", total="1.00", tax="0", lines=[], kind="receivable")
        add_invoice(conn, world["acme"], "QB-10", total="115.00", tax="15.00", lines=[(None, "115.00", world["supplies"])],
                    integration_id=world["qb"], synced=True)
    outcome = run_check(clean_db, world["qb"], BY_NAME["invoice_totals_match_lines"])
    assert not outcome.passed
    assert (outcome.rows_checked, outcome.unexpected) == (5, 4)  # with INV-1; QB-7 has no merge base: never sent
    reasons = _reasons(outcome)
    assert set(reasons) == {str(off_by_a_cent), str(no_lines), str(edited), str(line_edited)}
    assert reasons[str(off_by_a_cent)] == (
        "total_mismatch: invoice INV-2: total 110.00 != lines 99.99 + tax 10.00 (off by +0.01, 1 lines)")
    assert reasons[str(line_edited)].startswith("total_mismatch: invoice QB-9: total 20.00 != lines 21.00")
    assert outcome.failed_expectations == ["expect_column_values_to_be_between"]
    log = _log(clean_db, outcome.sync_log_id)
    assert (log["status"], log["records_processed"], log["records_failed"]) == ("failed", 5, 4)
    assert {e["record_id"] for e in log["errors"]} == set(reasons)
    assert all(e["code"] == "total_mismatch" for e in log["errors"])

    with clean_db.begin() as conn:  # fixed to the cent, or back as imported: passes again
        conn.execute(sa.update(invoice).where(invoice.c.id == off_by_a_cent).values(total=Decimal("109.99")))
        conn.execute(sa.update(invoice).where(invoice.c.id == edited).values(due_date=None))
        conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == line_edited).values(amount=Decimal("20.00")))
        conn.execute(sa.delete(invoice).where(invoice.c.id == no_lines))
    outcome = run_check(clean_db, world["qb"], BY_NAME["invoice_totals_match_lines"])
    assert outcome.passed and outcome.rows_checked == 2


def test_every_line_must_book_to_an_active_account_of_this_integrations_chart(world, clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.insert(account_mapping), [
            {"company_id": world["acme"], "integration_id": world["qb"], "local_category": "rent", "gl_account_id": world["old"]},
            # a mapping row pointing into another integration's chart
            {"company_id": world["acme"], "integration_id": world["qb"], "local_category": "travel",
             "gl_account_id": world["xero_supplies"]},
        ])
        unmapped = add_invoice(conn, world["acme"], "INV-5", total="30.00", tax="0",
                               lines=[("supplies", "10.00"), ("marketing", "20.00")])
        inactive = add_invoice(conn, world["acme"], "INV-6", total="10.00", tax="0", lines=[("rent", "10.00")])
        foreign = add_invoice(conn, world["acme"], "INV-7", total="10.00", tax="0", lines=[("travel", "10.00")])
        bare = add_invoice(conn, world["acme"], "INV-8", total="10.00", tax="0", lines=[("  ", "10.00")])
        # a category wins over the line's own account: unmapped here even with an account set
        mapped_wins = add_invoice(conn, world["acme"], "INV-9", total="10.00", tax="0",
                                  lines=[("marketing", "10.00", world["supplies"])])
        # Xero's invoice with an unmapped category is none of QuickBooks' business (nor, imported and
        # unchanged, of Xero's: the export does not send it)
        add_invoice(conn, world["acme"], "X-2", total="5.00", tax="0", lines=[("marketing", "5.00")], integration_id=world["xero"],
                    synced=True)
    outcome = run_check(clean_db, world["qb"], BY_NAME["invoice_lines_mapped"])
    assert not outcome.passed
    assert outcome.unexpected == 5  # failing lines; INV-5 line 1 is fine
    messages = sorted(item["message"] for item in outcome.sample)
    assert messages == [
        "invoice INV-5 line 2 (category 'marketing'): no account mapping for this integration (hub mapping set)",
        "invoice INV-6 line 1 (category 'rent'): account 6000 Old rent is inactive",
        f"invoice INV-7 line 1 (category 'travel'): account {world['xero_supplies']} is not in the chart imported "
        "from this integration",
        "invoice INV-8 line 1 (no category): no account mapping for this integration (hub mapping set)",
        "invoice INV-9 line 1 (category 'marketing'): no account mapping for this integration (hub mapping set)",
    ]
    codes = {item["record_id"]: item["code"] for item in outcome.sample}
    assert codes == {str(unmapped): "unmapped_category", str(inactive): "account_inactive", str(foreign): "account_not_in_chart",
                     str(bare): "unmapped_category", str(mapped_wins): "unmapped_category"}
    log = _log(clean_db, outcome.sync_log_id)
    assert (log["status"], log["records_failed"], len(log["errors"])) == ("failed", 5, 5)
    # for Xero: INV-5 line 1 is mapped there, the other lines of the new invoices are not; X-2 is not sent
    assert run_check(clean_db, world["xero"], BY_NAME["invoice_lines_mapped"]).unexpected == 5


def test_vendor_names_to_create_must_be_non_empty_and_new_to_the_ledger(world, clean_db):
    """Only the vendors the export would create are judged, by the ledger's own rule (case and
    surrounding spaces ignored), against each other and the names already in the ledger."""
    with clean_db.begin() as conn:
        empty = add_vendor(conn, world["acme"], " \t ")
        case_twin = add_vendor(conn, world["acme"], "  ACME supply co ")  # the same as world's "Acme Supply Co" to QuickBooks
        # already in QuickBooks, retired: its name stays reserved there
        add_vendor(conn, world["acme"], "Blue Lumber", integration_id=world["qb"], remote_id="q9", active=False)
        taken = add_vendor(conn, world["acme"], "blue lumber")
        # the ledger's own valid data: distinct names in QuickBooks, alike only to the hub's matching
        add_vendor(conn, world["acme"], "Paper Supply Inc", integration_id=world["qb"], remote_id="q10")
        add_vendor(conn, world["acme"], "Paper Supply LLC", integration_id=world["qb"], remote_id="q11")
        add_vendor(conn, world["acme"], "Cedar Supply LLC", integration_id=world["qb"], remote_id="q12")
        similar = add_vendor(conn, world["acme"], "Cedar Supply, Inc.")  # legitimately new: warned, not blocked
        # not sent to QuickBooks: another company's, Xero's, and a retired vendor never exported
        add_vendor(conn, world["bella"], "Acme Supply Co")
        add_vendor(conn, world["acme"], "Paper & Co", integration_id=world["xero"], remote_id="x1")
        add_vendor(conn, world["acme"], "paper & co", active=False)
    outcome = run_check(clean_db, world["qb"], BY_NAME["vendor_names_valid"])
    assert not outcome.passed and outcome.rows_checked == 6  # world's two, empty, case_twin, taken, similar
    rule = "(the ledger ignores case and surrounding spaces); rename one, or merge them"
    assert _reasons(outcome) == {
        str(empty): f"empty_name: vendor {empty}: display name is empty",
        str(world["vendor"]): f"duplicate_name: vendor {world['vendor']}: display name 'Acme Supply Co' is the same name as "
                              f"vendor {case_twin} '  ACME supply co ' (also to be created) {rule}",
        str(case_twin): f"duplicate_name: vendor {case_twin}: display name '  ACME supply co ' is the same name as "
                        f"vendor {world['vendor']} 'Acme Supply Co' (also to be created) {rule}",
        str(taken): f"duplicate_name: vendor {taken}: display name 'blue lumber' is the same name as vendor {taken - 1} "
                    f"'Blue Lumber' (already in the ledger) {rule}",
    }
    log = _log(clean_db, outcome.sync_log_id)
    assert (log["status"], log["entity_type"], log["records_failed"]) == ("failed", "vendor", 4)
    assert run_check(clean_db, world["qb_bella"], BY_NAME["vendor_names_valid"]).passed

    distinct = run_check(clean_db, world["qb"], BY_NAME["vendor_names_distinct"])
    assert not distinct.passed and BY_NAME["vendor_names_distinct"].blocking is False
    assert _reasons(distinct) == {
        str(similar): f"similar_name: vendor {similar}: display name 'Cedar Supply, Inc.' matches vendor {similar - 1} "
                      "'Cedar Supply LLC' (already in the ledger) once case, accents, punctuation and legal suffixes are "
                      "ignored (as 'cedar supply'); the export may link it to that vendor instead of creating it",
    }

    with clean_db.begin() as conn:  # fixed: only the ledger's own alike names remain, which are valid
        conn.execute(sa.delete(vendor).where(vendor.c.id.in_([empty, case_twin, taken, similar])))
    assert run_check(clean_db, world["qb"], BY_NAME["vendor_names_valid"]).passed
    assert run_check(clean_db, world["qb"], BY_NAME["vendor_names_distinct"]).passed


def test_sales_invoices_and_customers_are_checked_as_bills_and_vendors_are(world, clean_db):
    with clean_db.begin() as conn:
        off = add_invoice(conn, world["acme"], "S-2", total="120.00", tax="0", lines=[("supplies", "100.00")], kind="receivable")
        add_invoice(conn, world["acme"], "B-9", total="120.00", tax="0", lines=[("supplies", "100.00")])  # a bill: not this check's
        twin = add_customer(conn, world["acme"], " harbor cafe ")
    totals = run_check(clean_db, world["qb"], BY_NAME["sales_invoice_totals_match_lines"])
    assert not totals.passed and (totals.rows_checked, totals.unexpected) == (2, 1)
    assert _reasons(totals) == {str(off): "total_mismatch: invoice S-2: total 120.00 != lines 100.00 + tax 0.00 (off by +20.00, 1 lines)"}
    assert _log(clean_db, totals.sync_log_id)["entity_type"] == "sales_invoice"
    names = run_check(clean_db, world["qb"], BY_NAME["customer_names_valid"])
    assert not names.passed and names.unexpected == 2
    assert _reasons(names)[str(twin)].startswith(f"duplicate_name: customer {twin}: display name ' harbor cafe ' is the same name as "
                                                 f"customer {world['customer']} 'Harbor Cafe'")
    assert run_check(clean_db, world["qb"], BY_NAME["vendor_names_valid"]).passed  # vendors are apart


def test_external_refs_must_point_to_a_local_row_of_the_company(world, clean_db):
    with clean_db.begin() as conn:
        gone = add_vendor(conn, world["acme"], "Gone Ltd")
        bella_invoice = add_invoice(conn, world["bella"], "B-2", total="1.00", tax="0", lines=[("x", "1.00")])
        site = conn.scalar(sa.insert(project).values(company_id=world["acme"], name="Site").returning(project.c.id))
        conn.execute(sa.insert(document).values(company_id=world["acme"], project_id=site, filename="a.pdf"))
        refs = conn.execute(sa.insert(external_ref).returning(external_ref.c.id), [
            {"integration_id": world["qb"], "entity_type": "vendor", "local_id": gone, "remote_id": "57"},
            {"integration_id": world["qb"], "entity_type": "invoice", "local_id": bella_invoice, "remote_id": "900"},
            {"integration_id": world["qb"], "entity_type": "project", "local_id": site, "remote_id": "p1"},
            {"integration_id": world["qb"], "entity_type": "employee", "local_id": 1, "remote_id": "e1"},
            {"integration_id": world["qb"], "entity_type": "customer", "local_id": world["customer"], "remote_id": "c1"},
            {"integration_id": world["qb"], "entity_type": "sales_invoice", "local_id": world["good_sale"], "remote_id": "s1"},
            {"integration_id": world["qb"], "entity_type": "sales_invoice", "local_id": world["good_invoice"], "remote_id": "s2"},
        ]).scalars().all()
        conn.execute(sa.delete(vendor).where(vendor.c.id == gone))
    outcome = run_check(clean_db, world["qb"], BY_NAME["no_orphan_external_refs"])
    assert not outcome.passed and (outcome.rows_checked, outcome.unexpected) == (8, 4)
    assert _reasons(outcome) == {
        str(refs[0]): f"orphan_ref: external ref {refs[0]}: vendor {gone} (remote id 57) does not exist in this integration's company",
        str(refs[1]): f"orphan_ref: external ref {refs[1]}: invoice {bella_invoice} (remote id 900) does not exist in this "
                      "integration's company",
        str(refs[3]): f"unknown_entity_type: external ref {refs[3]}: unknown entity type 'employee'",
        # a bill is no sales invoice: the ref names the wrong kind (customers and sales invoices are known)
        str(refs[6]): f"orphan_ref: external ref {refs[6]}: sales_invoice {world['good_invoice']} (remote id s2) does not exist "
                      "in this integration's company",
    }
    assert _log(clean_db, outcome.sync_log_id)["entity_type"] == "external_ref"


def test_nothing_to_check_passes_without_importing_great_expectations(clean_db, secret_keys):
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Empty")
        integration_id = store.add_integration(conn, Keyring(secret_keys), company_id=company_id, provider="xero",
                                               config={"tenant_id": "t"}, credentials=_oauth(), active=True)
    for check in CHECKS:
        outcome = run_check(clean_db, integration_id, check)
        assert (outcome.passed, outcome.rows_checked, outcome.ge_seconds) == (True, 0, 0.0)
        assert _log(clean_db, outcome.sync_log_id)["status"] == "completed"
    with pytest.raises(NotFoundError):
        run_check(clean_db, 10**9, CHECKS[0])


def test_a_check_that_cannot_run_is_logged_failed_and_raises(world, clean_db):
    broken = BY_NAME["vendor_names_valid"].__class__(**{**BY_NAME["vendor_names_valid"].__dict__,
                                                        "sql": "SELECT id AS record_id, no_such_column FROM vendor"})
    with pytest.raises(sa.exc.ProgrammingError):
        run_check(clean_db, world["qb"], broken)
    with clean_db.connect() as conn:
        log = conn.execute(sa.select(sync_log).order_by(sync_log.c.id.desc()).limit(1)).mappings().one()
    assert log["status"] == "failed" and log["errors"][0]["code"] == "check_error"
    assert "no_such_column" in log["errors"][0]["message"] and "SELECT" not in log["errors"][0]["message"]


def test_loading_the_checks_does_not_import_great_expectations():
    code = "import sys, pipelines.quality_checks; print('great_expectations' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


# ---- Dagster --------------------------------------------------------------------------
def test_checks_attach_to_the_sync_assets_and_join_the_provider_sync_job():
    from pipelines.definitions import defs

    merged = dg.Definitions.merge(defs, dg.Definitions(asset_checks=QUALITY_CHECKS))
    asset_keys = {a.key for a in SYNC_ASSETS}
    for provider, keys in CHECK_KEYS.items():
        assert {k.asset_key for k in keys} <= asset_keys
        job = merged.resolve_job_def(f"{provider}_sync_job")
        assert set(keys) <= set(job.asset_layer.asset_graph.asset_check_keys)
    specs = {(s.asset_key.to_user_string(), s.name): s.blocking for c in QUALITY_CHECKS for s in c.check_specs}
    assert specs[("quickbooks/invoices", "invoice_totals_match_lines")] is True
    assert specs[("xero/vendors", "vendor_names_valid")] is True
    assert specs[("xero/vendors", "no_orphan_external_refs")] is False
    assert specs[("quickbooks/invoices", "invoice_lines_mapped")] is False  # the export holds back each such invoice itself
    assert specs[("xero/vendors", "vendor_names_distinct")] is False  # alike names may be distinct vendors
    assert specs[("quickbooks/sales_invoices", "sales_invoice_totals_match_lines")] is True
    assert specs[("xero/customers", "customer_names_valid")] is True
    assert len(specs) == 14


def _stand_ins(provider: str, stream: str):
    """The checked asset under its real key and partitions (without a provider to pull from),
    and an export-like asset downstream of it."""
    real = next(a for a in SYNC_ASSETS if a.key == dg.AssetKey([provider, stream]))
    partitions = real.partitions_def

    @dg.asset(key=[provider, stream], partitions_def=partitions)
    def upstream() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"stand_in": True})

    @dg.asset(key=[provider, f"{stream}_export"], deps=[upstream], partitions_def=partitions)
    def downstream() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"exported": True})

    checks = [c for c in QUALITY_CHECKS if next(iter(c.check_specs)).asset_key == real.key]
    return partitions, upstream, downstream, checks


def _materialize(instance, provider, stream, key):
    partitions, upstream, downstream, checks = _stand_ins(provider, stream)
    instance.add_dynamic_partitions(partitions.name, [key])
    return dg.materialize([upstream, downstream, *checks], partition_key=key, instance=instance, resources=RESOURCES,
                          raise_on_error=False)


def _evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_failing_blocking_check_stops_the_downstream_asset(world, clean_db, dagster_instance):
    with clean_db.begin() as conn:
        bad = add_invoice(conn, world["acme"], "INV-10", total="100.00", tax="0", lines=[("supplies", "90.00")])
    key = f"quickbooks-{world['qb']}"
    result = _materialize(dagster_instance, "quickbooks", "invoices", key)
    assert not result.success
    evaluations = _evaluations(result)
    failed = evaluations["invoice_totals_match_lines"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["unexpected"].value == 1 and failed.metadata["rows_checked"].value == 2  # INV-1 and INV-10
    assert f"| {world['qb']} | {bad} | total_mismatch | invoice INV-10: total 100.00" in failed.metadata["sample"].value
    assert failed.metadata["partition"].value == key
    assert evaluations["invoice_lines_mapped"].passed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["quickbooks", "invoices"]) in materialized
    assert dg.AssetKey(["quickbooks", "invoices_export"]) not in materialized
    log = _log(clean_db, failed.metadata["sync_log_id"].value)
    assert (log["status"], log["dagster_run_id"]) == ("failed", result.run_id)
    stored = "\n".join(repr(entry) for entry in dagster_instance.all_logs(result.run_id))
    assert SECRET not in stored


def test_passing_checks_let_the_downstream_asset_run(world, clean_db, dagster_instance):
    key = f"quickbooks-{world['qb']}"
    result = _materialize(dagster_instance, "quickbooks", "vendors", key)
    assert result.success
    evaluations = _evaluations(result)
    assert set(evaluations) == {"vendor_names_valid", "vendor_names_distinct", "no_orphan_external_refs"}
    assert all(e.passed for e in evaluations.values())
    assert evaluations["vendor_names_valid"].metadata["rows_checked"].value == 2
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["quickbooks", "vendors_export"]) in materialized
    assert _log(clean_db, evaluations["vendor_names_valid"].metadata["sync_log_id"].value)["dagster_run_id"] == result.run_id


def test_non_blocking_failure_warns_and_the_downstream_asset_still_runs(world, clean_db, dagster_instance):
    with clean_db.begin() as conn:
        conn.execute(sa.insert(external_ref).values(integration_id=world["qb"], entity_type="vendor", local_id=10**9, remote_id="x"))
    result = _materialize(dagster_instance, "quickbooks", "vendors", f"quickbooks-{world['qb']}")
    assert result.success
    orphan = _evaluations(result)["no_orphan_external_refs"]
    assert not orphan.passed and orphan.severity == dg.AssetCheckSeverity.WARN
    assert dg.AssetKey(["quickbooks", "vendors_export"]) in {e.asset_key for e in result.get_asset_materialization_events()}


def test_a_partition_of_another_provider_is_skipped(world, clean_db, dagster_instance):
    with clean_db.begin() as conn:
        add_vendor(conn, world["acme"], "")  # would fail, were it checked
    key = f"xero-{world['xero']}"
    try:
        result = _materialize(dagster_instance, "quickbooks", "vendors", key)
    finally:  # the instance is the session's: a Xero key left among QuickBooks partitions misleads later tests
        dagster_instance.delete_dynamic_partition("quickbooks_integrations", key)
    assert result.success
    evaluation = _evaluations(result)["vendor_names_valid"]
    assert evaluation.passed and "is not a quickbooks integration" in evaluation.metadata["skipped"].value
    with clean_db.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(sync_log)) == 0


def test_a_check_run_without_a_partition_checks_every_active_integration_of_its_provider(world, clean_db, dagster_instance):
    """The "Execute" button on a check in the UI: no partition, so every active QuickBooks account."""
    with clean_db.begin() as conn:
        store.set_active(conn, world["qb_bella"], False)
        second = store.add_integration(conn, Keyring.from_env(), company_id=world["bella"], provider="quickbooks", name="QB 2",
                                       config={"realm_id": "3"}, credentials=_oauth(), active=True)
        bella_dup = [add_vendor(conn, world["bella"], name) for name in ("Dup", "dup")]
    _, upstream, downstream, checks = _stand_ins("quickbooks", "vendors")
    result = dg.materialize([upstream, downstream, *checks], instance=dagster_instance, resources=RESOURCES,
                            selection=dg.AssetSelection.checks(*checks), raise_on_error=False)
    assert not result.success  # the blocking vendor check failed for Bella's second account
    evaluation = _evaluations(result)["vendor_names_valid"]
    assert not evaluation.passed and evaluation.metadata["integrations"].value == f"{world['qb']}, {second}"
    assert evaluation.metadata["unexpected"].value == 2 and len(evaluation.metadata["sync_log_ids"].value) == 2
    assert all(f"| {second} | {v} | duplicate_name |" in evaluation.metadata["sample"].value for v in bella_dup)
    assert "partition" not in evaluation.metadata


# ---- against the ledgers' own data, imported over HTTP from the emulators ---------------
def test_alike_vendor_names_in_quickbooks_are_valid_data(qbo):
    """QuickBooks takes "Acme Supply Inc" and "Acme Supply LLC" as two vendors: imported as they
    are, nothing about them is for the hub to block. A vendor the export would create with one
    of their names (by QuickBooks' rule) is blocked; one alike only to the hub's matching is
    a warning."""
    qbo.emulator.state.mutate("create", "Vendor", fields={"DisplayName": "Acme Supply Inc"})
    qbo.emulator.state.mutate("create", "Vendor", fields={"DisplayName": "Acme Supply LLC"})
    qbo.pull()
    assert run_check(qbo.engine, qbo.iid, BY_NAME["vendor_names_valid"]).passed
    assert run_check(qbo.engine, qbo.iid, BY_NAME["vendor_names_distinct"]).passed
    new = qbo.add_local(display_name="ACME SUPPLY LLC ")
    blocked = run_check(qbo.engine, qbo.iid, BY_NAME["vendor_names_valid"])
    assert not blocked.passed and [(s["record_id"], s["code"]) for s in blocked.sample] == [(str(new), "duplicate_name")]
    qbo.edit(new, display_name="Acme Supply Corp")
    assert run_check(qbo.engine, qbo.iid, BY_NAME["vendor_names_valid"]).passed
    warned = run_check(qbo.engine, qbo.iid, BY_NAME["vendor_names_distinct"])
    assert not warned.passed and [(s["record_id"], s["code"]) for s in warned.sample] == [(str(new), "similar_name")]


def test_imported_xero_bills_are_checked_only_once_edited_here(xero):
    """What the import wrote is Xero's own data, and the export sends it back only once edited
    here (hub/sync/export_invoices.py): until then the blocking total check has nothing to
    judge, whatever the bill's arithmetic (e.g. tax-inclusive lines, however imported)."""
    for stream in ("accounts", "vendors"):
        sync_stream(xero.engine, xero.keyring, xero.iid, registry.stream(f"xero/{stream}"))
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    code = next(a["Code"] for a in xero.emulator.state.accounts.values() if a["Class"] == "EXPENSE")
    xero.emulator.state.mutate("create", "Invoice", fields={
        "Type": "ACCPAY", "Contact": {"ContactID": supplier["ContactID"]}, "InvoiceNumber": "INC-1", "Date": "2026-03-01",
        "LineAmountTypes": "Inclusive", "Status": "AUTHORISED",
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 115, "AccountCode": code}]})
    sync_stream(xero.engine, xero.keyring, xero.iid, registry.stream("xero/invoices"))
    [bill] = xero.rows(invoice, invoice.c.number == "INC-1")
    assert bill["synced_values"] is not None
    imported = run_check(xero.engine, xero.iid, BY_NAME["invoice_totals_match_lines"])
    assert imported.passed and imported.rows_checked == 0  # the emulator's bills and INC-1, all as imported
    with xero.engine.begin() as conn:  # edited here, it would go back to Xero: now it is checked
        conn.execute(sa.update(invoice).where(invoice.c.id == bill["id"]).values(total=bill["total"] + 1))
    edited = run_check(xero.engine, xero.iid, BY_NAME["invoice_totals_match_lines"])
    assert not edited.passed and edited.rows_checked == 1
    assert [s["record_id"] for s in edited.sample] == [str(bill["id"])]
