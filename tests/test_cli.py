"""The `hub` CLI end to end against the test database (in-process through CliRunner)."""

import json
import uuid

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub import db, embedded_pg, migrate
from hub.cli import app
from hub.schema import company, integration
from tests.conftest import count

runner = CliRunner()
QB_CREDS = {"client_id": "cli-client", "client_secret": "cli-secret-value-0042", "refresh_token": "cli-refresh-value-0099"}


def hub(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def assert_clean_error(result, message: str) -> None:
    """Exit 1 through the CLI's own error path (not a crash), one line naming the problem."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # an unhandled crash is not SystemExit
    assert message in result.output, result.output
    assert result.output.startswith("Error: ") and result.output.strip().count("\n") == 0, result.output


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


@pytest.fixture
def scratch_db(server_url, monkeypatch):
    """An empty database that HUB_DATABASE_URL points at for one test."""
    url = server_url.set(database=f"hub_cli_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    monkeypatch.setenv("HUB_DATABASE_URL", url.render_as_string(hide_password=False))
    yield url
    db.engine(url).dispose()
    db.drop_database(url)


def test_db_upgrade_current_downgrade_on_a_fresh_database(scratch_db):
    assert_clean_error(hub("company", "list"), "has no schema yet: run `hub db upgrade`")
    upgraded = hub("db", "upgrade")
    head = migrate.head()
    assert upgraded.exit_code == 0 and f"is at revision {head}" in upgraded.output
    assert f"at {head}, newest {head}" in hub("db", "current").output
    assert "no companies yet" in hub("company", "list").output
    downgraded = hub("db", "downgrade", "base")
    assert downgraded.exit_code == 0 and "base (empty)" in downgraded.output
    assert "at base (empty)" in hub("db", "current").output
    assert_clean_error(hub("db", "upgrade", "--revision", "zzz"), "migration:")
    assert_clean_error(hub("db", "downgrade", "bogus"), "migration:")


def test_db_url_hides_passwords_unless_asked(monkeypatch, scratch_db):
    raw = scratch_db.set(query={"password": "HUNTER3pw"}).render_as_string(hide_password=False)
    monkeypatch.setenv("HUB_DATABASE_URL", raw)
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:PW-in-userinfo@h/dagster?sslpassword=x1")
    for args in (["db", "url"], ["db", "url", "--dagster"], ["db", "current"]):
        result = hub(*args)
        assert "HUNTER3pw" not in result.output and "PW-in-userinfo" not in result.output, result.output
    assert "HUNTER3pw" in hub("db", "url", "--show-password").output


def test_db_start_and_stop_the_embedded_server(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    try:
        started = hub("db", "start")
        assert started.exit_code == 0 and str(tmp_path) in started.output
        assert embedded_pg.is_running()
        assert "stopped" in hub("db", "stop").output
        assert not embedded_pg.is_running()
        assert "was not running" in hub("db", "stop").output
    finally:
        embedded_pg.stop()


def test_company_create_and_list(acme):
    assert "Acme" in hub("company", "list").output
    assert_clean_error(hub("company", "create", "Acme"), "already exists")
    assert_clean_error(hub("company", "create", "Other", "--timezone", "Mars/Base"), "unknown timezone")
    assert_clean_error(hub("company", "create", "A\x00B"), "non-blank printable")
    assert_clean_error(hub("company", "create", "   "), "non-blank printable")
    assert count(acme, company) == 1


def test_add_list_show_enable_disable(acme):
    added = _add_qb("--name", "Books")
    assert added.exit_code == 0, added.output
    assert "partition quickbooks-1" in added.output
    listed = hub("integration", "list", "--company", "Acme")
    assert "quickbooks" in listed.output and "accounting" in listed.output and "pending" in listed.output
    header, row = listed.output.splitlines()
    assert header.split()[-1] == "company" and row.endswith(" Acme"), listed.output  # the name, not the id
    assert row.split()[3] == "no"  # inactive until its connection is established or it is enabled
    assert "inactive until `hub integration check 1` passes" in added.output
    shown = hub("integration", "show", "1")
    assert shown.exit_code == 0
    assert "company      Acme (1)" in shown.output
    assert "realm_id: 123" in shown.output
    assert "client_secret: ****0042" in shown.output
    for secret in (QB_CREDS["client_secret"], QB_CREDS["refresh_token"]):
        assert secret not in shown.output and secret not in added.output and secret not in listed.output
    assert "enabled" in hub("integration", "enable", "1").output
    assert hub("integration", "list").output.splitlines()[1].split()[3] == "yes"
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
        (["--provider", "stripe", "--name", "   ", "--credentials", '{"api_key": "a", "webhook_secret": "b"}'], "name must not be blank"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_writes_nothing(acme, args, message):
    assert_clean_error(hub("integration", "add", "--company", "Acme", *args), message)
    assert count(acme, integration) == 0


def test_unreadable_credentials_file(acme, tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"api_key": "caf\xe9"}')
    assert_clean_error(hub("integration", "add", "--company", "Acme", "--provider", "sendgrid", "--credentials", f"@{path}"), "cannot read")
    assert count(acme, integration) == 0


def test_out_of_range_ids(acme):
    huge = "99999999999999999999"
    assert_clean_error(hub("integration", "show", huge), f"no integration {huge}")
    assert_clean_error(hub("integration", "disable", huge), f"no integration {huge}")
    assert_clean_error(hub("integration", "add", "--company", huge, "--provider", "stripe", "--credentials", '{"api_key": "a", "webhook_secret": "b"}'), f"no company {huge}")


def test_config_values_other_than_identifiers_are_masked(acme):
    result = hub(
        "integration", "add", "--company", "Acme", "--provider", "slack",
        "--config", '{"default_channel": "#ops", "webhook_url": "https://hooks.example/T0KEN-SECRET-abcdef"}',
        "--credentials", '{"bot_token": "xoxb-0000-SECRET", "signing_secret": "sig-SECRET-000000"}',
    )
    assert result.exit_code == 0, result.output
    shown = hub("integration", "show", "1").output
    assert "default_channel: #ops" in shown
    assert "webhook_url: ****cdef" in shown
    assert "T0KEN-SECRET" not in shown and "xoxb-0000-SECRET" not in shown


def test_unknown_company_and_integration(acme):
    result = hub("integration", "add", "--company", "Nobody", "--provider", "stripe", "--credentials", '{"api_key": "a", "webhook_secret": "b"}')
    assert_clean_error(result, "no company 'Nobody'")
    assert_clean_error(hub("integration", "show", "999"), "no integration 999")
    assert_clean_error(hub("integration", "disable", "999"), "no integration 999")


def test_missing_or_wrong_key(acme, monkeypatch):
    assert _add_qb().exit_code == 0
    monkeypatch.delenv("HUB_SECRET_KEYS")
    assert_clean_error(hub("integration", "show", "1"), "HUB_SECRET_KEYS is not set")
    assert_clean_error(_add_qb("--name", "Second"), "HUB_SECRET_KEYS is not set")
    assert count(acme, integration) == 1
    monkeypatch.setenv("HUB_SECRET_KEYS", hub("keys", "generate").output.strip())
    assert_clean_error(hub("integration", "show", "1"), "HUB_SECRET_KEYS has no key with id")
    # a wrong key must not write either: the new row would sit under a key nobody else uses
    assert_clean_error(_add_qb("--name", "Third"), "HUB_SECRET_KEYS lacks key(s)")
    assert_clean_error(hub("keys", "rotate"), "nothing was rotated")
    assert count(acme, integration) == 1


def test_keys_rotate(acme, monkeypatch, secret_keys):
    assert _add_qb().exit_code == 0
    new_key = hub("keys", "generate").output.strip()
    monkeypatch.setenv("HUB_SECRET_KEYS", f"{new_key},{secret_keys[0]}")
    rotated = hub("keys", "rotate")
    assert rotated.exit_code == 0 and "2 of 2 encrypted values re-encrypted" in rotated.output
    monkeypatch.setenv("HUB_SECRET_KEYS", new_key)
    assert "****0042" in hub("integration", "show", "1").output


def test_providers_and_demo_seed(clean_db, secret_keys):
    assert "quickbooks" in hub("providers").output
    first = hub("demo", "seed")
    assert first.exit_code == 0, first.output
    seeded = count(clean_db, integration)
    assert seeded >= 5
    again = hub("demo", "seed")
    assert again.exit_code == 0 and "already present" in again.output
    assert count(clean_db, integration) == seeded


def test_a_closed_pipe_is_not_reported_as_an_error(tmp_path):
    """`hub providers | head -1`: the reader went away; no `Error:` line, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    hub_bin = Path(sys.executable).with_name("hub")
    done = subprocess.run(f"'{hub_bin}' providers | head -c 20", shell=True, capture_output=True, text=True, timeout=60)
    assert len(done.stdout) == 20
    assert "Error" not in done.stderr and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_inbound_endpoint_under_hub_webhooks_and_the_old_spelling_hidden(acme):
    """`hub webhooks inbound` makes (then shows the same) endpoint a provider posts to; the old
    `hub webhook inbound` still answers, but `hub --help` lists only `webhooks`."""
    added = hub("integration", "add", "--company", "Acme", "--provider", "stripe",
                "--credentials", json.dumps({"api_key": "sk_test_cli_0001", "webhook_secret": "whsec_cli_0001"}))
    assert added.exit_code == 0, added.output
    integration_id = added.output.split()[1]
    first = hub("webhooks", "inbound", "--integration", integration_id)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("inbound endpoint ") and "/webhooks/stripe/" in first.output
    again = hub("webhook", "inbound", "--integration", integration_id)
    assert again.exit_code == 0 and again.output == first.output
    listed = hub("--help").output
    assert "webhooks" in listed and not any(line.split()[:1] == ["webhook"] for line in listed.replace("│", " ").splitlines())


def test_a_passing_check_makes_a_new_integration_active_but_not_one_an_admin_disabled(acme):
    """Blueprint: is_active defaults to FALSE; the connection established (a passing check)
    or an explicit enable makes it active. An admin's disable outlives later checks."""
    stripe = json.dumps({"api_key": "sk_test_cli_0002", "webhook_secret": "whsec_cli_0002"})
    added = hub("integration", "add", "--company", "Acme", "--provider", "stripe", "--credentials", stripe)
    assert added.exit_code == 0, added.output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active, integration.c.status)).one() == (False, "pending")
    checked = hub("integration", "check", "1")
    assert checked.exit_code == 0 and "connected (Stripe); now active" in checked.output, checked.output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active, integration.c.status)).one() == (True, "connected")
    assert hub("integration", "disable", "1").exit_code == 0
    again = hub("integration", "check", "1")
    assert again.exit_code == 0 and "now active" not in again.output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active, integration.c.status)).one() == (False, "disconnected")
    enabled_at_once = hub("integration", "add", "--company", "Acme", "--provider", "stripe", "--name", "Stripe 2",
                          "--credentials", stripe, "--enable")
    assert enabled_at_once.exit_code == 0 and enabled_at_once.output.rstrip().endswith("active"), enabled_at_once.output
    with acme.connect() as conn:
        assert conn.execute(sa.select(integration.c.is_active).where(integration.c.id == 2)).scalar() is True
