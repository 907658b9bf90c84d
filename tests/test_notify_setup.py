"""Setting notifications up, against the emulators over real HTTP: SendGrid template sync,
sender verification, Twilio phone numbers, Slack channels (a failing check is a clear
error, at add-route and in `hub notify check`), and the `hub notify` CLI end to end."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from emulators import sendgrid as sg_emulator
from emulators import slack as slack_emulator
from emulators import twilio as tw_emulator
from hub.commands.notify import app
from hub.errors import ValidationError
from hub.notify.readiness import check_integration
from hub.providers.sendgrid import templates as tpl
from hub.providers.errors import ConfigurationProblem
from tests.test_notify_support import SG_TEMPLATE, attempts, messages, notifying, wait_until, world

pytestmark = pytest.mark.timeout(90)
runner = CliRunner()
SECRETS = (slack_emulator.DEFAULT_BOT_TOKEN, sg_emulator.DEFAULT_API_KEY, tw_emulator.DEFAULT_AUTH_TOKEN)


@pytest.fixture
def db(clean_db, secret_keys, monkeypatch):
    monkeypatch.delenv("HUB_PUBLIC_URL", raising=False)
    return clean_db


def hub(*args: str):
    result = runner.invoke(app, list(args))
    assert not any(secret in result.output for secret in SECRETS), result.output
    return result


# ---- SendGrid ---------------------------------------------------------------------------------
def test_template_sync_adds_updates_removes_and_lists(db):
    with world(db) as w:
        first = tpl.sync(db, w.keyring, w.sendgrid_id)
        assert (first.added, first.updated, first.removed, first.total) == (2, 0, 0, 2)  # dynamic only, not the legacy one
        w.sendgrid.add_template("Order ready", "Order {{order_id}} is ready", id="d-00000000000000000000000000000001")
        w.sendgrid.templates[0]["name"] = "Invoice changed"
        w.sendgrid.templates[:] = [t for t in w.sendgrid.templates if t["name"] != "Budget alert"]
        second = tpl.sync(db, w.keyring, w.sendgrid_id)
        assert (second.added, second.updated, second.removed, second.total) == (1, 1, 1, 2)
        with db.connect() as conn:
            listed = [(t.template_id, t.name, t.subject) for t in tpl.list_templates(conn, w.sendgrid_id)]
        assert listed == [("d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b", "Invoice changed", "Invoice {{invoice_number}} is {{status}}"),
                          ("d-00000000000000000000000000000001", "Order ready", "Order {{order_id}} is ready")]
        with pytest.raises(ValidationError, match="SendGrid has no dynamic template d-9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"):
            w.route("email", to="ann@example.com", template={"template_id": "d-9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"})  # deleted
        with pytest.raises(ValidationError, match="must be a dynamic template"):
            w.route("email", to="ann@example.com", template={"template_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"})
        with pytest.raises(ValidationError, match="is slack; templates are synced from SendGrid"):
            tpl.sync(db, w.keyring, w.slack_id)


def test_unverified_sendgrid_sender_is_refused_with_a_clear_error(db):
    with world(db, from_email="pending@acme-builders.example") as w:
        with pytest.raises(ConfigurationProblem, match=r"from address pending@acme-builders.example is not a verified sender "
                                                       r"\(verification pending\)"):
            w.route("email", to="ann@example.com", template={"template_id": SG_TEMPLATE})
        report = check_integration(db, w.keyring, w.sendgrid_id)
        assert not report.ok and any("not a verified sender" in p for p in report.problems)
        failed = hub("check", "--integration", str(w.sendgrid_id))
        assert failed.exit_code == 1
        assert "problem  sender: sendgrid: from address pending@acme-builders.example is not a verified sender" in failed.output
        assert "Error: 1 problem(s) found" in failed.output


def test_verified_sender_check_reports_where_delivery_events_go(db):
    with world(db) as w:
        route = w.route("email", to="ann@example.com", template={"template_id": SG_TEMPLATE})
        report = check_integration(db, w.keyring, w.sendgrid_id, public_url=w.hub)
        assert report.ok, report.problems
        assert "from noreply@acme-builders.example: verified sender" in report.lines
        assert any(line.startswith(f"delivery events: set SendGrid's Event Webhook (signed) to POST to {w.hub}/webhooks/sendgrid/")
                   for line in report.lines)
        w.sendgrid.templates[:] = []  # the route's template was deleted at SendGrid
        report = check_integration(db, w.keyring, w.sendgrid_id, public_url=w.hub)
        assert report.problems == [f"route {route.id} ({route.name}): template {SG_TEMPLATE} is not in SendGrid"]


# ---- Twilio -----------------------------------------------------------------------------------
def test_twilio_from_number_must_be_one_of_the_accounts(db):
    with world(db, from_number="+15005550009") as w:
        with pytest.raises(ConfigurationProblem, match=r"the from number \+15005550009 is not one of the account's phone numbers"):
            w.route("sms", to="+15558675310", template={"body": "x"})
        report = check_integration(db, w.keyring, w.twilio_id)
        assert report.problems == ["phone number: twilio: the from number +15005550009 is not one of the account's phone numbers"]
    with world(db, company="Bella") as w:
        w.route("sms", to="+15558675310", template={"body": "x"})
        report = check_integration(db, w.keyring, w.twilio_id)
        assert report.ok and "from +15005550006: one of the account's 2 number(s), SMS-capable" in report.lines
        assert any("no public URL" in warning for warning in report.warnings)  # status cannot come back: said, not hidden
        report = check_integration(db, w.keyring, w.twilio_id, public_url=w.hub)
        assert not report.warnings and any(f"call back {w.hub}/webhooks/twilio/" in line for line in report.lines)


# ---- Slack ------------------------------------------------------------------------------------
@pytest.mark.parametrize("channel, error", [
    ("#random", "the bot is not a member of #random: invite it"),
    ("#nope", "Slack channel #nope not found"),
    ("#old-announcements", "Slack channel #old-announcements is archived"),
])
def test_slack_route_to_a_channel_the_bot_cannot_post_in_is_refused(db, channel, error):
    with world(db) as w:
        with pytest.raises(ValidationError, match=error):
            w.route("slack", to=channel)
        assert hub("list").output.startswith("no notification routes")


def test_slack_check_follows_the_channel(db):
    with world(db) as w:
        route = w.route("slack", to="alerts")
        report = check_integration(db, w.keyring, w.slack_id)
        assert report.ok and f"route {route.id}: #alerts (C0ALERTS01) exists, bot is a member" in report.lines
        w.slack.channels["C0ALERTS01"]["is_archived"] = True
        report = check_integration(db, w.keyring, w.slack_id)
        assert report.problems == [f"route {route.id} ({route.name}): Slack channel #alerts is archived"]


# ---- the CLI ----------------------------------------------------------------------------------
def test_cli_add_route_list_test_log_remove(db):
    with world(db) as w:
        added = hub("add-route", "--company", "Acme", "--events", "order.status_changed", "--kind", "slack", "--to", "#ops",
                    "--template", "Order {{order_id}}: {{status}}", "--title", "Order update")
        assert added.exit_code == 0, added.output
        route_id = int(re.search(r"route (\d+)", added.output).group(1))
        assert "slack to #ops (C0OPS00001), events order.status_changed, webhook.test" in added.output
        email = hub("add-route", "--company", "Acme", "--events", "invoice.status_changed", "--kind", "email",
                    "--to", "ann@example.com", "--template", SG_TEMPLATE)
        assert email.exit_code == 0, email.output
        listed = hub("list", "--company", "Acme")
        assert listed.exit_code == 0 and "slack #ops" in listed.output and "SendGrid template " + SG_TEMPLATE in listed.output

        tested = hub("test", "--company", "Acme")
        assert tested.exit_code == 0 and "2 route(s) subscribed" in tested.output, tested.output
        with notifying(w):
            wait_until(lambda: len(w.slack.messages) == 1 and len(w.sendgrid.messages) == 1, what="test messages")
            wait_until(lambda: len(messages(db)) == 2 and all(m.status in ("delivered", "accepted") for m in messages(db)))
        assert w.slack.messages[0]["blocks"][0]["text"]["text"] == "Order update"
        log = hub("log", "--route", str(route_id))
        assert log.exit_code == 0 and "C0OPS00001" in log.output and "delivered" in log.output and "webhook.test" in log.output

        templates = hub("templates", "list", "--integration", str(w.sendgrid_id))
        assert "Invoice status changed" in templates.output  # synced when the email route was added
        assert hub("templates", "sync", "--integration", str(w.sendgrid_id)).output.strip() == "2 template(s): 0 new, 0 changed, 0 removed"

        ok = hub("check", "--company", "Acme")
        assert ok.exit_code == 0, ok.output
        assert "slack integration" in ok.output and "twilio integration" in ok.output and "sendgrid integration" in ok.output

        removed = hub("remove", str(route_id))
        assert removed.exit_code == 0 and attempts(db, route_id) == []
        missing = hub("remove", str(route_id))
        assert missing.exit_code == 1 and missing.output.strip() == f"Error: no notification route {route_id}"


@pytest.mark.parametrize("args, error", [
    (("--kind", "fax", "--to", "x"), "unknown route kind 'fax'"),
    (("--kind", "sms", "--to", "5551234"), "'5551234' is not a phone number in E.164 form"),
    (("--kind", "email", "--to", "ann@example.com"), "an email route needs a SendGrid dynamic template id"),
    (("--kind", "email", "--to", "not-an-address", "--template", SG_TEMPLATE), "'not-an-address' is not an email address"),
    (("--kind", "slack", "--blocks", '[{"text": "no type"}]'), "Slack blocks must be a list"),
    (("--kind", "slack", "--events", "order.changed"), "unknown event type 'order.changed'"),
])
def test_cli_refuses_bad_routes_with_one_line(db, args, error):
    with world(db):
        argv = ["add-route", "--company", "Acme", *args]
        if "--events" not in args:
            argv += ["--events", "order.status_changed"]
        result = hub(*argv)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and error in result.output, result.output
