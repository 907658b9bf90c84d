"""The pieces of hub/notify on their own: template filling (no attribute access, Slack
escaping), the per-key pacer, how a failed send is classified (real HTTP failures: refused
connection = not sent, lost reply = unknown), the message ledger across a crash, and the
status tracker's matching, ordering and patience (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import sqlalchemy as sa

from emulators import slack as slack_emulator
from emulators.serve import serve
from hub.errors import ValidationError
from hub.notify import message_ledger, render
from hub.notify.pacing import Pacer
from hub.notify.sender import classify
from hub.notify.status import apply_pending
from hub.outbound import emit
from hub.providers.slack import client as slack
from hub.providers.errors import RateLimited, RecordProblem
from hub.providers.ratebudget import RateBudget
from hub.providers.transport import RetrySettings, Transport
from hub.schema import inbound_event, notification_message, webhook_delivery
from tests.test_notify_support import world

pytestmark = pytest.mark.timeout(60)
UTC = dt.timezone.utc


# ---- render ------------------------------------------------------------------------------------
CTX = render.context("order.status_changed", 7, 1, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                     {"order_id": "o-1", "total": 12.5, "paid": True, "customer": {"name": "Ann <ann@x.io>"}, "items": [1, 2]})


def test_fill_reads_values_only():
    assert render.fill("{{order_id}} {{ customer.name }} {{event.id}} {{paid}} {{missing}}|", CTX) == "o-1 Ann <ann@x.io> evt_7 yes |"
    assert render.fill("{{items}} {{customer}}", CTX) == '[1, 2] {"name": "Ann <ann@x.io>"}'
    # a template is operator input: it cannot reach attributes or format specs as str.format could
    assert render.fill("{{order_id.__class__}} {0.__class__} {{order_id!r}}", CTX) == " {0.__class__} {{order_id!r}}"
    assert render.fill("<{{customer.name}}>", CTX, escape=render.slack_escape) == "<Ann &lt;ann@x.io&gt;>"


def test_default_slack_message_and_sms_text():
    text, blocks = render.slack_message({}, CTX)
    assert text == "A POS or delivery order moved to another status (order_id: o-1, paid: yes, total: 12.5)"
    assert [b["type"] for b in blocks] == ["header", "section", "context"]
    assert blocks[0]["text"]["text"] == "Order status changed"
    assert [f["text"] for f in blocks[1]["fields"]] == ["*order_id*\no-1", "*paid*\nyes", "*total*\n12.5"]
    custom = [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{customer.name}}* paid {{total}}"}}]
    assert render.slack_message({"blocks": custom, "text": "paid"}, CTX) == (
        "paid", [{"type": "section", "text": {"type": "mrkdwn", "text": "*Ann &lt;ann@x.io&gt;* paid 12.5"}}])
    assert render.sms_text({"body": "Order {{order_id}}"}, CTX) == "Order o-1"
    assert len(render.sms_text({"body": "x{{items}}" * 400}, CTX)) == render.SMS_MAX


RFI = {"entity": "rfi", "id": 5, "remote_id": "1000012", "number": "12", "subject": "Door <!channel> hardware",
       "project": {"id": 1, "name": "Riverside", "remote_id": "20001"}, "url": "https://app.procore.com/20001/project/rfi/show/1000012"}


@pytest.mark.parametrize("event_type, extra, sentence, fields", [
    ("task.assigned", {"role": "ball_in_court", "assignee": {"id": 7003, "name": "Jane Doe", "login": "jane@x.io"},
                       "previous_assignee": {"id": 7001, "name": "Ben Okafor", "login": "ben@x.io"}},
     "RFI #12 'Door <!channel> hardware' assigned to Jane Doe on project Riverside (was Ben Okafor)",
     ["*Project*\nRiverside", "*Assigned to*\nJane Doe", "*Previously*\nBen Okafor", "*As*\nball in court"]),
    ("schedule.changed", {"changes": {"due_date": {"before": "2026-01-05", "after": "2026-01-12"},
                                      "schedule_impact": {"before": {"status": "tbd", "value": None}, "after": {"status": "yes_known", "value": 5.0}}}},
     "RFI #12 'Door <!channel> hardware' on project Riverside: due date moved from 2026-01-05 to 2026-01-12; "
     "schedule impact 5 days (was to be determined)",
     ["*Project*\nRiverside", "*Due date*\n2026-01-05 → 2026-01-12", "*Schedule impact*\nto be determined → 5 days"]),
    ("budget.alert", {"cost_impact": {"before": {"status": "yes_known", "value": 1000.0}, "after": {"status": "yes_known", "value": 4800.0}},
                      "project_known_cost_impact": 12300.5},
     "RFI #12 'Door <!channel> hardware' on project Riverside: cost impact $4,800.00 (was $1,000.00); "
     "project's known cost impact now $12,300.50",
     ["*Project*\nRiverside", "*Cost impact*\n$1,000.00 → $4,800.00", "*Project known cost impact*\n$12,300.50"]),
])
def test_procore_events_read_as_sentences(event_type, extra, sentence, fields):
    """The Procore events (hub/sync/procore_events.py) say what happened in one line, in Slack
    (escaped, with labelled fields and a link), SMS and `event.summary` for email templates."""
    ctx = render.context(event_type, 9, 1, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {**RFI, **extra})
    assert ctx["event"]["summary"] == sentence == render.sms_text({}, ctx)
    text, blocks = render.slack_message({}, ctx)
    assert text == render.slack_escape(sentence) and "<!channel>" not in text
    assert blocks[0]["text"]["text"] == event_type.replace(".", " ").replace("_", " ").capitalize()
    assert blocks[1]["text"]["text"] == f"{text} <{RFI['url']}|Open in Procore>"
    assert [f["text"] for f in blocks[1]["fields"]] == fields
    assert render.email_data(ctx)["event"]["summary"] == sentence
    # a route's own template still decides; a thin payload falls back to the generic line
    assert render.slack_message({"text": "{{assignee.name}}"}, ctx)[0] == ("Jane Doe" if event_type == "task.assigned" else "")
    thin = render.context(event_type, 9, 1, dt.datetime(2026, 1, 2, tzinfo=UTC), {"id": 5})
    assert thin["event"]["summary"].endswith("(id: 5)")


@pytest.mark.parametrize("kind, template, error", [
    ("slack", {"subject": "x"}, "unknown slack template key"),
    ("slack", {"text": "  "}, "template text must be non-blank"),
    ("slack", {"blocks": {"type": "section"}}, "Slack blocks must be a list"),
    ("email", {}, "needs a SendGrid dynamic template id"),
    ("sms", {"body": "x" * 1601}, "longer than 1600"),
])
def test_templates_are_checked_when_saved(kind, template, error):
    with pytest.raises(ValidationError, match=error):
        render.check_template(kind, template)


# ---- pacing -----------------------------------------------------------------------------------
def test_pacer_keeps_per_key_slots_and_holds():
    now = [100.0]
    pacer = Pacer(clock=lambda: now[0])
    assert [pacer.reserve("ops", 1.0, 5.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert pacer.reserve("alerts", 1.0, 5.0) == 0.0  # another channel: not behind #ops
    pacer.hold("alerts", 30.0)
    assert pacer.reserve("alerts", 1.0, 5.0) == -30.0  # too long to sleep: the caller records a retry instead
    assert pacer.free_at("alerts") == 30.0
    now[0] = 102.5
    pacer.not_before("ops", 104.0)  # the last send left late
    assert pacer.reserve("ops", 1.0, 5.0) == 1.5


# ---- classifying failed sends -----------------------------------------------------------------
def _slack_client(base: str, timeout: float = 5.0) -> slack.SlackClient:
    transport = Transport(dialect=slack.SlackDialect(), base_url=base, budget=RateBudget("slack"),
                          bearer_factory=lambda: slack_emulator.DEFAULT_BOT_TOKEN,
                          retry=RetrySettings(max_attempts=1, timeout_s=timeout))
    return slack.SlackClient(transport)


def _failure(call):
    try:
        call()
    except Exception as exc:
        return classify(exc, "slack")
    raise AssertionError("the call did not fail")


def test_refused_connection_is_not_sent_but_a_lost_reply_is_unknown():
    status, detail, retry_after, _ = _failure(lambda: _slack_client("http://127.0.0.1:9").post_message("#ops", "x"))
    assert status == "not_sent" and "nothing was sent" in detail and retry_after is None
    emulator = slack_emulator.create_emulator()
    with serve(emulator.app) as base:
        httpx.post(f"{base}/_emulator/faults", json={"reply_delay_ms": 800})
        status, detail, _, _ = _failure(lambda: _slack_client(base, timeout=0.3).post_message("#ops", "x"))
        assert status == "unknown" and "it may have been sent" in detail
        assert len(emulator.messages) == 1  # it was: which is why it must not be retried blindly
        httpx.post(f"{base}/_emulator/faults", json={"reply_delay_ms": 0, "burst_429": 1, "retry_after_s": 7})
        assert _failure(lambda: _slack_client(base).post_message("#ops", "x"))[:3] == (
            "not_sent", "rate limited by slack, Retry-After 7 s", 7.0)
        status, detail, _, _ = _failure(lambda: _slack_client(base).post_message("#nope", "x"))
        assert status == "not_sent" and "channel_not_found" in detail  # fixable: retried on the schedule
        status, _, _, _ = _failure(lambda: _slack_client(base).post_message("#ops", "x" * 40_001))
        assert status == "refused"  # this message can never go
    assert classify(RateLimited("twilio", "busy", status=429), "twilio")[2] == 1.0
    assert classify(RecordProblem("twilio", "opted out", code="21610"), "twilio")[0] == "refused"


# ---- the ledger across a crash ------------------------------------------------------------------
@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _attempt(engine, endpoint_id: int, event_id: int, attempt: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(webhook_delivery).values(endpoint_id=endpoint_id, outbox_event_id=event_id, attempt=attempt,
                                                        message_id="msg_test", status="pending"))


def test_ledger_never_resends_an_accepted_or_cut_off_recipient(db):
    with world(db) as w:
        route = w.route("sms", to="+15558675310, +15558675311", check=False)
        with db.begin() as conn:
            event_id = emit(conn, w.company_id, "order.status_changed", {"order_id": "o-1"})
        _attempt(db, route.id, event_id, 1)
        a, b = "+15558675310", "+15558675311"

        def begin(attempt: int) -> dict[str, message_ledger.Slot]:
            slots = message_ledger.begin(db, endpoint_id=route.id, event_id=event_id, attempt=attempt, message_id="msg_test",
                                 integration_id=w.twilio_id, provider="twilio", recipients=[a, b])
            return {s.recipient: s for s in slots}

        first = begin(1)
        assert first[a].send and first[b].send and first[a].status == "sending"
        assert message_ledger.finish(db, first[a].row_id, "accepted", provider_message_id="SM1")
        # the worker dies while texting b; its lease runs out and another worker claims attempt 1 again
        again = begin(1)
        assert (again[a].send, again[a].status) == (False, "accepted")
        assert (again[b].send, again[b].status) == (False, "unknown") and "cut off" in again[b].detail
        _attempt(db, route.id, event_id, 2)
        later = begin(2)
        assert not later[a].send and not later[b].send  # an unknown outcome is never retried by itself
        # the first worker was only stalled, and finishes after all: a known outcome beats unknown
        assert message_ledger.finish(db, first[b].row_id, "accepted", provider_message_id="SM2")
        with db.connect() as conn:
            rows = {r.recipient: (r.status, r.provider_message_id) for r in conn.execute(sa.select(notification_message))}
        assert rows == {a: ("accepted", "SM1"), b: ("accepted", "SM2")}


# ---- the status tracker -------------------------------------------------------------------------
def _report(engine, integration_id: int, provider: str, event_id: str, payload: dict, age_s: float = 0.0) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(inbound_event).values(
            integration_id=integration_id, provider=provider, event_id=event_id, event_type="event", payload=payload,
            received_at=sa.func.now() - dt.timedelta(seconds=age_s)))


def _message(engine, row_id: int) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(notification_message).where(notification_message.c.id == row_id)).one()


def test_tracker_orders_statuses_waits_for_early_reports_and_matches_custom_args(db):
    with world(db) as w:
        sms = w.route("sms", to="+15558675310", check=False)
        email = w.route("email", to="ann@example.com", template={"template_id": "d-1"}, check=False)
        with db.begin() as conn:
            event_id = emit(conn, w.company_id, "order.status_changed", {"order_id": "o-1"})
        for route in (sms, email):
            _attempt(db, route.id, event_id, 1)
        [text] = message_ledger.begin(db, endpoint_id=sms.id, event_id=event_id, attempt=1, message_id="msg_sms",
                              integration_id=w.twilio_id, provider="twilio", recipients=["+15558675310"])
        [mail] = message_ledger.begin(db, endpoint_id=email.id, event_id=event_id, attempt=1, message_id="msg_mail",
                              integration_id=w.sendgrid_id, provider="sendgrid", recipients=["ann@example.com"])

        # Twilio reports delivered before sent (callbacks race); the send itself is not recorded yet
        _report(db, w.twilio_id, "twilio", "SM9:delivered", {"MessageSid": "SM9", "MessageStatus": "delivered", "To": "+15558675310"})
        first = apply_pending(db)
        assert (first.waiting, first.applied) == (1, 0)  # kept: the send's record may still be on its way
        message_ledger.finish(db, text.row_id, "accepted", provider_message_id="SM9")
        _report(db, w.twilio_id, "twilio", "SM9:sent", {"MessageSid": "SM9", "MessageStatus": "sent", "To": "+15558675310"})
        second = apply_pending(db)
        assert (second.applied, second.recorded) == (1, 1)
        row = _message(db, text.row_id)
        assert row.status == "delivered" and [h["event"] for h in row.history] == ["delivered", "sent"]  # sent came late: kept, not applied

        # SendGrid: the send timed out (unknown), but SendGrid did take it: its events carry our custom arg
        message_ledger.finish(db, mail.row_id, "unknown", detail="timed out")
        _report(db, w.sendgrid_id, "sendgrid", "sg-1", {"event": "delivered", "email": "ann@example.com", "timestamp": 1767225600,
                                                       "sg_message_id": "XMID.filter-1.0", "hub_message_id": "msg_mail"})
        assert apply_pending(db).applied == 1
        row = _message(db, mail.row_id)
        assert (row.status, row.provider_message_id) == ("delivered", "XMID")
        assert row.history[0]["at"] == "2026-01-01T00:00:00+00:00"

        # reports about mail the hub never sent are kept for the patience window, then dropped as unmatched
        _report(db, w.sendgrid_id, "sendgrid", "sg-2", {"event": "delivered", "email": "x@example.com", "sg_message_id": "OTHER.1"})
        _report(db, w.sendgrid_id, "sendgrid", "sg-3", {"event": "delivered", "email": "y@example.com", "sg_message_id": "OLD.1"},
                age_s=3600)
        report = apply_pending(db)
        assert (report.waiting, report.unmatched) == (1, 1)
        with db.connect() as conn:
            left = [r.event_id for r in conn.execute(sa.select(inbound_event).where(inbound_event.c.processed_at.is_(None)))]
        assert left == ["sg-2"]
        assert json.loads(json.dumps(row.history))  # history stays plain JSON


@pytest.mark.parametrize("event_type, payload, sentence", [
    ("invoice.status_changed", {"invoice_id": 2, "provider": "quickbooks", "remote_id": "2", "number": "1002", "status": "paid",
                                "previous_status": "authorised"}, "Invoice 1002 in QuickBooks Online is now paid (was authorised)"),
    ("order.status_changed", {"of": "external_order", "external_order_id": 9, "pos_order_id": 4, "provider": "ubereats",
                              "external_id": "ue-7", "status": "picked_up", "previous_status": "ready", "source": "webhook"},
     "Uber Eats order ue-7 is now picked up (was ready)"),
    ("order.status_changed", {"of": "pos_order", "external_order_id": 9, "pos_order_id": 4, "provider": "doordash",
                              "external_id": "dd-1", "status": "ready", "previous_status": "in_progress", "source": "pos"},
     "POS order 4 (DoorDash Marketplace order dd-1) is now ready (was in progress)"),
])
def test_status_events_read_as_sentences(event_type, payload, sentence):
    ctx = render.context(event_type, 11, 1, dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.timezone.utc), payload)
    assert render.default_text(ctx) == sentence
    text, blocks = render.slack_message({}, ctx)
    assert text == sentence and blocks[1]["text"]["text"] == sentence
    assert blocks[1]["fields"][-1]["text"].startswith("*Status*\n")
    assert render.sms_text({}, ctx) == sentence
