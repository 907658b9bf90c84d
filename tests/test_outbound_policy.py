"""Units of the outbound side without the database: retry policy, Retry-After, signing
(checked with the `standardwebhooks` reference library), payload shaping."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.errors import ValidationError
from hub.outbound.outbox import EVENT_TYPES
from hub.outbound.payload import PayloadOptions, render
from hub.outbound.policy import DEFAULTS, DeliveryPolicy, parse_retry_after
from hub.outbound.signing import SigningSecrets, generate_standard_secret, standard_headers


def test_default_schedule_is_svix_and_jitter_stays_within_twenty_percent():
    assert DEFAULTS.schedule == (5, 300, 1800, 7200, 18000, 36000, 36000) and DEFAULTS.max_attempts == 8
    rng = random.Random(7)
    for attempt, base in enumerate(DEFAULTS.schedule, start=1):
        delays = [DEFAULTS.next_delay(attempt, rng=rng) for _ in range(500)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert max(delays) - min(delays) > base * 0.3  # it really is jittered, over most of the range
    assert DEFAULTS.next_delay(8) is None and DEFAULTS.next_delay(0) is None  # used up


def test_retry_after_is_clamped_to_the_schedule_and_twice_it():
    policy = DeliveryPolicy.from_json({"schedule": [60, 600]})
    assert policy.next_delay(1, retry_after=90) == 90
    assert policy.next_delay(1, retry_after=5) == 60  # cannot pull a retry earlier
    assert policy.next_delay(1, retry_after=86400) == 120  # nor push it out for a day
    assert policy.next_delay(2, retry_after=0) == 600
    assert policy.next_delay(3, retry_after=10) is None


def test_parse_retry_after_seconds_and_http_date():
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120
    date = email.utils.format_datetime(dt.datetime.fromtimestamp(now + 45, dt.timezone.utc), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(45, abs=1)
    past = email.utils.format_datetime(dt.datetime.fromtimestamp(now - 100, dt.timezone.utc), usegmt=True)
    assert parse_retry_after(past, now) == 0
    for junk in (None, "", "soon", "-5", "1.5", "12 seconds"):
        assert parse_retry_after(junk, now) is None


def test_policy_validation_refuses_typos_and_absurd_values():
    with pytest.raises(ValidationError, match="unknown retry policy key"):
        DeliveryPolicy.from_json({"shedule": [1]})
    for bad in ({"schedule": "5,10"}, {"schedule": [-1]}, {"schedule": [1] * 21}, {"jitter": 2}, {"timeout": 0},
                {"timeout": 600}, {"concurrency": 0}, {"concurrency": True}, {"disable_after_failures": 0}):
        with pytest.raises(ValidationError):
            DeliveryPolicy.from_json(bad)
    policy = DeliveryPolicy.from_json({"schedule": [1, 2], "disable_after_seconds": None})
    assert policy.overrides() == {"schedule": [1.0, 2.0], "disable_after_seconds": None}
    assert DeliveryPolicy.from_json(policy.overrides()) == policy


def _headers(secrets, body=b'{"a":1}', msg_id="msg_abc", ts=None):
    ts = ts or int(dt.datetime.now(dt.timezone.utc).timestamp())
    return standard_headers(secrets, msg_id, ts, body)


def test_signature_verifies_with_the_reference_library():
    secret = generate_standard_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"order.status_changed"}'
    headers = _headers(SigningSecrets(secret), body)
    assert Webhook(secret).verify(body, headers) == {"type": "order.status_changed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_standard_secret()).verify(body, headers)


def test_reference_library_signature_matches_ours_for_the_official_vector():
    secret, msg_id, ts, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    ours = standard_headers(SigningSecrets(secret), msg_id, ts, body)["webhook-signature"]
    theirs = Webhook(secret).sign(msg_id, dt.datetime.fromtimestamp(ts, dt.timezone.utc), body.decode())
    assert ours == theirs == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotation_signs_with_both_until_the_grace_ends():
    old = SigningSecrets(generate_standard_secret())
    now = 1_800_000_000.0
    rotated = old.rotated(3600, now=now)
    assert rotated.previous == old.current and rotated.previous_until == now + 3600
    assert rotated.active(now + 10) == [rotated.current, old.current]
    assert rotated.active(now + 3600) == [rotated.current]
    assert old.rotated(0, now=now).previous is None
    assert SigningSecrets.from_stored(rotated.to_stored()) == rotated
    assert old.current not in repr(rotated) and rotated.current not in str(rotated)
    with pytest.raises(ValueError):
        old.rotated(8 * 86400)


def test_payload_shaping():
    created = dt.datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)
    data = {"order_id": "o-1", "id": 7, "status": "ready", "customer": {"name": "Ann", "phone": "+1555"}}
    full = json.loads(render(5, "order.status_changed", 1, created, data, PayloadOptions()))
    assert full == {"id": "evt_5", "type": "order.status_changed", "timestamp": "2026-11-22T10:00:00.123456Z", "company_id": 1, "data": data}
    picked = json.loads(render(5, "order.status_changed", 1, created, data, PayloadOptions.from_json({"fields": ["status", "customer.name", "absent.x"]})))
    assert picked["data"] == {"status": "ready", "customer": {"name": "Ann"}}
    thin = json.loads(render(5, "order.status_changed", 1, created, data, PayloadOptions.from_json({"mode": "thin"})))
    assert thin["data"] == {"order_id": "o-1", "id": 7}
    for bad in ({"mode": "fat"}, {"mode": "thin", "fields": ["a"]}, {"fields": []}, {"fields": ["a..b"]}, {"extra": 1}):
        with pytest.raises(ValidationError):
            PayloadOptions.from_json(bad)


def test_event_types_are_the_declared_domain_events():
    assert {"order.status_changed", "invoice.status_changed", "budget.alert", "schedule.changed", "task.assigned"} <= set(EVENT_TYPES)
