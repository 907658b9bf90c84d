"""What the webhooks settings page asks of hub/outbound: every change scoped by company,
a test event to one endpoint through the real dispatcher, replay of one delivery, the
secret's rotation times, the destination check at save time, and the retry schedule as a
person writes it (max attempts, waits) used by the dispatcher."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.outbound import endpoints as ep
from hub.outbound import ssrf
from hub.outbound.policy import DeliveryPolicy, format_duration, parse_duration, schedule_for
from hub.outbound.ssrf import AddressPolicy
from hub.schema import outbox_event, webhook_delivery, webhook_endpoint
from tests.test_outbound_support import FAST, LOOPBACK, Reply, attempts, company, endpoint, endpoint_row, receiver, running, wait_until


@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _rows(engine):
    with engine.connect() as conn:
        return ([tuple(r) for r in conn.execute(sa.select(webhook_endpoint).order_by(webhook_endpoint.c.id))],
                [tuple(r) for r in conn.execute(sa.select(webhook_delivery).order_by(webhook_delivery.c.id))],
                conn.scalar(sa.select(sa.func.count()).select_from(outbox_event)))


def test_another_companys_endpoint_is_not_found_by_any_change_and_nothing_changes(db):
    acme, bella = company(db, "Acme"), company(db, "Bella")
    bella_endpoint, _ = endpoint(db, bella, "http://127.0.0.1:9/hook")
    before = _rows(db)
    keyring = Keyring.from_env()
    changes = [
        lambda c: ep.get_endpoint(c, bella_endpoint, company_id=acme),
        lambda c: ep.update_endpoint(c, bella_endpoint, name="mine now", company_id=acme),
        lambda c: ep.rotate_secret(c, keyring, bella_endpoint, company_id=acme),
        lambda c: ep.set_active(c, bella_endpoint, False, company_id=acme),
        lambda c: ep.delete_endpoint(c, bella_endpoint, company_id=acme),
        lambda c: ep.send_test(c, bella_endpoint, company_id=acme),
        lambda c: ep.replay_delivery(c, bella_endpoint, 1, company_id=acme),
    ]
    for change in changes:
        with pytest.raises(NotFoundError), db.begin() as conn:
            change(conn)
    assert _rows(db) == before
    with db.begin() as conn:  # control: with its own company the same call works
        assert ep.update_endpoint(conn, bella_endpoint, name="renamed", company_id=bella).name == "renamed"


def test_rotation_keeps_its_times_in_plain_columns(db):
    acme = company(db)
    endpoint_id, _ = endpoint(db, acme, "http://127.0.0.1:9/hook")
    assert endpoint_row(db, endpoint_id).secret_rotated_at is None
    with db.begin() as conn:
        _, until = ep.rotate_secret(conn, Keyring.from_env(), endpoint_id, 3600, company_id=acme)
    row = endpoint_row(db, endpoint_id)
    assert row.secret_rotated_at is not None
    assert abs(row.previous_secret_until.timestamp() - until) < 1
    with db.begin() as conn:
        _, until = ep.rotate_secret(conn, Keyring.from_env(), endpoint_id, 0)
    assert until is None and endpoint_row(db, endpoint_id).previous_secret_until is None


def test_a_test_event_reaches_that_endpoint_only_signed_through_the_dispatcher(db):
    acme = company(db)
    with receiver() as r:
        target, secret = endpoint(db, acme, r.url + "/target", events=["order.status_changed"])
        other, _ = endpoint(db, acme, r.url + "/other", events=["*"], name="other")
        with db.begin() as conn:
            event_id = ep.send_test(conn, target, company_id=acme)
        with running(db):
            wait_until(lambda: attempts(db, target) and attempts(db, target)[0].status == "succeeded", what="test delivered")
            time.sleep(0.5)  # time for a wrong fan-out to reach the other endpoint
        body = Webhook(secret).verify(r.on("/target")[0].body, r.on("/target")[0].headers)
        assert body["type"] == "webhook.test" and body["id"] == f"evt_{event_id}" and body["data"]["endpoint_id"] == target
        assert r.on("/other") == [] and attempts(db, other) == []


def test_a_disabled_endpoint_gets_no_test_and_no_replay(db):
    acme = company(db)
    endpoint_id, _ = endpoint(db, acme, "http://127.0.0.1:9/hook")
    with db.begin() as conn:
        ep.send_test(conn, endpoint_id)
        conn.execute(sa.update(webhook_delivery).values(status="failed", next_attempt_at=sa.func.now()))
        ep.set_active(conn, endpoint_id, False)
    before = _rows(db)
    for call in (lambda c: ep.send_test(c, endpoint_id), lambda c: ep.replay_delivery(c, endpoint_id, 1)):
        with pytest.raises(ValidationError, match="disabled"), db.begin() as conn:
            call(conn)
    assert _rows(db) == before


def test_replaying_one_delivery_sends_the_same_webhook_id_again(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/hook"] = lambda n: Reply(503) if n == 1 else Reply(200)
        endpoint_id, _ = endpoint(db, acme, r.url + "/hook", retry_policy={"schedule": [], "jitter": 0.0, "timeout": 2.0})
        with db.begin() as conn:
            event_id = ep.send_test(conn, endpoint_id)
        with running(db):
            wait_until(lambda: attempts(db, endpoint_id) and attempts(db, endpoint_id)[0].status == "failed", what="failure")
            with db.begin() as conn:
                assert ep.replay_delivery(conn, endpoint_id, event_id, company_id=acme) == 2
                with pytest.raises(ValidationError, match="still pending"):  # one at a time
                    ep.replay_delivery(conn, endpoint_id, event_id)
            wait_until(lambda: len(attempts(db, endpoint_id)) == 2 and attempts(db, endpoint_id)[1].status == "succeeded",
                       what="replayed attempt")
        first, second = r.on("/hook")
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == attempts(db, endpoint_id)[0].message_id
    with pytest.raises(NotFoundError), db.begin() as conn:  # an event this endpoint never got
        ep.replay_delivery(conn, endpoint_id, event_id + 1000)


def test_an_edited_schedule_is_what_the_dispatcher_follows(db):
    acme = company(db)
    policy = {**FAST, "schedule": schedule_for(3, [0.2])}
    with receiver() as r:
        r.rules["/hook"] = Reply(500)
        endpoint_id, _ = endpoint(db, acme, r.url + "/hook")
        with db.begin() as conn:
            ep.update_endpoint(conn, endpoint_id, retry_policy=policy, company_id=acme)
            ep.send_test(conn, endpoint_id)
        with running(db):
            wait_until(lambda: len(attempts(db, endpoint_id)) == 3 and attempts(db, endpoint_id)[2].status == "failed",
                       what="three attempts")
            time.sleep(0.6)  # a fourth would be due by now
        assert [a.status for a in attempts(db, endpoint_id)] == ["failed"] * 3 and len(r.on("/hook")) == 3


def test_names_are_unique_per_company_on_rename_too(db):
    acme = company(db)
    first, _ = endpoint(db, acme, "http://127.0.0.1:9/a", name="a")
    endpoint(db, acme, "http://127.0.0.1:9/b", name="b")
    with pytest.raises(ValidationError, match="already has an endpoint named 'b'"), db.begin() as conn:
        ep.update_endpoint(conn, first, name="b")
    assert endpoint_row(db, first).name == "a"


def test_the_destination_check_resolves_names_against_the_ssrf_policy(monkeypatch):
    nobody = AddressPolicy()
    with pytest.raises(ValidationError, match=r"localhost resolves to 127\.0\.0\.1 \(loopback\)"):
        ep.check_destination("http://localhost:8080/hook", nobody)
    assert ep.check_destination("http://localhost:8080/hook", LOOPBACK) is None
    with pytest.raises(ValidationError, match=r"169\.254\.169\.254 \(a cloud metadata address\)"):
        ep.check_destination("http://169.254.169.254/latest/meta-data", LOOPBACK)
    monkeypatch.setattr(ssrf, "resolve_now", lambda host, port: [ssrf.ipaddress.ip_address("10.1.2.3")])
    with pytest.raises(ValidationError, match=r"intranet\.example resolves to 10\.1\.2\.3 \(private\)"):
        ep.check_destination("https://intranet.example/hook", nobody)
    monkeypatch.setattr(ssrf, "resolve_now", lambda host, port: [ssrf.ipaddress.ip_address("93.184.215.14")])
    assert ep.check_destination("https://public.example/hook", nobody) is None
    monkeypatch.setattr(ssrf, "resolve_now", lambda host, port: [])
    assert "does not resolve" in ep.check_destination("https://gone.example/hook", nobody)
    with pytest.raises(ValidationError, match="http:// or https://"):
        ep.check_destination("ftp://public.example/", nobody)


@pytest.mark.parametrize("text, seconds", [("30", 30), ("30s", 30), ("5m", 300), ("5 min", 300), ("2h", 7200), ("1d", 86400),
                                           ("250ms", 0.25), ("1.5s", 1.5)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 weeks", "-5s", "5s5m"])
def test_durations_that_are_not_are_refused(text):
    with pytest.raises(ValidationError, match="not a duration"):
        parse_duration(text)


def test_max_attempts_and_waits_make_the_schedule():
    assert schedule_for(8, [5, 300, 1800]) == [5, 300, 1800, 1800, 1800, 1800, 1800]
    assert schedule_for(1, []) == []
    assert DeliveryPolicy.from_json({"schedule": schedule_for(4, [1])}).max_attempts == 4
    for attempts_, waits, message in ((0, [], "1..21"), (22, [1], "1..21"), (3, [], "give the wait"),
                                      (2, [1, 2], "2 waits given for 2 attempts"), (1, [5], "no retry")):
        with pytest.raises(ValidationError, match=message):
            schedule_for(attempts_, waits)
    with pytest.raises(ValidationError, match="each 0..604800"):  # the policy's own limits still apply
        DeliveryPolicy.from_json({"schedule": schedule_for(2, [8 * 86400])})
