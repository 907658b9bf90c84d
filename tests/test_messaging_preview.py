"""What the messaging settings pages drive, below the browser: the sample events and the
preview of every route kind (the sender's own renderer), the Block Kit drawn as HTML without
letting an event value become markup, a route's template replaced only within its company
and integration, the ledger listed per integration with its totals, and SendGrid's sender
verification (client and emulator, over real HTTP)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa
from markupsafe import escape

from emulators import sendgrid as sg_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.notify import message_ledger, render
from hub.notify import routes as notify_routes
from hub.notify.samples import SAMPLES, sample_context
from hub.outbound import emit
from hub.outbound.outbox import EVENT_TYPES
from hub.providers.errors import RecordProblem
from hub.providers.ratebudget import RateBudget
from hub.providers.sendgrid.client import SendGridClient, SendGridDialect
from hub.providers.transport import RetrySettings, Transport
from hub.schema import notification_route
from hub.web.blockkit import blocks_html, mrkdwn_html

pytestmark = pytest.mark.timeout(60)


# ---- samples and previews ------------------------------------------------------------------------
def test_every_event_type_has_a_sample_that_renders_as_a_sentence_for_every_kind():
    assert set(SAMPLES) == set(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        ctx = sample_context(event_type, company_id=3)
        assert ctx["event"]["type"] == event_type and ctx["event"]["company_id"] == 3
        slack = render.preview("slack", {}, ctx)
        assert slack.text and slack.blocks[0]["type"] == "header" and slack.data is None
        sms = render.preview("sms", {}, ctx)
        assert sms.text == render.sms_text({}, ctx) and sms.segments >= 1 and sms.blocks is None
        assert render.preview("email", {"template_id": "d-1"}, ctx).data["event"]["type"] == event_type
    # the Procore and status samples carry what their emitters send: a sentence, not a field dump
    assert render.preview("sms", {}, sample_context("task.assigned", 1)).text == (
        "RFI #12 'Door hardware at level 2' assigned to Jane Doe on project Riverside Clinic (was Sam Lee)")
    assert render.preview("sms", {}, sample_context("invoice.status_changed", 1)).text == (
        "Invoice INV-1042 in QuickBooks Online is now paid (was submitted)")


def test_a_preview_uses_the_route_template_as_the_sender_does():
    ctx = sample_context("order.status_changed", 1)
    text, blocks = render.slack_message({"title": "Order {{external_id}}", "text": "*{{status}}*"}, ctx)
    shown = render.preview("slack", {"title": "Order {{external_id}}", "text": "*{{status}}*"}, ctx)
    assert (shown.text, shown.blocks) == (text, blocks) and blocks[0]["text"]["text"] == "Order F2A9-77C1"
    assert render.preview("sms", {"body": "{{external_id}}: {{status}}"}, ctx).text == "F2A9-77C1: ready"


@pytest.mark.parametrize("body, segments", [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
                                            ("é" * 160, 1), ("ж" * 70, 1), ("ж" * 71, 2), ("`" * 2, 1)])
def test_sms_segments_follow_gsm7_and_ucs2(body, segments):
    assert render.sms_segments(body) == segments


# ---- Block Kit as HTML ---------------------------------------------------------------------------
def test_mrkdwn_styles_links_and_mentions_become_a_fixed_set_of_tags():
    html = str(mrkdwn_html("*bold* _it_ ~gone~ `code` <https://x.example/a?b=1&c=2|Open> <!here> <@U1> a&amp;b 3 &lt; 4"))
    assert html == ('<strong>bold</strong> <em>it</em> <s>gone</s> <code>code</code> '
                    '<a href="https://x.example/a?b=1&amp;c=2" rel="noopener noreferrer">Open</a> '
                    '<span class="mention">@here</span> <span class="mention">@U1</span> a&amp;b 3 &lt; 4')


@pytest.mark.parametrize("value", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<javascript:alert(1)|click>",
                                   '"><svg onload=alert(1)>', "<!channel>"])
def test_an_event_value_never_becomes_markup(value):
    """The renderer escapes event values for Slack; the preview then draws them as text."""
    ctx = render.context("order.status_changed", 1, 1, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), {"note": value})
    _text, blocks = render.slack_message({"text": "note: {{note}}"}, ctx)
    html = str(blocks_html(blocks))
    assert str(escape(value)) in html  # shown as the text it is
    for tag in ("<script", "<img", "<svg", "<a "):
        assert tag not in html
    assert "mention" not in html  # <!channel> from an event pages nobody, not even in the preview


def test_a_template_own_link_and_an_unknown_block_are_shown_safely():
    html = str(blocks_html([{"type": "section", "text": {"type": "mrkdwn", "text": "<javascript:alert(1)|x>"}},
                            {"type": "image", "image_url": "https://x.example/i.png"}, {"type": "divider"}]))
    assert "<a " not in html and "&lt;javascript:alert(1)|x&gt;" in html
    assert '[image block]' in html and '<hr class="bk-divider">' in html


# ---- routes and the ledger, per company and integration --------------------------------------------
@pytest.fixture
def two_companies(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    ids = {}
    with clean_db.begin() as conn:
        for name in ("Acme", "Bella"):
            company = store.create_company(conn, name)
            ids[name] = (company, store.add_integration(conn, keyring, company_id=company, provider="twilio",
                                                        config={"from_number": "+15005550006"},
                                                        credentials={"account_sid": "AC1", "auth_token": "t"}))
    return clean_db, keyring, ids


def _sms_route(engine, keyring, company: int, integration: int) -> notify_routes.Route:
    route, _ = notify_routes.add_route(engine, keyring, company_id=company, kind="sms", events=["order.status_changed"],
                                       to=["+15005550010"], integration_id=integration, check=False)
    return route


def test_set_template_is_validated_and_scoped_to_the_company_and_integration(two_companies):
    engine, keyring, ids = two_companies
    (acme, acme_tw), (bella, bella_tw) = ids["Acme"], ids["Bella"]
    route = _sms_route(engine, keyring, acme, acme_tw)
    with engine.begin() as conn:
        saved = notify_routes.set_template(conn, acme, acme_tw, route.id, {"body": "{{status}}"})
    assert saved.template == {"body": "{{status}}"}
    for company, integration in ((bella, bella_tw), (bella, acme_tw), (acme, bella_tw)):
        with engine.begin() as conn, pytest.raises(NotFoundError):
            notify_routes.set_template(conn, company, integration, route.id, {"body": "stolen"})
    with engine.begin() as conn, pytest.raises(ValidationError, match="longer than 1600"):
        notify_routes.set_template(conn, acme, acme_tw, route.id, {"body": "x" * 1601})
    with engine.begin() as conn, pytest.raises(ValidationError, match="unknown sms template key"):
        notify_routes.set_template(conn, acme, acme_tw, route.id, {"text": "slack's"})
    with engine.connect() as conn:
        assert conn.scalar(sa.select(notification_route.c.template)) == {"body": "{{status}}"}
    assert notify_routes.kind_of("twilio") == "sms" and notify_routes.kind_of("xero") is None


def test_messages_are_listed_per_integration_with_their_reports_and_totals(two_companies):
    engine, keyring, ids = two_companies
    (acme, acme_tw), (bella, bella_tw) = ids["Acme"], ids["Bella"]
    acme_route, bella_route = _sms_route(engine, keyring, acme, acme_tw), _sms_route(engine, keyring, bella, bella_tw)
    for company, route, integration, status in ((acme, acme_route, acme_tw, "delivered"), (bella, bella_route, bella_tw, "failed")):
        with engine.begin() as conn:
            event_id = emit(conn, company, "order.status_changed", {"status": "ready"})
        [slot] = message_ledger.begin(engine, endpoint_id=route.id, event_id=event_id, attempt=1, message_id=f"msg_{company}",
                                      integration_id=integration, provider="twilio", recipients=["+15005550010"])
        message_ledger.finish(engine, slot.row_id, status, provider_message_id=f"SM{company}")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE notification_message SET history = :h WHERE id = :id"),
                         {"h": '[{"event": "sent", "at": "2026-01-01T00:00:00+00:00"}]', "id": slot.row_id})
    with engine.connect() as conn:
        [mine] = message_ledger.list_messages(conn, company_id=acme, integration_id=acme_tw)
        assert (mine.status, mine.history) == ("delivered", ({"event": "sent", "at": "2026-01-01T00:00:00+00:00"},))
        assert message_ledger.list_messages(conn, company_id=acme, integration_id=bella_tw) == []  # another company's
        assert [m.status for m in message_ledger.list_messages(conn, integration_id=bella_tw, status=("failed", "bounced"))] == ["failed"]
        assert message_ledger.status_counts(conn, company_id=acme, integration_id=acme_tw) == {"delivered": 1}
        assert message_ledger.status_counts(conn, company_id=bella, integration_id=acme_tw) == {}


# ---- SendGrid sender verification -------------------------------------------------------------------
@pytest.fixture
def sendgrid_served():
    emulator = sg_emulator.create_emulator()
    with serve(emulator.app) as base:
        transport = Transport(dialect=SendGridDialect(), base_url=base, budget=RateBudget("sendgrid", (), max_wait_s=1.0),
                              bearer_factory=lambda: sg_emulator.DEFAULT_API_KEY,
                              retry=RetrySettings(max_attempts=1, timeout_s=5.0))
        yield emulator, base, SendGridClient(transport, "noreply@acme-builders.example")
        transport.close()
        emulator.close()


def test_start_a_sender_verification_then_resend_and_verify(sendgrid_served):
    emulator, base, client = sendgrid_served
    created = client.create_verified_sender(nickname="orders", from_email="orders@acme.example", from_name="Acme Orders",
                                            reply_to="help@acme.example", address="1 Main St", city="Atlanta", country="USA")
    assert created["from_email"] == "orders@acme.example" and created["verified"] is False and isinstance(created["id"], int)
    assert emulator.verification_requests == ["orders@acme.example"]
    listed = {s["from_email"]: s for s in client.verified_senders()}
    assert listed["orders@acme.example"]["verified"] is False and listed["orders@acme.example"]["from_name"] == "Acme Orders"
    client.resend_verification(created["id"])
    assert emulator.verification_requests == ["orders@acme.example"] * 2
    httpx.post(f"{base}/_emulator/senders/verify", json={"email": "orders@acme.example"}).raise_for_status()
    assert {s["from_email"]: s["verified"] for s in client.verified_senders()}["orders@acme.example"] is True
    with pytest.raises(RecordProblem) as verified:
        client.resend_verification(created["id"])
    assert verified.value.status == 400 and "already verified" in verified.value.message


def test_a_sender_verification_missing_fields_or_duplicated_is_refused(sendgrid_served):
    emulator, base, client = sendgrid_served
    answer = httpx.post(f"{base}/v3/verified_senders", json={"from_email": "not an address", "nickname": "n"},
                        headers={"Authorization": f"Bearer {sg_emulator.DEFAULT_API_KEY}"})
    assert answer.status_code == 400
    assert {e["field"] for e in answer.json()["errors"]} == {"from_email", "reply_to", "address", "city", "country"}
    with pytest.raises(RecordProblem) as duplicate:
        client.create_verified_sender(nickname="n", from_email="NOREPLY@acme-builders.example", reply_to="a@b.example",
                                      address="1", city="c", country="d")
    assert duplicate.value.status == 400 and duplicate.value.code == "from_email"
    assert emulator.verification_requests == []
