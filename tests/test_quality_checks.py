"""Data-quality checks (hub/checks, pipelines/checks.py) on real PostgreSQL rows: each check
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
from hub.checks import BY_NAME, CHECKS, run_check
from hub.crypto import Keyring
from hub.errors import NotFoundError
from hub.schema import account_mapping, document, external_ref, gl_account, integration, invoice, invoice_line, project, sync_log, vendor
from pipelines.assets.sync import SYNC_ASSETS
from pipelines.checks import CHECK_KEYS, QUALITY_CHECKS
from resources import HubDatabase, SecretStore

SECRET = "quality-check-secret-5551"
RESOURCES = {"hub_db": HubDatabase(), "secrets": SecretStore()}


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
                                          config={"realm_id": "1"}, credentials=_oauth())
        ids["xero"] = store.add_integration(conn, ring, company_id=ids["acme"], provider="xero",
                                            config={"tenant_id": "t"}, credentials=_oauth())
        ids["qb_bella"] = store.add_integration(conn, ring, company_id=ids["bella"], provider="quickbooks",
                                                config={"realm_id": "2"}, credentials=_oauth())

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
    return ids


def add_vendor(conn, company_id, name, integration_id=None, remote_id=None, active=True) -> int:
    return conn.scalar(sa.insert(vendor).values(company_id=company_id, display_name=name, integration_id=integration_id,
                                                remote_id=remote_id, is_active=active).returning(vendor.c.id))


def add_invoice(conn, company_id, number, *, total, tax, lines, integration_id=None, status="draft") -> int:
    """`lines`: (category, amount) or (category, amount, gl_account_id)."""
    amounts = [Decimal(line[1]) for line in lines]
    invoice_id = conn.scalar(sa.insert(invoice).values(
        company_id=company_id, number=number, issue_date=date(2026, 11, 1), subtotal=sum(amounts, Decimal(0)),
        tax=Decimal(tax), total=Decimal(total), status=status, integration_id=integration_id,
        remote_id=None if integration_id is None else f"remote-{number}",
    ).returning(invoice.c.id))
    for n, line in enumerate(lines, 1):
        conn.execute(sa.insert(invoice_line).values(invoice_id=invoice_id, line_no=n, category=line[0], amount=Decimal(line[1]),
                                                    unit_amount=Decimal(line[1]), gl_account_id=line[2] if len(line) > 2 else None))
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
        linked_bad = add_invoice(conn, world["acme"], "QB-8", total="70.00", tax="0", lines=[(None, "7.00", world["supplies"])],
                                 integration_id=world["qb"])
        # not what a QuickBooks export of Acme sends: voided, Xero's, Bella's
        add_invoice(conn, world["acme"], "INV-4", total="1.00", tax="0", lines=[], status="voided")
        add_invoice(conn, world["acme"], "X-1", total="1.00", tax="0", lines=[], integration_id=world["xero"])
        add_invoice(conn, world["bella"], "B-1", total="1.00", tax="0", lines=[])
    outcome = run_check(clean_db, world["qb"], BY_NAME["invoice_totals_match_lines"])
    assert not outcome.passed
    assert (outcome.rows_checked, outcome.unexpected) == (5, 3)
    reasons = _reasons(outcome)
    assert set(reasons) == {str(off_by_a_cent), str(no_lines), str(linked_bad)}
    assert reasons[str(off_by_a_cent)] == (
        "total_mismatch: invoice INV-2: total 110.00 != lines 99.99 + tax 10.00 (off by +0.01, 1 lines)")
    assert outcome.failed_expectations == ["expect_column_values_to_be_between"]
    log = _log(clean_db, outcome.sync_log_id)
    assert (log["status"], log["records_processed"], log["records_failed"]) == ("failed", 5, 3)
    assert {e["record_id"] for e in log["errors"]} == set(reasons)
    assert all(e["code"] == "total_mismatch" for e in log["errors"])

    with clean_db.begin() as conn:  # fixed to the cent: passes again
        conn.execute(sa.update(invoice).where(invoice.c.id == off_by_a_cent).values(total=Decimal("109.99")))
        conn.execute(sa.delete(invoice).where(invoice.c.id.in_([no_lines, linked_bad])))
    assert run_check(clean_db, world["qb"], BY_NAME["invoice_totals_match_lines"]).passed


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
        # Xero's invoice with an unmapped category is none of QuickBooks' business
        add_invoice(conn, world["acme"], "X-2", total="5.00", tax="0", lines=[("marketing", "5.00")], integration_id=world["xero"])
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
    # the same lines are fine for Xero once mapped there, and the inactive account is another's chart
    assert run_check(clean_db, world["xero"], BY_NAME["invoice_lines_mapped"]).unexpected == 6


def test_vendor_names_must_be_non_empty_and_unique_per_company(world, clean_db):
    with clean_db.begin() as conn:
        empty = add_vendor(conn, world["acme"], " \t ")
        # already in QuickBooks, retired: its name stays reserved there
        # the export's own matching rule decides what a duplicate is (case, punctuation, legal suffixes)
        twin = add_vendor(conn, world["acme"], "  ACME   supply,\tCo. Inc", integration_id=world["qb"], remote_id="q9", active=False)
        # not sent to QuickBooks: another company's, Xero's, and a retired vendor never exported
        add_vendor(conn, world["bella"], "Acme Supply Co")
        add_vendor(conn, world["acme"], "Paper & Co", integration_id=world["xero"], remote_id="x1")
        add_vendor(conn, world["acme"], "paper & co", active=False)
    outcome = run_check(clean_db, world["qb"], BY_NAME["vendor_names_valid"])
    assert not outcome.passed and outcome.rows_checked == 4
    assert _reasons(outcome) == {
        str(empty): "empty_name: vendor {}: display name is empty".format(empty),
        str(world["vendor"]): f"duplicate_name: vendor {world['vendor']}: display name 'Acme Supply Co' is used by another "
                              "vendor of the company (compared as 'acme supply')",
        str(twin): f"duplicate_name: vendor {twin}: display name '  ACME   supply,\\tCo. Inc' is used by another vendor of the "
                   "company (compared as 'acme supply')",
    }
    log = _log(clean_db, outcome.sync_log_id)
    assert (log["status"], log["entity_type"], log["records_failed"]) == ("failed", "vendor", 3)
    assert run_check(clean_db, world["qb_bella"], BY_NAME["vendor_names_valid"]).passed


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
            {"integration_id": world["qb"], "entity_type": "customer", "local_id": 1, "remote_id": "c1"},
        ]).scalars().all()
        conn.execute(sa.delete(vendor).where(vendor.c.id == gone))
    outcome = run_check(clean_db, world["qb"], BY_NAME["no_orphan_external_refs"])
    assert not outcome.passed and (outcome.rows_checked, outcome.unexpected) == (5, 3)
    assert _reasons(outcome) == {
        str(refs[0]): f"orphan_ref: external ref {refs[0]}: vendor {gone} (remote id 57) does not exist in this integration's company",
        str(refs[1]): f"orphan_ref: external ref {refs[1]}: invoice {bella_invoice} (remote id 900) does not exist in this "
                      "integration's company",
        str(refs[3]): f"unknown_entity_type: external ref {refs[3]}: unknown entity type 'customer'",
    }
    assert _log(clean_db, outcome.sync_log_id)["entity_type"] == "external_ref"


def test_nothing_to_check_passes_without_importing_great_expectations(clean_db, secret_keys):
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Empty")
        integration_id = store.add_integration(conn, Keyring(secret_keys), company_id=company_id, provider="xero",
                                               config={"tenant_id": "t"}, credentials=_oauth())
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
    code = "import sys, pipelines.checks; print('great_expectations' in sys.modules, 'pandas' in sys.modules)"
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
    assert len(specs) == 8


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
    assert failed.metadata["unexpected"].value == 1 and failed.metadata["rows_checked"].value == 3
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
    assert set(evaluations) == {"vendor_names_valid", "no_orphan_external_refs"}
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
    result = _materialize(dagster_instance, "quickbooks", "vendors", f"xero-{world['xero']}")
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
                                       config={"realm_id": "3"}, credentials=_oauth())
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
