"""The `hub` CLI end to end against the test database (in-process through CliRunner)."""

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.cli import app
from hub.schema import company, integration
from tests.conftest import count

runner = CliRunner()
QB_CREDS = {"client_id": "cli-client", "client_secret": "cli-secret-value-0042", "refresh_token": "cli-refresh-value-0099"}


def hub(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def acme(clean_db, secret_keys):
    result = hub("company", "create", "Acme", "--timezone", "America/New_York")
    assert result.exit_code == 0, result.output
    return clean_db


def _add_qb(*extra: str):
    return hub(
        "integration", "add", "--company", "Acme", "--provider", "quickbooks",
        "--config", '{"realm_id": "123"}', "--credentials", json.dumps(QB_CREDS), *extra,
    )


def test_db_upgrade_and_current(engine):
    result = hub("db", "upgrade")
    assert result.exit_code == 0 and "is at revision 0001" in result.output
    assert "at 0001, newest 0001" in hub("db", "current").output


def test_company_create_and_list(acme):
    assert "Acme" in hub("company", "list").output
    duplicate = hub("company", "create", "Acme")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    bad_tz = hub("company", "create", "Other", "--timezone", "Mars/Base")
    assert bad_tz.exit_code == 1 and "unknown timezone" in bad_tz.output
    assert count(acme, company) == 1


def test_add_list_show_enable_disable(acme):
    added = _add_qb("--name", "Books")
    assert added.exit_code == 0, added.output
    assert "partition quickbooks-1" in added.output
    listed = hub("integration", "list", "--company", "Acme")
    assert "quickbooks" in listed.output and "accounting" in listed.output and "pending" in listed.output
    shown = hub("integration", "show", "1")
    assert shown.exit_code == 0
    assert "realm_id: 123" in shown.output
    assert "client_secret: ****0042" in shown.output
    for secret in (QB_CREDS["client_secret"], QB_CREDS["refresh_token"]):
        assert secret not in shown.output and secret not in added.output and secret not in listed.output
    assert "disabled" in hub("integration", "disable", "1").output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active, integration.c.status)).one() == (False, "disconnected")
    assert "enabled" in hub("integration", "enable", "1").output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active)).scalar() is True


def test_credentials_from_stdin_and_file(acme, tmp_path):
    from_stdin = hub(
        "integration", "add", "--company", "Acme", "--provider", "stripe", "--credentials", "-",
        input=json.dumps({"api_key": "sk_test_stdin_0001", "webhook_secret": "whsec_stdin"}),
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"api_key": "SG.file-0001"}))
    from_file = hub(
        "integration", "add", "--company", "Acme", "--provider", "sendgrid", "--config", '{"from_email": "a@b.c"}',
        "--credentials", f"@{path}",
    )
    assert from_file.exit_code == 0, from_file.output
    assert count(acme, integration) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--provider", "myspace", "--credentials", "{}"], "unknown provider 'myspace'"),
        (["--provider", "quickbooks", "--config", "{realm_id: 1", "--credentials", json.dumps(QB_CREDS)], "--config is not valid JSON"),
        (["--provider", "quickbooks", "--config", "[1, 2]", "--credentials", json.dumps(QB_CREDS)], "--config must be a JSON object"),
        (["--provider", "quickbooks", "--config", '{"realm_id": "1"}', "--credentials", '{"client_id": "x"}'], "needs credential field(s) client_secret, refresh_token"),
        (["--provider", "quickbooks", "--credentials", json.dumps(QB_CREDS)], "needs config field(s) realm_id"),
        (["--provider", "stripe", "--credentials", "@/no/such/file.json"], "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_writes_nothing(acme, args, message):
    result = hub("integration", "add", "--company", "Acme", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().count("\n") == 0, result.output  # one line
    assert "Traceback" not in result.output
    assert count(acme, integration) == 0


def test_unknown_company_and_integration(acme):
    result = hub("integration", "add", "--company", "Nobody", "--provider", "stripe", "--credentials", '{"api_key": "a", "webhook_secret": "b"}')
    assert result.exit_code == 1 and "no company 'Nobody'" in result.output
    assert hub("integration", "show", "999").exit_code == 1
    assert "no integration 999" in hub("integration", "disable", "999").output


def test_missing_or_wrong_key(acme, monkeypatch):
    assert _add_qb().exit_code == 0
    monkeypatch.delenv("HUB_SECRET_KEYS")
    missing = hub("integration", "show", "1")
    assert missing.exit_code == 1 and "HUB_SECRET_KEYS is not set" in missing.output
    no_write = _add_qb("--name", "Second")
    assert no_write.exit_code == 1 and count(acme, integration) == 1
    monkeypatch.setenv("HUB_SECRET_KEYS", hub("keys", "generate").output.strip())
    wrong = hub("integration", "show", "1")
    assert wrong.exit_code == 1 and "HUB_SECRET_KEYS has no key with id" in wrong.output


def test_keys_rotate(acme, monkeypatch, secret_keys):
    assert _add_qb().exit_code == 0
    new_key = hub("keys", "generate").output.strip()
    monkeypatch.setenv("HUB_SECRET_KEYS", f"{new_key},{secret_keys[0]}")
    rotated = hub("keys", "rotate")
    assert rotated.exit_code == 0 and "2 of 2 encrypted values re-encrypted" in rotated.output
    monkeypatch.setenv("HUB_SECRET_KEYS", new_key)
    assert "****0042" in hub("integration", "show", "1").output
    assert new_key not in rotated.output


def test_providers_and_demo_seed(clean_db, secret_keys):
    assert "quickbooks" in hub("providers").output
    first = hub("demo", "seed")
    assert first.exit_code == 0, first.output
    seeded = count(clean_db, integration)
    assert seeded >= 5
    again = hub("demo", "seed")
    assert again.exit_code == 0 and "already present" in again.output
    assert count(clean_db, integration) == seeded
