"""Outbound webhook deliveries end to end: real PostgreSQL, a real HTTP receiver on
loopback, the dispatcher in a background thread. Signatures are checked with the
`standardwebhooks` reference library, not with our own verifier."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.outbound import emit
from hub.outbound import endpoints as ep
from hub.schema import outbox_event, webhook_delivery
from tests.test_outbound_support import (
    FAST,
    Reply,
    attempts,
    company,
    endpoint,
    endpoint_row,
    receiver,
    running,
    wait_until,
)


@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _emit(engine, company_id, event_type="order.status_changed", **payload):
    with engine.begin() as conn:
        return emit(conn, company_id, event_type, payload or {"order_id": "o-1", "status": "ready"})


def _verify(secret: str, seen) -> dict:
    return Webhook(secret).verify(seen.body, seen.headers)


def test_delivery_is_signed_and_verifies_with_the_reference_library(db):
    acme = company(db)
    with receiver() as r:
        endpoint_id, secret = endpoint(db, acme, r.url + "/hook", events=["order.status_changed"])
        event_id = _emit(db, acme, order_id="o-7", status="ready")
        with running(db):
            wait_until(lambda: r.on("/hook"), what="delivery")
            wait_until(lambda: attempts(db, endpoint_id)[0].status == "succeeded", what="recorded success")
    seen = r.on("/hook")[0]
    body = _verify(secret, seen)
    assert body["type"] == "order.status_changed" and body["id"] == f"evt_{event_id}"
    assert body["data"] == {"order_id": "o-7", "status": "ready"}
    assert seen.headers["content-type"] == "application/json"
    row = attempts(db, endpoint_id)[0]
    assert row.message_id == seen.headers["webhook-id"] and row.message_id.startswith("msg_") and "." not in row.message_id
    assert row.response_code == 200 and row.response_body == "ok" and row.duration_ms is not None
    with pytest.raises(WebhookVerificationError):  # a different secret must not verify: the check can fail
        Webhook("whsec_" + "A" * 32).verify(seen.body, seen.headers)
    assert endpoint_row(db, endpoint_id).last_triggered_at is not None


def test_rotation_sends_two_signatures_each_verifiable_with_its_own_secret(db):
    acme = company(db)
    with receiver() as r:
        endpoint_id, old = endpoint(db, acme, r.url + "/hook")
        with db.begin() as conn:
            new, until = ep.rotate_secret(conn, Keyring.from_env(), endpoint_id, grace_s=3600)
        assert new != old and until > time.time() + 3500
        _emit(db, acme)
        with running(db):
            wait_until(lambda: r.on("/hook"), what="delivery")
        seen = r.on("/hook")[0]
        entries = seen.headers["webhook-signature"].split(" ")
        assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
        for secret, entry in ((new, entries[0]), (old, entries[1])):  # current first, then previous
            only = {**seen.headers, "webhook-signature": entry}
            Webhook(secret).verify(seen.body, only)
            with pytest.raises(WebhookVerificationError):
                Webhook(new if secret == old else old).verify(seen.body, only)
        Webhook(old).verify(seen.body, seen.headers)
        Webhook(new).verify(seen.body, seen.headers)

        # grace 0: the old secret stops signing at once
        with db.begin() as conn:
            newest, until = ep.rotate_secret(conn, Keyring.from_env(), endpoint_id, grace_s=0)
        assert until is None
        _emit(db, acme)
        with running(db):
            wait_until(lambda: len(r.on("/hook")) == 2, what="second delivery")
        second = r.on("/hook")[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 1
        Webhook(newest).verify(second.body, second.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(new).verify(second.body, second.headers)


def test_rolled_back_event_is_never_sent(db):
    acme = company(db)
    with receiver() as r:
        endpoint(db, acme, r.url + "/hook")
        with db.connect() as conn:
            tx = conn.begin()
            emit(conn, acme, "invoice.status_changed", {"invoice_id": 1, "status": "paid", "marker": "rolled back"})
            tx.rollback()
        _emit(db, acme, "invoice.status_changed", invoice_id=2, status="paid", marker="committed")
        with running(db):
            wait_until(lambda: r.on("/hook"), what="delivery")
            time.sleep(0.5)  # time enough for a wrongly kept event to go out too
    markers = [json.loads(s.body)["data"]["marker"] for s in r.on("/hook")]
    assert markers == ["committed"]
    with db.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(outbox_event)) == 1


def test_unknown_event_type_and_bad_payload_are_refused(db):
    acme = company(db)
    with db.begin() as conn:
        with pytest.raises(ValidationError, match="unknown event type"):
            emit(conn, acme, "invoice.status_change", {"x": 1})
        with pytest.raises(ValidationError, match="JSON object"):
            emit(conn, acme, "budget.alert", ["not", "an", "object"])
    with pytest.raises(ValidationError, match="unknown event type"):
        endpoint(db, acme, "http://127.0.0.1:9/x", events=["order.status"])


def test_only_subscribed_endpoints_of_the_company_receive(db):
    acme, other = company(db, "Acme"), company(db, "Other")
    with receiver() as r:
        endpoint(db, acme, r.url + "/orders", events=["order.status_changed"], name="orders")
        endpoint(db, acme, r.url + "/budget", events=["budget.alert"], name="budget")
        endpoint(db, other, r.url + "/other", events=["*"], name="other")
        _emit(db, acme, "order.status_changed")
        with running(db):
            wait_until(lambda: r.on("/orders"), what="delivery")
            time.sleep(0.3)
    assert len(r.on("/orders")) == 1 and not r.on("/budget") and not r.on("/other")


def test_payload_options_select_fields_or_send_a_thin_event(db):
    acme = company(db)
    with receiver() as r:
        endpoint(db, acme, r.url + "/full", name="full")
        endpoint(db, acme, r.url + "/fields", name="fields", payload_options={"fields": ["order_id", "customer.city"]})
        endpoint(db, acme, r.url + "/thin", name="thin", payload_options={"mode": "thin"})
        _emit(db, acme, order_id="o-1", status="ready", customer={"name": "Ann", "city": "Oslo"}, total_cents=900)
        with running(db):
            wait_until(lambda: r.on("/full") and r.on("/fields") and r.on("/thin"), what="three deliveries")
    data = {p: json.loads(r.on(p)[0].body)["data"] for p in ("/full", "/fields", "/thin")}
    assert data["/full"]["customer"] == {"name": "Ann", "city": "Oslo"} and data["/full"]["total_cents"] == 900
    assert data["/fields"] == {"order_id": "o-1", "customer": {"city": "Oslo"}}
    assert data["/thin"] == {"order_id": "o-1"}


def test_failures_follow_the_schedule_with_jitter_and_keep_the_webhook_id(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/hook"] = Reply(500, b"boom")
        policy = {"schedule": [0.5, 1.0], "jitter": 0.2, "timeout": 2.0}
        endpoint_id, _ = endpoint(db, acme, r.url + "/hook", retry_policy=policy)
        _emit(db, acme)
        with running(db):
            wait_until(lambda: len([a for a in attempts(db, endpoint_id) if a.status == "failed"]) == 3, timeout=15, what="3 failed attempts")
            time.sleep(0.3)
    rows = attempts(db, endpoint_id)
    assert [a.attempt for a in rows] == [1, 2, 3] and all(a.status == "failed" for a in rows)  # exhausted: no 4th
    assert len({a.message_id for a in rows}) == 1
    assert {s.headers["webhook-id"] for s in r.on("/hook")} == {rows[0].message_id}
    assert rows[0].response_code == 500 and rows[0].response_body == "boom" and rows[0].error == "HTTP 500"
    for previous, following, base in ((rows[0], rows[1], 0.5), (rows[1], rows[2], 1.0)):
        # closed rows keep when they were made in next_attempt_at; the wait runs from the end of the attempt
        gap = (following.next_attempt_at - previous.next_attempt_at).total_seconds() - previous.duration_ms / 1000
        # never before the jittered schedule; late only by the worker's poll and the machine's load
        # (the exact jitter bounds are unit-tested on the policy itself)
        assert base * 0.8 - 0.002 <= gap <= base * 1.2 + 0.6, (base, gap)
    assert endpoint_row(db, endpoint_id).consecutive_failures == 3


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_within_bounds(db, form):
    acme = company(db)
    with receiver() as r:
        def answer(n):
            value = "3" if form == "seconds" else email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3), usegmt=True)
            return Reply(429, b"slow down", {"Retry-After": value}) if n == 1 else Reply(200)

        r.rules["/hook"] = answer
        r.rules["/huge"] = Reply(503, b"", {"Retry-After": "86400"})
        ep_id, _ = endpoint(db, acme, r.url + "/hook", retry_policy={"schedule": [2.0], "jitter": 0.2}, name="hook")
        huge_id, _ = endpoint(db, acme, r.url + "/huge", retry_policy={"schedule": [1.0], "jitter": 0.2}, name="huge")
        _emit(db, acme)
        with running(db):
            wait_until(lambda: len(attempts(db, ep_id)) == 2 and len(attempts(db, huge_id)) == 2, what="retries scheduled")
    first, second = attempts(db, ep_id)
    wait = (second.next_attempt_at - first.next_attempt_at).total_seconds() - first.duration_ms / 1000
    # asked for 3 s: inside [2, 4], not the jittered 2 ± 20 %; an HTTP date has whole seconds
    assert (2.95 <= wait <= 3.05) if form == "seconds" else (2.0 <= wait <= 3.05), wait
    first, second = attempts(db, huge_id)
    wait = (second.next_attempt_at - first.next_attempt_at).total_seconds() - first.duration_ms / 1000
    assert 1.99 <= wait <= 2.01, wait  # a day was asked for: clamped to 2 x the scheduled 1 s


def test_410_disables_the_endpoint_at_once(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/gone"] = Reply(410, b"gone")
        endpoint_id, _ = endpoint(db, acme, r.url + "/gone", retry_policy=FAST)
        _emit(db, acme)
        _emit(db, acme)
        with running(db):
            wait_until(lambda: not endpoint_row(db, endpoint_id).is_active, what="disabled")
            time.sleep(0.6)  # past the retry schedule: nothing more may be sent
        row = endpoint_row(db, endpoint_id)
        assert "410" in row.disabled_reason
        rows = attempts(db, endpoint_id)
        assert all(a.status == "failed" for a in rows) and all(a.attempt == 1 for a in rows)
        assert len(r.on("/gone")) <= 2  # both first attempts may have been in flight together; no retry
        _emit(db, acme)
        with running(db):
            time.sleep(0.5)
        assert len(attempts(db, endpoint_id)) == 2  # a disabled endpoint gets no new delivery


def test_redirects_are_not_followed(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/moved"] = Reply(302, b"", {"Location": r.url + "/target"})
        r.rules["/perm"] = Reply(308, b"", {"Location": r.url + "/target"})
        a, _ = endpoint(db, acme, r.url + "/moved", retry_policy={"schedule": []}, name="a")
        b, _ = endpoint(db, acme, r.url + "/perm", retry_policy={"schedule": []}, name="b")
        _emit(db, acme)
        with running(db):
            wait_until(lambda: attempts(db, a) and attempts(db, a)[0].status == "failed"
                       and attempts(db, b) and attempts(db, b)[0].status == "failed", what="both attempts")
            time.sleep(0.3)
    assert not r.on("/target")
    assert attempts(db, a)[0].response_code == 302 and "not followed" in attempts(db, a)[0].error
    assert attempts(db, b)[0].response_code == 308


def test_timeout_and_capped_response_body(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/slow"] = Reply(200, b"late", delay=3.0)
        r.rules["/big"] = Reply(500, b"x" * 100_000)
        slow, _ = endpoint(db, acme, r.url + "/slow", retry_policy={"schedule": [], "timeout": 0.5}, name="slow")
        big, _ = endpoint(db, acme, r.url + "/big", retry_policy={"schedule": []}, name="big")
        _emit(db, acme)
        with running(db):
            wait_until(lambda: all(attempts(db, e) and attempts(db, e)[0].status == "failed" for e in (slow, big)), what="attempts")
    row = attempts(db, slow)[0]
    assert row.error == "timed out after 0.5 s" and 450 <= row.duration_ms < 1500
    row = attempts(db, big)[0]
    assert len(row.response_body) == 16 * 1024


def test_sustained_failure_auto_disables_then_replay_resends_with_the_same_id(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/down"] = Reply(503, b"down")
        policy = {"schedule": [0.3] * 20, "jitter": 0.0, "disable_after_seconds": 1.0, "disable_after_failures": 3}
        endpoint_id, secret = endpoint(db, acme, r.url + "/down", retry_policy=policy)
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        _emit(db, acme, order_id="o-1", status="ready")
        _emit(db, acme, order_id="o-2", status="ready")
        with running(db):
            wait_until(lambda: not endpoint_row(db, endpoint_id).is_active, timeout=15, what="auto-disable")
            sent_when_disabled = len(r.on("/down"))
            time.sleep(0.8)
            assert len(r.on("/down")) <= sent_when_disabled + 2  # at most what was already in flight
        row = endpoint_row(db, endpoint_id)
        assert row.disabled_reason.startswith("auto-disabled: every attempt failed since")
        rows = attempts(db, endpoint_id)
        assert not [a for a in rows if a.status == "pending"]
        failed_attempts = [a for a in rows if a.error and not a.error.startswith("not sent")]
        first = min(a.next_attempt_at for a in failed_attempts)
        last = max(a.next_attempt_at for a in failed_attempts)
        # 3 failures came within ~0.3 s (two events); the 1 s streak rule, not the count, decided
        assert (last - first).total_seconds() >= 0.65 and len(failed_attempts) >= 3

        # the receiver recovers; an operator enables the endpoint and replays the window
        r.rules["/down"] = Reply(200)
        with db.begin() as conn:
            with pytest.raises(ValidationError, match="disabled"):
                ep.replay(conn, endpoint_id, since)
        with db.begin() as conn:
            ep.set_active(conn, endpoint_id, True)
            assert ep.replay(conn, endpoint_id, since) == 2
            assert ep.replay(conn, endpoint_id, since) == 0  # already pending: not twice
        before = len(r.on("/down"))
        with running(db):
            wait_until(lambda: sum(a.status == "succeeded" for a in attempts(db, endpoint_id)) == 2, what="replayed")
        replayed = r.on("/down")[before:]
        ids = {a.outbox_event_id: a.message_id for a in attempts(db, endpoint_id) if a.attempt == 1}
        assert sorted(s.headers["webhook-id"] for s in replayed) == sorted(ids.values())
        for s in replayed:
            Webhook(secret).verify(s.body, s.headers)
        assert endpoint_row(db, endpoint_id).consecutive_failures == 0


def test_a_success_between_failures_prevents_auto_disable(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/flaky"] = lambda n: Reply(200) if n % 3 == 0 else Reply(500)
        policy = {"schedule": [0.1] * 5, "jitter": 0.0, "disable_after_seconds": 0.5, "disable_after_failures": 3, "concurrency": 1}
        endpoint_id, _ = endpoint(db, acme, r.url + "/flaky", retry_policy=policy)
        for i in range(6):
            _emit(db, acme, order_id=f"o-{i}", status="ready")
        with running(db):
            wait_until(lambda: len(r.on("/flaky")) >= 12 and not [a for a in attempts(db, endpoint_id) if a.status == "pending"],
                       timeout=20, what="all deliveries settled")
    assert endpoint_row(db, endpoint_id).is_active


def test_replay_window_only_touches_that_window_and_endpoint(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/a"] = Reply(500)
        a, _ = endpoint(db, acme, r.url + "/a", retry_policy={"schedule": []}, name="a")
        b, _ = endpoint(db, acme, r.url + "/b", retry_policy={"schedule": []}, name="b")
        old = _emit(db, acme, order_id="old", status="ready")
        with db.begin() as conn:
            conn.execute(sa.update(outbox_event).where(outbox_event.c.id == old).values(created_at=sa.func.now() - sa.text("interval '2 hours'")))
        _emit(db, acme, order_id="new", status="ready")
        with running(db):
            wait_until(lambda: len(attempts(db, a)) == 2 and all(x.status == "failed" for x in attempts(db, a))
                       and len([x for x in attempts(db, b) if x.status == "succeeded"]) == 2, what="first round")
        with db.begin() as conn:
            assert ep.replay(conn, a, dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)) == 1
            assert ep.replay(conn, b, dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)) == 0  # nothing failed there
            with pytest.raises(ValidationError, match="empty"):
                ep.replay(conn, a, dt.datetime.now(dt.timezone.utc), dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
        pending = [x for x in attempts(db, a) if x.status == "pending"]
        assert len(pending) == 1 and pending[0].attempt == 2


def test_replay_missing_sends_events_emitted_while_disabled(db):
    acme = company(db)
    with receiver() as r:
        endpoint_id, _ = endpoint(db, acme, r.url + "/hook")
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        with db.begin() as conn:
            ep.set_active(conn, endpoint_id, False, "maintenance")
        _emit(db, acme)
        with running(db):
            wait_until(lambda: _dispatched(db), what="fan-out")
            time.sleep(0.2)
            assert not r.on("/hook")
            with db.begin() as conn:
                ep.set_active(conn, endpoint_id, True)
                assert ep.replay(conn, endpoint_id, since, include_missing=True) == 1
            wait_until(lambda: r.on("/hook"), what="missed event delivered")


def _dispatched(engine) -> bool:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(outbox_event).where(outbox_event.c.dispatched_at.is_(None))) == 0


def test_secret_is_encrypted_at_rest_and_masked(db):
    acme = company(db)
    endpoint_id, secret = endpoint(db, acme, "http://127.0.0.1:9/hook")
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT secret::text FROM webhook_endpoint WHERE id = :i"), {"i": endpoint_id}).scalar()
        loaded = ep.get_endpoint(conn, endpoint_id, Keyring.from_env())
    assert secret not in stored and secret[6:] not in stored
    assert loaded.secrets.current == secret
    assert secret not in repr(loaded) and secret not in repr(loaded.secrets) and secret not in str(loaded.secrets)
    assert loaded.secrets.masked().endswith(secret[-4:])


def test_delivery_rows_are_unique_per_attempt(db):
    acme = company(db)
    with receiver() as r:
        endpoint_id, _ = endpoint(db, acme, r.url + "/hook")
        for i in range(20):
            _emit(db, acme, order_id=f"o-{i}", status="ready")
        with running(db):
            wait_until(lambda: len([a for a in attempts(db, endpoint_id) if a.status == "succeeded"]) == 20, what="20 deliveries")
    with db.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(webhook_delivery)) == 20
    assert len({s.headers["webhook-id"] for s in r.on("/hook")}) == 20 == len(r.on("/hook"))
