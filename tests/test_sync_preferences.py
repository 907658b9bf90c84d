"""Sync preferences and account mapping, through their functions and the `hub` CLI, on real
PostgreSQL."""

from datetime import date

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub import integrations as store
from hub.cli import app
from hub.crypto import Keyring
from hub.sync import preferences
from hub.schema import account_mapping, gl_account, invoice, invoice_line

runner = CliRunner()
OAUTH = {"client_id": "c", "client_secret": "s", "refresh_token": "r"}


def hub(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.output.startswith("Error: ") and message in result.output, result.output


@pytest.fixture
def accounting(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        qb = store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks", config={"realm_id": "1"}, credentials=OAUTH, active=True)
        slack = store.add_integration(conn, keyring, company_id=company_id, provider="slack", config={"default_channel": "#x"},
                                      credentials={"bot_token": "b", "signing_secret": "s"}, active=True)
        conn.execute(sa.insert(gl_account), [
            {"company_id": company_id, "integration_id": qb, "remote_id": "7", "code": "5100", "name": "Food Cost", "account_type": "Cost of Goods Sold",
             "is_active": True},
            {"company_id": company_id, "integration_id": qb, "remote_id": "8", "code": "6100", "name": "Repairs", "account_type": "Expense", "is_active": True},
            {"company_id": company_id, "integration_id": qb, "remote_id": "9", "code": "6200", "name": "Old Rent", "account_type": "Expense",
             "is_active": False},
            {"company_id": company_id, "integration_id": qb, "remote_id": "10", "code": None, "name": "repairs", "account_type": "Expense", "is_active": True},
        ])
        invoice_id = conn.execute(sa.insert(invoice).values(company_id=company_id, number="H-1", issue_date=date(2026, 11, 1))
                                  .returning(invoice.c.id)).scalar_one()
        conn.execute(sa.insert(invoice_line), [
            {"invoice_id": invoice_id, "line_no": 1, "category": "Produce", "amount": 10},
            {"invoice_id": invoice_id, "line_no": 2, "category": "Produce", "amount": 5},
            {"invoice_id": invoice_id, "line_no": 3, "category": "Plumbing", "amount": 80},
        ])
    return clean_db, keyring, {"qb": qb, "slack": slack, "company": company_id}


def test_defaults_come_from_the_streams_and_what_each_allows():
    prefs = preferences.from_config("quickbooks", {"realm_id": "1"})
    assert (prefs.hour, prefs.conflict_policy) == (2, "field_ownership")
    assert prefs.streams["vendors"].direction == "both" and prefs.streams["accounts"].direction == "import"
    assert prefs.runs("vendors", "export") and not prefs.runs("accounts", "export") and not prefs.runs("nope", "import")


def test_preferences_are_stored_encrypted_and_validated(accounting):
    engine, keyring, ids = accounting
    with engine.begin() as conn:
        preferences.update(conn, keyring, ids["qb"], hour=4, conflict_policy="manual")
        preferences.update(conn, keyring, ids["qb"], stream="invoices", direction="import")
        preferences.update(conn, keyring, ids["qb"], stream="accounts", enabled=False)
    with engine.connect() as conn:
        prefs = preferences.read(conn, keyring, ids["qb"])
        stored = conn.execute(sa.text("select config::text from integration where id = :id"), {"id": ids["qb"]}).scalar_one()
    assert (prefs.hour, prefs.conflict_policy) == (4, "manual")
    assert not prefs.runs("invoices", "export") and prefs.runs("invoices", "import")
    assert not prefs.runs("accounts", "import") and prefs.runs("vendors", "export")
    assert "manual" not in stored and "invoices" not in stored  # inside the encrypted envelope
    with engine.begin() as conn:
        for kwargs, message in (
            ({"hour": 24}, "hour must be 0-23"),
            ({"conflict_policy": "yolo"}, "unknown conflict policy 'yolo'"),
            ({"stream": "payroll", "enabled": True}, "quickbooks has no stream 'payroll'"),
            ({"stream": "accounts", "direction": "export"}, "quickbooks accounts can only run import"),
            ({"enabled": False}, "need --stream"),
            ({}, "nothing to change"),
        ):
            with pytest.raises(Exception, match=message):
                preferences.update(conn, keyring, ids["qb"], **kwargs)


def test_sync_cli_shows_and_sets(accounting):
    engine, keyring, ids = accounting
    shown = hub("sync", "show", ids["qb"])
    assert shown.exit_code == 0 and "02:00" in shown.output and "vendors" in shown.output and "both" in shown.output
    changed = hub("sync", "set", ids["qb"], "--stream", "vendors", "--direction", "import", "--hour", "5")
    assert changed.exit_code == 0, changed.output
    assert "05:00" in changed.output
    with engine.connect() as conn:
        assert preferences.read(conn, keyring, ids["qb"]).streams["vendors"].direction == "import"
    assert_clean_error(hub("sync", "set", ids["qb"], "--stream", "vendors", "--direction", "sideways"), "direction must be one of")
    assert_clean_error(hub("sync", "show", 999), "no integration 999")


def test_mapping_by_code_name_or_remote_id_with_clear_refusals(accounting):
    engine, _, ids = accounting
    assert hub("mapping", "set", ids["qb"], "Produce", "5100").exit_code == 0
    assert hub("mapping", "set", ids["qb"], "Meat", "food cost").exit_code == 0  # exact name, any case
    assert hub("mapping", "set", ids["qb"], "Bar", "7").exit_code == 0  # remote id
    assert_clean_error(hub("mapping", "set", ids["qb"], "Plumbing", "Repairs"), "names several accounts")
    assert hub("mapping", "set", ids["qb"], "Plumbing", "6100").exit_code == 0  # the code settles it
    assert_clean_error(hub("mapping", "set", ids["qb"], "Rent", "6200"), "inactive in quickbooks")
    assert_clean_error(hub("mapping", "set", ids["qb"], "Rent", "9999"), "no account '9999' in the chart imported")
    assert_clean_error(hub("mapping", "set", ids["slack"], "Rent", "6100"), "not an accounting integration")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(account_mapping.c.local_category, gl_account.c.code)
                                 .join(gl_account, gl_account.c.id == account_mapping.c.gl_account_id)).all())
    assert rows == {"Produce": "5100", "Meat": "5100", "Bar": "5100", "Plumbing": "6100"}
    assert hub("mapping", "set", ids["qb"], "Produce", "6100").exit_code == 0  # remapping replaces
    listed = hub("mapping", "list", ids["qb"])
    assert "Produce" in listed.output and "6100" in listed.output and "UNMAPPED" not in listed.output


def test_unmapped_categories_are_listed_until_mapped(accounting):
    _, _, ids = accounting
    listed = hub("mapping", "list", ids["qb"])
    assert "Plumbing" in listed.output and "Produce" in listed.output and "UNMAPPED (2 invoice line(s) blocked)" in listed.output
    hub("mapping", "set", ids["qb"], "Produce", "5100")
    assert hub("mapping", "remove", ids["qb"], "Produce").exit_code == 0
    assert_clean_error(hub("mapping", "remove", ids["qb"], "Produce"), "is not mapped")
    accounts = hub("mapping", "accounts", ids["qb"], "--search", "rep")
    assert "Repairs" in accounts.output and "Food Cost" not in accounts.output
