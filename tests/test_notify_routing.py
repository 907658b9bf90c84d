"""Notification routes end to end: an event emitted into the outbox -> the dispatcher ->
the message at the Slack / SendGrid / Twilio emulator (real HTTP) with the right Block Kit,
template data or text; delivery status back from SendGrid's signed event webhook and
Twilio's signed status callbacks through the real hub web app, applied to the messages;
Slack's per-channel rate limit and 429s without delaying another channel; unknown outcomes
never resent by themselves; a rolled-back event sends nothing. Real PostgreSQL throughout."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
import sqlalchemy as sa

from hub.notify import callbacks
from hub.notify.message_ledger import resend
from hub.notify.routes import POLICIES
from hub.notify.status import apply_pending
from hub.outbound import emit
from hub.outbound import endpoints as ep
from hub.schema import inbound_event, outbox_event
from tests.test_notify_support import (
    FROM_EMAIL,
    FROM_NUMBER,
    SG_TEMPLATE,
    attempts,
    by_recipient,
    messages,
    notify_worker,
    notifying,
    wait_until,
    world,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _emit(engine, company_id: int, event_type: str = "order.status_changed", **payload) -> int:
    with engine.begin() as conn:
        return emit(conn, company_id, event_type, payload)


def _created(engine, event_id: int) -> str:
    with engine.connect() as conn:
        when = conn.scalar(sa.select(outbox_event.c.created_at).where(outbox_event.c.id == event_id))
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _succeeded(engine, endpoint_id: int, n: int = 1) -> bool:
    return sum(1 for a in attempts(engine, endpoint_id) if a.status == "succeeded") >= n


def _statuses(engine, endpoint_id: int) -> dict[str, str]:
    apply_pending(engine)
    return {m.recipient: m.status for m in messages(engine, endpoint_id)}


# ---- Slack ------------------------------------------------------------------------------------
def test_slack_route_posts_block_kit_to_the_channel(db):
    with world(db) as w:
        route = w.route("slack", to="#ops", template={"text": "Order *{{order_id}}* is now {{status}}", "title": "Order {{order_id}}"})
        assert (route.target, route.target_name) == ("C0OPS00001", "ops")  # resolved and checked at the emulator
        event_id = _emit(db, w.company_id, order_id="o-7", status="ready", note="<!channel> & co")
        with notifying(w):
            wait_until(lambda: _succeeded(db, route.id), what="delivery recorded")
    [posted] = w.slack.messages
    assert posted["channel"] == "C0OPS00001" and posted["text"] == "Order *o-7* is now ready"
    assert posted["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Order o-7", "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Order *o-7* is now ready"},
         "fields": [  # an event value cannot page the channel: Slack's control characters are escaped
             {"type": "mrkdwn", "text": "*note*\n&lt;!channel&gt; &amp; co"},
             {"type": "mrkdwn", "text": "*order_id*\no-7"}, {"type": "mrkdwn", "text": "*status*\nready"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"`order.status_changed` · evt_{event_id} · {_created(db, event_id)}"}]},
    ]
    [attempt] = attempts(db, route.id)
    assert attempt.response_code == 200 and attempt.response_body == f"slack: posted to C0OPS00001 ts {posted['ts']}"
    [message] = messages(db, route.id)
    assert (message.recipient, message.status, message.provider_message_id) == ("C0OPS00001", "delivered", posted["ts"])
    assert message.message_id == attempt.message_id


def test_rolled_back_event_sends_nothing(db):
    with world(db) as w:
        route = w.route("slack", events=["invoice.status_changed"], to="#ops", template={"text": "{{marker}}"})
        with db.connect() as conn:
            tx = conn.begin()
            emit(conn, w.company_id, "invoice.status_changed", {"marker": "rolled back"})
            tx.rollback()
        _emit(db, w.company_id, "invoice.status_changed", marker="committed")
        with notifying(w):
            wait_until(lambda: _succeeded(db, route.id), what="delivery")
            time.sleep(0.5)  # time for a wrongly kept event to go out too
    assert [m["text"] for m in w.slack.messages] == ["committed"]
    assert len(messages(db)) == 1


def test_slack_paces_one_message_per_second_per_channel_without_delaying_another(db):
    with world(db, slack={"per_channel_per_s": 1.0, "burst": 1}) as w:
        ops = w.route("slack", events=["order.status_changed"], to="#ops", template={"text": "ops {{n}}"})
        alerts = w.route("slack", events=["budget.alert"], to="#alerts", template={"text": "alert"})
        for n in range(3):
            _emit(db, w.company_id, n=n)
        _emit(db, w.company_id, "budget.alert", project="p-1")
        started = time.time()
        with notifying(w):
            wait_until(lambda: _succeeded(db, ops.id, 3) and _succeeded(db, alerts.id), timeout=15, what="all posted")
    assert "429" not in w.slack.core.stats()["by_status"]  # paced: Slack never had to say 429
    ops_at = sorted(m["at"] for m in w.slack.messages if m["channel"] == "C0OPS00001")
    alert_at = next(m["at"] for m in w.slack.messages if m["channel"] == "C0ALERTS01")
    assert all(b - a >= 0.9 for a, b in zip(ops_at, ops_at[1:])), ops_at
    assert alert_at - started < 1.5 and alert_at < ops_at[1]  # #alerts did not queue behind #ops


def test_slack_429_retry_after_becomes_the_retry_time_and_other_channels_go_on(db):
    with world(db, slack={"per_channel_per_s": 0.25, "burst": 1}) as w:
        ops = w.route("slack", events=["order.status_changed"], to="#ops", template={"text": "ops"})
        alerts = w.route("slack", events=["order.status_changed"], to="#alerts", template={"text": "alerts"})
        # someone else just posted to #ops: the channel's next slot is 4 s away, which the hub cannot know
        direct = httpx.post(f"{w.slack_url}/api/chat.postMessage", json={"channel": "#ops", "text": "by hand"},
                            headers={"Authorization": "Bearer xoxb-demo-token-000000"})
        assert direct.json()["ok"] is True
        _emit(db, w.company_id, order_id="o-1")
        with notifying(w):
            wait_until(lambda: _succeeded(db, alerts.id), timeout=5, what="#alerts")
            alerts_done = time.time()
            wait_until(lambda: _succeeded(db, ops.id), timeout=15, what="#ops after Retry-After")
    first, second = attempts(db, ops.id)
    assert first.status == "failed" and first.response_code == 429
    assert "rate limited by slack, Retry-After 4 s" in first.error
    waited = (second.next_attempt_at - first.next_attempt_at).total_seconds()  # closed rows: when each was made
    assert 3.9 <= waited < 6, waited  # the Retry-After, not the route's 1 s first retry
    ops_posted = next(m["at"] for m in w.slack.messages if m["text"] == "ops")
    alerts_posted = next(m["at"] for m in w.slack.messages if m["text"] == "alerts")
    assert ops_posted - alerts_posted > 3 and alerts_done < ops_posted  # #alerts was not held behind #ops
    assert w.slack.core.stats()["by_status"]["429"] == 1
    assert by_recipient(db, ops.id)["C0OPS00001"].status == "delivered"


def test_unknown_outcome_is_not_resent_until_an_operator_says_so(db):
    with world(db) as w:
        route = w.route("slack", to="#ops", template={"text": "once"})
        with db.begin() as conn:  # a short timeout, and a reply that comes after it: the post happened, we cannot know
            ep.update_endpoint(conn, route.id, retry_policy={**POLICIES["slack"], "timeout": 0.5})
        httpx.post(f"{w.slack_url}/_emulator/faults", json={"reply_delay_ms": 1500})
        event_id = _emit(db, w.company_id, order_id="o-2")
        with notifying(w):
            wait_until(lambda: attempts(db, route.id) and attempts(db, route.id)[0].status == "failed", what="attempt closed")
            time.sleep(1.5)  # the route's first retry (1 s) would have gone by now
            assert len(attempts(db, route.id)) == 1  # not retried
            [first] = attempts(db, route.id)
            assert "outcome unknown" in first.error and f"hub notify resend --route {route.id} --event {event_id}" in first.error
            assert [m["text"] for m in w.slack.messages] == ["once"]  # it did arrive: a blind retry would have doubled it
            assert messages(db, route.id)[0].status == "unknown"

            # the operator looked, and decides it must go again (here: the emulator is healthy again)
            httpx.delete(f"{w.slack_url}/_emulator/faults")
            with db.begin() as conn:
                assert resend(conn, route.id, event_id)[0] == 1
            wait_until(lambda: _succeeded(db, route.id), what="resent")
    assert [a.attempt for a in attempts(db, route.id)] == [1, 2]
    assert len(w.slack.messages) == 2 and messages(db, route.id)[0].status == "delivered"


# ---- SendGrid ---------------------------------------------------------------------------------
def test_email_route_sends_template_data_and_applies_delivered_and_bounce(db):
    with world(db) as w:
        route = w.route("email", events=["invoice.status_changed"], to="Ann@Example.com, bounce@example.com",
                        template={"template_id": SG_TEMPLATE})
        w.sendgrid_events_to_hub()
        event_id = _emit(db, w.company_id, "invoice.status_changed", invoice_number="42", status="paid")
        with notifying(w):
            wait_until(lambda: _succeeded(db, route.id), what="delivery recorded")
        [attempt] = attempts(db, route.id)
        sent = {m["personalizations"][0]["to"][0]["email"]: m for m in w.sendgrid.messages}
        assert sorted(sent) == ["ann@example.com", "bounce@example.com"]  # one email each: recipients do not see each other
        for address, mail in sent.items():
            assert mail["template_id"] == SG_TEMPLATE and mail["from"]["email"] == FROM_EMAIL
            personalization = mail["personalizations"][0]
            assert personalization["dynamic_template_data"] == {
                "invoice_number": "42", "status": "paid",
                "event": {"type": "invoice.status_changed", "id": f"evt_{event_id}", "timestamp": _created(db, event_id),
                          "company_id": w.company_id, "description": "an invoice changed status (draft, submitted, authorised, paid, voided, deleted)",
                          "summary": "An invoice changed status (draft, submitted, authorised, paid, voided, deleted) (invoice_number: 42, status: paid)"}}
            assert personalization["custom_args"] == {"hub_message_id": attempt.message_id, "hub_event_id": str(event_id)}
        ledger = by_recipient(db, route.id)
        assert {a: m.provider_message_id for a, m in ledger.items()} == {a: m["x_message_id"] for a, m in sent.items()}

        # SendGrid's signed event webhook -> the hub web app (verified, stored) -> the tracker
        assert w.sendgrid.wait_idle(10)
        wait_until(lambda: _statuses(db, route.id) == {"ann@example.com": "delivered", "bounce@example.com": "bounced"},
                   what="delivery status applied")
    ledger = by_recipient(db, route.id)
    # both reports, oldest first by the provider's time; SendGrid stamps them in seconds, so two of
    # the same second have no order of their own (the webhooks may be applied either way round)
    history = ledger["ann@example.com"].history
    assert sorted(h["event"] for h in history) == ["delivered", "processed"]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    assert ledger["bounce@example.com"].detail.startswith("bounce: 5.1.1")
    with db.connect() as conn:
        left = conn.scalar(sa.select(sa.func.count()).select_from(inbound_event).where(inbound_event.c.processed_at.is_(None)))
        stored = conn.scalar(sa.select(sa.func.count()).select_from(inbound_event))
    assert stored == 4 and left == 0


# ---- Twilio -----------------------------------------------------------------------------------
def test_sms_route_sends_text_with_status_callback_and_applies_delivered_and_undelivered(db):
    with world(db) as w:
        route = w.route("sms", to="+15558675310, +15005559003", template={"body": "Order {{order_id}} is {{status}}"})
        with db.connect() as conn:
            inbound = callbacks.inbound_endpoint_id(conn, w.twilio_id)
        _emit(db, w.company_id, order_id="o-9", status="picked_up")
        with notifying(w):
            wait_until(lambda: _succeeded(db, route.id), what="delivery recorded")
        sent = {m["to"]: m for m in w.twilio.messages.values()}
        assert sorted(sent) == ["+15005559003", "+15558675310"]
        for m in sent.values():
            assert m["body"] == "Order o-9 is picked_up" and m["from"] in (None, FROM_NUMBER) and m["_sender"] == FROM_NUMBER
            assert m["_callback"] == f"{w.hub}/webhooks/twilio/{inbound}"
        assert {a: m.provider_message_id for a, m in by_recipient(db, route.id).items()} == {a: m["sid"] for a, m in sent.items()}

        # Twilio's signed status callbacks -> the hub web app -> the tracker (+15005559003 is undeliverable)
        assert w.twilio.wait_idle(10)
        wait_until(lambda: _statuses(db, route.id) == {"+15558675310": "delivered", "+15005559003": "undelivered"},
                   what="status callbacks applied")
    ledger = by_recipient(db, route.id)
    assert ledger["+15005559003"].detail == "Twilio error 30003"
    # history is in arrival order, and Twilio's "sent" and "delivered" callbacks can arrive either
    # way round (the status above only moves forward, status.RANK): compare as a multiset
    assert sorted(h["event"] for h in ledger["+15558675310"].history) == ["delivered", "sent"]


def test_a_retry_sends_only_to_recipients_not_yet_sent(db):
    with world(db) as w:
        route = w.route("sms", to="+15558675310, +15005550004", template={"body": "hello"})  # ...0004: opted out (21610)
        # and the first of two sends hits Twilio's concurrency limit (20429): not sent, safe to retry
        httpx.post(f"{w.twilio_url}/_emulator/faults", json={"burst_429": 1, "retry_after_s": 1})
        _emit(db, w.company_id, order_id="o-3")
        with notifying(w):
            wait_until(lambda: len(attempts(db, route.id)) == 2 and attempts(db, route.id)[1].status != "pending",
                       timeout=15, what="the retry")
    first, second = attempts(db, route.id)
    assert first.status == "failed" and second.status == "failed" and len(attempts(db, route.id)) == 2
    ledger = by_recipient(db, route.id)
    assert ledger["+15558675310"].status == "accepted"
    assert ledger["+15005550004"].status == "refused" and "21610" in ledger["+15005550004"].detail
    assert sorted(m["to"] for m in w.twilio.messages.values()) == ["+15558675310"]  # texted once, not once per attempt
    assert "refused" in second.error  # the refusal is permanent: no third attempt


def test_the_worker_applies_delivery_status_by_itself(db):
    """`hub notify dispatch`: the dispatcher and the status tracker together, no manual step."""
    with world(db) as w:
        route = w.route("sms", to="+15558675310", template={"body": "Order {{order_id}}"})
        _emit(db, w.company_id, order_id="o-5")
        with notify_worker(w) as tracker:
            wait_until(lambda: [m.status for m in messages(db, route.id)] == ["delivered"], timeout=15, what="delivered")
        # the tracker moved it (nothing else applies reports here); "sent" may arrive after
        # "delivered" and then is only recorded, since a status only moves forward
        assert tracker.applied >= 1
