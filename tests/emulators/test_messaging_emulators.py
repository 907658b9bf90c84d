"""The Slack, SendGrid and Twilio emulators over real HTTP: their wire protocol and errors, rate
limits, the official SDKs (slack_sdk, sendgrid, twilio) talking to them unchanged, and the
signed callbacks they send (SendGrid's ECDSA event webhook, Twilio's X-Twilio-Signature status
callbacks), accepted by hub/inbound/verify.py, by each provider's own verification helper, and
by the hub's webhook receiver end to end; tampered ones refused."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable
from urllib.parse import parse_qsl

import httpx
import pytest
from python_http_client.exceptions import BadRequestsError, ForbiddenError, UnauthorizedError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import Mail
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioSDK

from emulators import sendgrid, slack, twilio
from emulators.registry import MESSAGING, run_all
from emulators.serve import serve
from hub.inbound.verify import InboundRequest, VerificationError, verify
from hub.providers.sendgrid.inbound import sign_sendgrid
from hub.providers.twilio.inbound import sign_twilio

pytestmark = pytest.mark.timeout(60)

SLACK_TOKEN = slack.DEFAULT_BOT_TOKEN
SG_KEY = sendgrid.DEFAULT_API_KEY
SID, TOKEN = twilio.DEFAULT_ACCOUNT_SID, twilio.DEFAULT_AUTH_TOKEN
FROM_EMAIL = "noreply@acme-builders.example"
FROM_NUMBER = "+15005550006"


# ---- a callback receiver ---------------------------------------------------------------------------
class Receiver:
    """Records every POST to /hook/{key} (raw body, headers, the URL called); `fail[key] = N`
    answers the next N with `status`."""

    def __init__(self) -> None:
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.fail: dict[str, int] = defaultdict(int)
        self.status = 500
        self.lock = threading.Lock()

        async def hook(request: Request) -> Response:
            key, body = request.path_params["key"], await request.body()
            with self.lock:
                self.requests[key].append({"headers": dict(request.headers), "body": body, "url": str(request.url),
                                           "at": time.monotonic()})
                if self.fail[key] > 0:
                    self.fail[key] -= 1
                    return Response("boom", status_code=self.status)
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/hook/{key}", hook, methods=["POST"])])

    def got(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests[key])


@pytest.fixture(scope="module")
def receiver():
    rec = Receiver()
    with serve(rec.app) as base:
        rec.base = base
        yield rec


_keys = iter(range(10**6))


def new_key() -> str:
    return f"k{next(_keys)}"


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def running():
    """`running(emulator)` serves it until the test ends; returns its base URL."""
    stack = []

    def start(emulator) -> str:
        context = serve(emulator.app)
        url = context.__enter__()
        stack.append((context, emulator))
        return url

    yield start
    for context, emulator in reversed(stack):
        if hasattr(emulator, "close"):
            emulator.wait_idle(1.0)  # let callbacks in flight finish (a cut request only makes log noise)
            emulator.close()
        context.__exit__(None, None, None)


def test_registry_runs_the_messaging_emulators():
    with run_all(list(MESSAGING), base_port=0) as started:
        for name, (emulator, url) in started.items():
            assert httpx.get(f"{url}/_emulator/health").json()["provider"] == name


# =================================================================================================
# Slack
# =================================================================================================
@pytest.fixture
def slack_api(running):
    emulator = slack.create_emulator()
    base = running(emulator)
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SLACK_TOKEN}"})
    yield emulator, base, http
    http.close()


def test_slack_post_by_id_and_name_and_admin_view(slack_api):
    emulator, base, http = slack_api
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Invoice 42* paid"}}]
    first = http.post("/api/chat.postMessage", json={"channel": "C0OPS00001", "text": "Invoice 42 paid", "blocks": blocks},
                      headers={"Content-Type": "application/json; charset=utf-8"})
    assert first.status_code == 200
    body = first.json()
    assert body["ok"] is True and body["channel"] == "C0OPS00001" and "warning" not in body
    assert body["message"]["text"] == "Invoice 42 paid" and body["message"]["blocks"] == blocks
    assert body["message"]["ts"] == body["ts"] and body["message"]["subtype"] == "bot_message"
    # by name, with or without '#'; a form body carries blocks as a JSON string; the token may be a form argument
    by_name = httpx.post(f"{base}/api/chat.postMessage", data={"token": SLACK_TOKEN, "channel": "#alerts",
                                                               "blocks": '[{"type": "divider"}]'}).json()
    assert by_name["ok"] and by_name["channel"] == "C0ALERTS01"
    assert http.post("/api/chat.postMessage", json={"channel": "general", "text": "hi"}).json()["warning"] == "missing_charset"
    posted = httpx.get(f"{base}/_emulator/messages", params={"channel": "ops"}).json()["messages"]
    assert [(m["channel"], m["text"], m["ts"]) for m in posted] == [("C0OPS00001", "Invoice 42 paid", body["ts"])]
    assert len(httpx.get(f"{base}/_emulator/messages").json()["messages"]) == 3


@pytest.mark.parametrize("payload, error", [
    ({"text": "no channel"}, "channel_not_found"),
    ({"channel": "#nope", "text": "x"}, "channel_not_found"),
    ({"channel": "G0LEADER01", "text": "x"}, None),  # private, the bot is a member
    ({"channel": "#random", "text": "x"}, "not_in_channel"),
    ({"channel": "#old-announcements", "text": "x"}, "is_archived"),
    ({"channel": "#ops"}, "no_text"),
    ({"channel": "#ops", "text": "x" * 40_001}, "msg_too_long"),
    ({"channel": "#ops", "text": "x" * 40_000}, None),
    ({"channel": "#ops", "blocks": {"type": "section"}}, "invalid_blocks_format"),
    ({"channel": "#ops", "blocks": [{"text": "no type"}]}, "invalid_blocks"),
    ({"channel": "#ops", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
    ({"channel": "#ops", "text": "x", "attachments": [{}] * 101}, "too_many_attachments"),
])
def test_slack_post_errors_are_ok_false_on_http_200(slack_api, payload, error):
    emulator, base, http = slack_api
    emulator.buckets.burst = 100  # this test is about validation, not the per-channel limit
    response = http.post("/api/chat.postMessage", json=payload)
    assert response.status_code == 200
    body = response.json()
    if error is None:
        assert body["ok"] is True
    else:
        assert (body["ok"], body["error"]) == (False, error)
        if error == "invalid_blocks":
            assert body["response_metadata"]["messages"][0].startswith("[ERROR] ")


def test_slack_auth_errors(slack_api):
    emulator, base, http = slack_api
    post = lambda **kw: httpx.post(f"{base}/api/chat.postMessage", **kw).json()  # noqa: E731
    assert post(json={"channel": "#ops", "text": "x"})["error"] == "not_authed"
    # a token inside a JSON body is not accepted: JSON requests must use the header
    assert post(json={"channel": "#ops", "text": "x", "token": SLACK_TOKEN})["error"] == "not_authed"
    assert post(json={"channel": "#ops", "text": "x"}, headers={"Authorization": "Bearer xoxb-wrong"})["error"] == "invalid_auth"
    assert httpx.post(f"{base}/_emulator/tokens", json={"token": SLACK_TOKEN, "revoked": True}).json()["ok"]
    assert http.post("/api/auth.test").json() == {"ok": False, "error": "token_revoked"}
    unknown = http.post("/api/users.list")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_method"
    assert http.post("/api/chat.postMessage", content=b"{not json", headers={"Content-Type": "application/json"}).json()["error"] == "invalid_json"


def test_slack_rate_limit_per_channel_with_bursts(running):
    emulator = slack.create_emulator(per_channel_per_s=1.0, burst=3)
    base = running(emulator)
    emulator.clock.advance(0)  # the buckets run on the emulator clock
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SLACK_TOKEN}"})
    statuses = [http.post("/api/chat.postMessage", json={"channel": "#ops", "text": f"m{i}"}) for i in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    refused = statuses[-1]
    assert refused.json() == {"ok": False, "error": "ratelimited"} and refused.headers["Retry-After"] == "1"
    # another channel has its own budget; a refused post does not use the budget up
    assert http.post("/api/chat.postMessage", json={"channel": "#alerts", "text": "other"}).json()["ok"]
    emulator.clock.advance(1.0)
    assert http.post("/api/chat.postMessage", json={"channel": "#ops", "text": "after a second"}).json()["ok"]
    assert http.post("/api/chat.postMessage", json={"channel": "#ops", "text": "too soon"}).status_code == 429
    assert [m["text"] for m in emulator.messages if m["channel_name"] == "ops"] == ["m0", "m1", "m2", "after a second"]
    # the framework's fault injector speaks Slack too
    httpx.post(f"{base}/_emulator/faults", json={"burst_429": 1, "retry_after_s": 7})
    faulted = http.post("/api/auth.test")
    assert (faulted.status_code, faulted.headers["Retry-After"], faulted.json()["error"]) == (429, "7", "ratelimited")
    http.close()


def test_slack_conversations_list_paging_and_filters(slack_api):
    emulator, base, http = slack_api
    assert [c["name"] for c in http.get("/api/conversations.list").json()["channels"]] == \
        ["general", "ops", "alerts", "random", "old-announcements"]
    names, cursor = [], None
    while True:
        params = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/api/conversations.list", params=params).json()
        assert page["ok"] and len(page["channels"]) <= 2
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == ["general", "ops", "alerts", "random", "leadership"]
    one = http.get("/api/conversations.list", params={"limit": 1}).json()["channels"][0]
    assert {"id", "name", "is_private", "is_member", "is_archived", "is_channel", "created"} <= set(one)
    assert http.get("/api/conversations.list", params={"cursor": "bm9wZQ=="}).json()["error"] == "invalid_cursor"
    assert http.get("/api/conversations.list", params={"limit": 0}).json()["error"] == "invalid_limit"
    added = httpx.post(f"{base}/_emulator/channels", json={"name": "#kitchen"}).json()
    assert added["name"] == "kitchen" and http.post("/api/chat.postMessage", json={"channel": added["id"], "text": "x"}).json()["ok"]


def test_slack_sdk_unchanged(running):
    emulator = slack.create_emulator(per_channel_per_s=1.0, burst=1)
    client = WebClient(token=SLACK_TOKEN, base_url=running(emulator) + "/api/")
    who = client.auth_test()
    assert (who["team_id"], who["user_id"], who["bot_id"]) == ("T0ACME0001", "U0HUBBOT01", "B0HUBBOT01")
    sent = client.chat_postMessage(channel="#ops", text="Budget alert", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Budget*"}}])
    assert sent["ok"] and sent["channel"] == "C0OPS00001" and sent.get("warning") is None  # the SDK sends a charset
    with pytest.raises(SlackApiError) as missing:
        client.chat_postMessage(channel="#nope", text="x")
    assert missing.value.response["error"] == "channel_not_found" and missing.value.response.status_code == 200
    with pytest.raises(SlackApiError) as limited:  # burst of 1: the next post to #ops is too soon
        client.chat_postMessage(channel="#ops", text="again")
    assert (limited.value.response.status_code, limited.value.response["error"]) == (429, "ratelimited")
    # the SDK's own 429 handler sleeps Retry-After and retries
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    started = time.monotonic()
    assert client.chat_postMessage(channel="#ops", text="patient")["ok"]
    assert time.monotonic() - started >= 0.5
    pages = list(client.conversations_list(limit=2, types="public_channel,private_channel"))
    assert len(pages) == 3 and sum(len(p["channels"]) for p in pages) == 6
    assert [m["text"] for m in emulator.messages] == ["Budget alert", "patient"]


# =================================================================================================
# SendGrid
# =================================================================================================
def mail(to: Any, **extra: Any) -> dict[str, Any]:
    people = [{"email": to}] if isinstance(to, str) else [{"email": e} for e in to]
    return {"personalizations": [{"to": people}], "from": {"email": FROM_EMAIL}, "subject": "Invoice paid",
            "content": [{"type": "text/plain", "value": "Invoice 42 was paid."}], **extra}


@pytest.fixture
def sg(running, receiver):
    emulator = sendgrid.create_emulator(retry_schedule_s=(0.05, 0.1, 0.2), batch_window_s=0.05, deliver_delay_s=0.25)
    base = running(emulator)
    key = new_key()
    emulator.set_event_webhook(f"{receiver.base}/hook/{key}")
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SG_KEY}"})
    yield emulator, base, http, key
    http.close()


def events_of(receiver: Receiver, key: str) -> list[dict[str, Any]]:
    return [event for request in receiver.got(key) for event in json.loads(request["body"])]


def sg_verify(request: dict[str, Any], public_key: str, body: bytes | None = None) -> None:
    verify("sendgrid", InboundRequest(body=request["body"] if body is None else body, headers=request["headers"]), public_key)


def test_sendgrid_send_then_signed_delivery_events(sg, receiver):
    emulator, base, http, key = sg
    emulator.designate("Late@Example.com", "deferred")
    body = mail(["ann@example.com", "bounce@example.com", "dropped+1@example.com", "late@example.com", "blocked@example.com"],
                custom_args={"notification_id": "n-42"}, categories=["invoices"])
    body["personalizations"][0]["custom_args"] = {"company": "acme"}
    response = http.post("/v3/mail/send", json=body)
    assert response.status_code == 202 and response.content == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    assert all(h in response.headers for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"))
    assert emulator.wait_idle(10)
    events = events_of(receiver, key)
    by_email = defaultdict(list)
    for event in events:
        by_email[event["email"]].append(event["event"])
        assert event["sg_message_id"].startswith(message_id + ".")
        assert (event["notification_id"], event["company"], event["category"]) == ("n-42", "acme", ["invoices"])
        assert isinstance(event["timestamp"], int) and len(event["sg_event_id"]) == 22
    assert dict(by_email) == {"ann@example.com": ["processed", "delivered"], "bounce@example.com": ["processed", "bounce"],
                              "dropped+1@example.com": ["processed", "dropped"], "late@example.com": ["processed", "deferred", "delivered"],
                              "blocked@example.com": ["processed", "bounce"]}
    bounce = next(e for e in events if e["event"] == "bounce" and e["email"] == "bounce@example.com")
    assert (bounce["type"], bounce["status"], bounce["bounce_classification"]) == ("bounce", "5.1.1", "Invalid Address")
    assert next(e for e in events if e["email"] == "blocked@example.com" and e["event"] == "bounce")["type"] == "blocked"
    assert next(e for e in events if e["event"] == "dropped")["reason"] == "Bounced Address"
    assert len({e["sg_event_id"] for e in events}) == len(events)
    requests = receiver.got(key)
    assert len(requests) == 2  # processed (+ dropped) at once, the rest batched after the delivery delay
    for request in requests:
        assert request["body"].endswith(b"]\r\n")
        assert request["headers"]["content-type"] == "application/json"
        sg_verify(request, emulator.public_key)  # the hub's verifier accepts it
        assert EventWebhook(emulator.public_key).verify_signature(  # and so does SendGrid's own helper
            request["body"].decode(), request["headers"]["x-twilio-email-event-webhook-signature"],
            request["headers"]["x-twilio-email-event-webhook-timestamp"])
    # tampered body, replaced timestamp, or another key: refused
    first = requests[0]
    with pytest.raises(VerificationError) as tampered:
        sg_verify(first, emulator.public_key, first["body"].replace(b"processed", b"delivered", 1))
    assert tampered.value.reason == "bad_signature"
    moved = {**first["headers"], "x-twilio-email-event-webhook-timestamp": str(int(first["headers"]["x-twilio-email-event-webhook-timestamp"]) + 1)}
    with pytest.raises(VerificationError):
        verify("sendgrid", InboundRequest(body=first["body"], headers=moved), emulator.public_key)
    with pytest.raises(VerificationError):
        sg_verify(first, sendgrid.public_key_b64(sendgrid.key_from_seed(99)))
    # cross-check: the emulator signs what hub's own sign helper would sign
    ts = int(first["headers"]["x-twilio-email-event-webhook-timestamp"])
    sg_verify({"body": b"[]\r\n", "headers": {"X-Twilio-Email-Event-Webhook-Timestamp": str(ts),
                                              "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(emulator.private_key, ts, b"[]\r\n")}},
              emulator.public_key)
    recorded = httpx.get(f"{base}/_emulator/messages", params={"to": "ann@example.com"}).json()["messages"]
    assert [m["x_message_id"] for m in recorded] == [message_id]


def test_sendgrid_event_webhook_retries_and_signs_each_attempt_anew(sg, receiver):
    emulator, base, http, key = sg
    emulator.deliver_delay_s = 0.6  # the `processed` batch runs through its retries before `delivered` is sent
    receiver.fail[key] = 2
    assert http.post("/v3/mail/send", json=mail("ann@example.com")).status_code == 202
    assert emulator.wait_idle(10)
    requests = receiver.got(key)
    assert len(requests) == 4  # processed: 2 failures + 1 success; delivered: 1
    for request in requests:
        sg_verify(request, emulator.public_key)
    assert [json.loads(r["body"])[0]["event"] for r in requests] == ["processed"] * 3 + ["delivered"]
    assert requests[0]["body"] == requests[2]["body"]  # the same batch, resent
    gaps = [b["at"] - a["at"] for a, b in zip(requests, requests[1:3])]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09  # the schedule: 0.05 s, then 0.1 s
    batches = httpx.get(f"{base}/_emulator/batches").json()
    assert [b["status"] for b in batches["batches"]] == ["delivered", "delivered"]
    assert [a["status"] for a in batches["attempts"]][:3] == [500, 500, 200]
    # a receiver that never answers 2xx: the schedule runs out, the batch is given up
    receiver.fail[key] = 100
    assert http.post("/v3/mail/send", json=mail("bob@example.com")).status_code == 202
    assert emulator.wait_idle(10)
    last = emulator.batches[-1]
    assert (last["status"], last["attempts"]) == ("failed", 4)  # 1 POST + 3 retries
    receiver.fail[key] = 0


def test_sendgrid_validation_auth_and_sender_errors(sg):
    emulator, base, http, key = sg
    def errors(response):  # noqa: E306
        return [(e["field"], e["message"][:30]) for e in response.json()["errors"]]

    bad = http.post("/v3/mail/send", json={"personalizations": [{"to": [{"email": "not-an-address"}]}]})
    assert bad.status_code == 400
    fields = [f for f, _ in errors(bad)]
    assert fields == ["personalizations.0.to.0.email", "from.email", "content", "subject"]
    assert all(e["help"].startswith("http://sendgrid.com/docs/") for e in bad.json()["errors"])
    assert [f for f, _ in errors(http.post("/v3/mail/send", json={**mail("a@x.com"), "personalizations": []}))] == ["personalizations"]
    dup = mail("a@x.com")
    dup["personalizations"][0]["cc"] = [{"email": "A@x.com"}]
    assert errors(http.post("/v3/mail/send", json=dup))[0][0] == "personalizations.0"
    assert errors(http.post("/v3/mail/send", json={**mail("a@x.com"), "template_id": "d-nope"}))[0][0] == "template_id"
    assert errors(http.post("/v3/mail/send", json=mail("a@x.com", custom_args={"order": 42})))[0][0] == "custom_args.order"
    assert http.post("/v3/mail/send", content=b"{oops", headers={"Content-Type": "application/json"}).status_code == 400
    # a dynamic template needs neither content nor subject
    templated = {"personalizations": [{"to": [{"email": "a@x.com"}], "dynamic_template_data": {"invoice_number": "42"}}],
                 "from": {"email": FROM_EMAIL}, "template_id": "d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"}
    assert http.post("/v3/mail/send", json=templated).status_code == 202
    # sender identity not verified -> 403 on the from field
    unverified = http.post("/v3/mail/send", json={**mail("a@x.com"), "from": {"email": "pending@acme-builders.example"}})
    assert unverified.status_code == 403 and unverified.json()["errors"][0]["field"] == "from"
    # keys
    assert httpx.post(f"{base}/v3/mail/send", json=mail("a@x.com")).json() == {"errors": [{"message": "authorization required", "field": None, "help": None}]}
    wrong = httpx.post(f"{base}/v3/mail/send", json=mail("a@x.com"), headers={"Authorization": "Bearer SG.wrong"})
    assert wrong.status_code == 401 and "invalid, expired, or revoked" in wrong.json()["errors"][0]["message"]
    httpx.post(f"{base}/_emulator/keys", json={"key": "SG.read-only", "scopes": ["templates.read"]})
    scoped = httpx.post(f"{base}/v3/mail/send", json=mail("a@x.com"), headers={"Authorization": "Bearer SG.read-only"})
    assert scoped.status_code == 403 and scoped.json()["errors"][0]["message"] == "access forbidden"
    assert httpx.get(f"{base}/v3/scopes", headers={"Authorization": "Bearer SG.read-only"}).json() == {"scopes": ["templates.read"]}
    # sandbox mode validates but sends nothing
    sandbox = http.post("/v3/mail/send", json={**mail("a@x.com"), "mail_settings": {"sandbox_mode": {"enable": True}}})
    assert sandbox.status_code == 200 and "X-Message-Id" not in sandbox.headers
    assert len(emulator.messages) == 1  # only the templated send


def test_sendgrid_rate_limit_headers_and_429(running):
    emulator = sendgrid.create_emulator(mail_send_limit=2, mail_send_window_s=60)
    base = running(emulator)
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SG_KEY}"})
    answers = [http.post("/v3/mail/send", json=mail("a@x.com")) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    limited = answers[-1]
    assert limited.json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert "Retry-After" not in limited.headers
    assert 55 <= int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 61
    assert http.get("/v3/templates", params={"generations": "dynamic", "page_size": 10}).status_code == 200  # its own budget
    emulator.clock.advance(61)
    assert http.post("/v3/mail/send", json=mail("a@x.com")).status_code == 202
    http.close()


def test_sendgrid_templates_senders_and_webhook_settings(sg, receiver):
    emulator, base, http, key = sg
    emulator.add_template("Schedule change", "Schedule changed")
    names, params = [], {"generations": "dynamic", "page_size": 2}
    while True:
        page = http.get("/v3/templates", params=params).json()
        names += [t["name"] for t in page["result"]]
        following = page["_metadata"].get("next")
        if not following:
            break
        params["page_token"] = dict(parse_qsl(following.split("?", 1)[1]))["page_token"]
    assert names == ["Invoice status changed", "Budget alert", "Schedule change"]
    assert [t["generation"] for t in http.get("/v3/templates", params={"page_size": 10}).json()["result"]] == ["legacy"]
    assert http.get("/v3/templates", params={"generations": "dynamic"}).status_code == 400  # page_size is required
    one = http.get("/v3/templates/d-9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d").json()
    assert one["versions"][0]["subject"] == "Budget alert for {{project}}" and one["versions"][0]["active"] == 1
    senders = http.get("/v3/verified_senders").json()["results"]
    assert [(s["from_email"], s["verified"]) for s in senders] == [
        (FROM_EMAIL, True), ("billing@acme-builders.example", True), ("pending@acme-builders.example", False)]
    # the real settings API: the hub can read the verification key and point the webhook at itself
    assert http.get("/v3/user/webhooks/event/settings/signed").json() == {"public_key": emulator.public_key}
    settings = http.patch("/v3/user/webhooks/event/settings", json={"url": f"{receiver.base}/hook/other", "enabled": True}).json()
    assert settings["url"].endswith("/hook/other") and settings["enabled"] and settings["delivered"]
    assert httpx.get(f"{base}/_emulator/event_webhook").json()["url"].endswith("/hook/other")
    # signing switched off: events arrive unsigned (the hub's verifier then refuses them)
    assert http.patch("/v3/user/webhooks/event/settings/signed", json={"enabled": False}).json() == {"public_key": ""}
    assert http.post("/v3/mail/send", json=mail("ann@example.com")).status_code == 202
    assert emulator.wait_idle(10)
    unsigned = receiver.got("other")[0]
    assert "x-twilio-email-event-webhook-signature" not in unsigned["headers"]
    with pytest.raises(VerificationError) as refused:
        sg_verify(unsigned, emulator.public_key)
    assert refused.value.reason == "missing_signature"
    assert sendgrid.create_emulator(seed=0).public_key == emulator.public_key  # stable for one seed


def test_sendgrid_official_sdk_unchanged(sg, receiver):
    emulator, base, http, key = sg
    client = SendGridAPIClient(SG_KEY, host=base)
    message = Mail(from_email=FROM_EMAIL, to_emails="ann@example.com", subject="Invoice paid", plain_text_content="Paid.")
    sent = client.send(message)
    assert sent.status_code == 202 and sent.headers["X-Message-Id"]
    templated = Mail(from_email=FROM_EMAIL, to_emails="bob@example.com")
    templated.template_id = "d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"
    templated.dynamic_template_data = {"invoice_number": "42", "status": "paid"}
    assert client.send(templated).status_code == 202
    assert emulator.messages[-1]["personalizations"][0]["dynamic_template_data"] == {"invoice_number": "42", "status": "paid"}
    templates = client.client.templates.get(query_params={"generations": "dynamic", "page_size": 10})
    assert templates.status_code == 200 and b"Budget alert" in templates.body
    assert client.client.verified_senders.get().status_code == 200
    with pytest.raises(BadRequestsError) as bad:
        client.send(Mail(from_email=FROM_EMAIL, to_emails="x@example.com", subject="no content"))
    assert b'"field":"content"' in bad.value.body
    with pytest.raises(ForbiddenError):
        client.send(Mail(from_email="stranger@elsewhere.example", to_emails="x@example.com", subject="s", plain_text_content="c"))
    with pytest.raises(UnauthorizedError):
        SendGridAPIClient("SG.wrong", host=base).send(message)
    assert emulator.wait_idle(10)
    helper = EventWebhook(emulator.public_key)
    assert all(helper.verify_signature(r["body"].decode(), r["headers"]["x-twilio-email-event-webhook-signature"],
                                       r["headers"]["x-twilio-email-event-webhook-timestamp"]) for r in receiver.got(key))
    assert {e["email"] for e in events_of(receiver, key)} == {"ann@example.com", "bob@example.com"}


# =================================================================================================
# Twilio
# =================================================================================================
@pytest.fixture
def tw(running):
    emulator = twilio.create_emulator(mps=100, send_delay_s=0.02, deliver_delay_s=0.05, callback_retry_delay_s=0.05)
    base = running(emulator)
    http = httpx.Client(base_url=f"{base}/2010-04-01/Accounts/{SID}", auth=(SID, TOKEN))
    yield emulator, base, http
    http.close()


def params_of(request: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(request["body"].decode()))


def tw_verify(request: dict[str, Any], url: str | None = None, body: bytes | None = None, token: str = TOKEN) -> None:
    verify("twilio", InboundRequest(body=request["body"] if body is None else body, headers=request["headers"],
                                    url=url or request["url"], content_type=request["headers"].get("content-type", "")), token)


def test_twilio_send_then_signed_status_callbacks(tw, receiver):
    emulator, base, http = tw
    key = new_key()
    callback = f"{receiver.base}/hook/{key}?integration=7"
    created = http.post("/Messages.json", data={"To": "+15558675310", "From": FROM_NUMBER, "Body": "Order 42 is ready",
                                                "StatusCallback": callback})
    assert created.status_code == 201
    message = created.json()
    assert message["sid"].startswith("SM") and len(message["sid"]) == 34
    assert (message["status"], message["num_segments"], message["direction"], message["date_sent"]) == ("queued", "1", "outbound-api", None)
    assert message["date_created"].endswith("+0000") and message["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{message['sid']}.json"
    assert emulator.wait_idle(10)
    requests = receiver.got(key)
    assert [c["message_status"] for c in emulator.callbacks] == ["sent", "delivered"]  # no callback for `queued`
    requests.sort(key=lambda r: ["sent", "delivered"].index(params_of(r)["MessageStatus"]))  # POSTs may overtake
    assert [params_of(r)["MessageStatus"] for r in requests] == ["sent", "delivered"]
    params = params_of(requests[0])  # the `sent` one
    assert params == {"SmsSid": message["sid"], "SmsStatus": "sent", "MessageStatus": "sent", "To": "+15558675310",
                      "MessageSid": message["sid"], "AccountSid": SID, "From": FROM_NUMBER, "ApiVersion": "2010-04-01"}
    validator = RequestValidator(TOKEN)
    for request in requests:
        assert request["url"] == callback
        assert request["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
        assert request["headers"]["i-twilio-idempotency-token"]
        tw_verify(request)  # the hub's verifier
        assert validator.validate(callback, params_of(request), request["headers"]["x-twilio-signature"])  # Twilio's own
        assert request["headers"]["x-twilio-signature"] == sign_twilio(TOKEN, callback, params_of(request))
    with pytest.raises(VerificationError):
        tw_verify(requests[0], body=requests[0]["body"].replace(b"sent", b"read"))
    with pytest.raises(VerificationError):
        tw_verify(requests[0], url=callback.replace("integration=7", "integration=8"))
    with pytest.raises(VerificationError):
        tw_verify(requests[0], token="another-token")
    fetched = http.get(f"/Messages/{message['sid']}.json").json()
    assert (fetched["status"], fetched["price"], fetched["error_code"]) == ("delivered", "-0.00790", None)
    assert fetched["date_sent"] is not None
    history = [h["status"] for h in emulator.messages[message["sid"]]["_history"]]
    assert history == ["queued", "sent", "delivered"]


@pytest.mark.parametrize("to, statuses, code", [
    (twilio.UNDELIVERED_TO, ["sent", "undelivered"], "30003"),
    (twilio.FAILED_TO, ["failed"], "30008"),
])
def test_twilio_designated_numbers_fail(tw, receiver, to, statuses, code):
    emulator, base, http = tw
    key = new_key()
    sid = http.post("/Messages.json", data={"To": to, "From": FROM_NUMBER, "Body": "x", "StatusCallback": f"{receiver.base}/hook/{key}"}).json()["sid"]
    assert emulator.wait_idle(10)
    requests = receiver.got(key)
    assert [c["message_status"] for c in emulator.callbacks] == statuses
    requests.sort(key=lambda r: statuses.index(params_of(r)["MessageStatus"]))
    assert [params_of(r)["MessageStatus"] for r in requests] == statuses
    assert params_of(requests[-1])["ErrorCode"] == code
    assert all("ErrorCode" not in params_of(r) for r in requests[:-1])
    for request in requests:
        tw_verify(request)
    final = http.get(f"/Messages/{sid}.json").json()
    assert (final["status"], str(final["error_code"])) == (statuses[-1], code)


def test_twilio_messaging_service_starts_accepted(tw, receiver):
    emulator, base, http = tw
    key = new_key()
    created = http.post("/Messages.json", data={"To": "+15558675310", "MessagingServiceSid": twilio.DEFAULT_SERVICE_SID,
                                                "Body": "x", "StatusCallback": f"{receiver.base}/hook/{key}"}).json()
    assert (created["status"], created["from"], created["messaging_service_sid"]) == ("accepted", None, twilio.DEFAULT_SERVICE_SID)
    assert emulator.wait_idle(10)
    requests = receiver.got(key)
    assert [c["message_status"] for c in emulator.callbacks] == ["queued", "sent", "delivered"]
    assert sorted(params_of(r)["MessageStatus"] for r in requests) == ["delivered", "queued", "sent"]
    assert params_of(requests[0])["MessagingServiceSid"] == twilio.DEFAULT_SERVICE_SID
    assert http.get(f"/Messages/{created['sid']}.json").json()["from"] == FROM_NUMBER


@pytest.mark.parametrize("form, status, code", [
    ({"From": FROM_NUMBER, "Body": "x"}, 400, 21604),
    ({"To": "555-1234", "From": FROM_NUMBER, "Body": "x"}, 400, 21211),
    ({"To": "+15005550001", "From": FROM_NUMBER, "Body": "x"}, 400, 21211),
    ({"To": "+15005550004", "From": FROM_NUMBER, "Body": "x"}, 400, 21610),
    ({"To": "+15005550009", "From": FROM_NUMBER, "Body": "x"}, 400, 21614),
    ({"To": "+15558675310", "Body": "x"}, 400, 21603),
    ({"To": "+15558675310", "From": "+15005550007", "Body": "x"}, 400, 21606),
    ({"To": "+15558675310", "From": "+19995550000", "Body": "x"}, 400, 21606),
    ({"To": "+15558675310", "From": "+15005550001", "Body": "x"}, 400, 21212),
    ({"To": "+15558675310", "From": "+15005550008", "Body": "x"}, 400, 21611),
    ({"To": "+15558675310", "MessagingServiceSid": "MG" + "9" * 32, "Body": "x"}, 400, 21701),
    ({"To": "+15558675310", "From": FROM_NUMBER}, 400, 21602),
    ({"To": "+15558675310", "From": FROM_NUMBER, "Body": "x" * 1601}, 400, 21617),
    ({"To": "+15558675310", "From": FROM_NUMBER, "Body": "x", "StatusCallback": "ftp://nope"}, 400, 21609),
])
def test_twilio_send_errors(tw, form, status, code):
    emulator, base, http = tw
    response = http.post("/Messages.json", data=form)
    assert response.status_code == status
    body = response.json()
    assert (body["code"], body["status"], body["more_info"]) == (code, status, f"https://www.twilio.com/docs/errors/{code}")
    assert body["message"]


def test_twilio_auth_and_not_found(tw):
    emulator, base, http = tw
    url = f"{base}/2010-04-01/Accounts/{SID}/Messages.json"
    for auth in (None, (SID, "wrong-token"), ("AC" + "1" * 32, TOKEN)):
        refused = httpx.post(url, data={"To": "+15558675310", "From": FROM_NUMBER, "Body": "x"}, auth=auth)
        assert refused.status_code == 401 and refused.json()["code"] == 20003
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    other = httpx.get(f"{base}/2010-04-01/Accounts/{'AC' + '1' * 32}/Messages.json", auth=(SID, TOKEN))
    assert other.status_code == 401  # another account's path with these credentials
    missing = http.get("/Messages/SM" + "0" * 32 + ".json")
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    assert not emulator.messages


def test_twilio_numbers_paging_and_account(tw):
    emulator, base, http = tw
    emulator.add_number("+14155550199")
    first = http.get("/IncomingPhoneNumbers.json", params={"PageSize": 2}).json()
    assert [n["phone_number"] for n in first["incoming_phone_numbers"]] == ["+15005550006", "+14155550100"]
    assert first["incoming_phone_numbers"][0]["capabilities"]["sms"] is True
    second = httpx.get(base + first["next_page_uri"], auth=(SID, TOKEN)).json()
    assert [n["phone_number"] for n in second["incoming_phone_numbers"]] == ["+14155550199"] and second["next_page_uri"] is None
    only = http.get("/IncomingPhoneNumbers.json", params={"PhoneNumber": "+14155550100"}).json()["incoming_phone_numbers"]
    assert [n["phone_number"] for n in only] == ["+14155550100"]
    account = httpx.get(f"{base}/2010-04-01/Accounts/{SID}.json", auth=(SID, TOKEN)).json()
    assert (account["sid"], account["status"], account["friendly_name"]) == (SID, "active", "Bella Pizza")


def test_twilio_queues_by_sender_throughput_and_overflows(running):
    # slots 0.5 s apart; the third (1.0 s away) still fits the queue, the fourth and fifth (1.5 s)
    # overflow as long as the five requests take under 0.45 s, which a loaded machine allows
    emulator = twilio.create_emulator(mps=2, send_delay_s=0.0, deliver_delay_s=0.01, max_queue_s=1.05)
    base = running(emulator)
    http = httpx.Client(base_url=f"{base}/2010-04-01/Accounts/{SID}", auth=(SID, TOKEN))
    sids = [http.post("/Messages.json", data={"To": "+15558675310", "From": FROM_NUMBER, "Body": f"m{i}"}).json()["sid"] for i in range(5)]
    assert emulator.wait_idle(10)
    queued_at = emulator.messages[sids[0]]["_history"][0]["at"]
    sent_at = [next(h["at"] for h in emulator.messages[sid]["_history"] if h["status"] == "sent") for sid in sids[:3]]
    # one every 0.5 s: the k-th leaves no earlier than its slot, k * 0.5 s after the first was queued
    # (measured from the slots, not between sends: a stalled timer thread sends its backlog back to back)
    assert all(at - queued_at >= 0.5 * k - 0.01 for k, at in enumerate(sent_at))
    final = [http.get(f"/Messages/{sid}.json").json() for sid in sids]
    assert [m["status"] for m in final[:3]] == ["delivered"] * 3
    assert [(m["status"], m["error_code"]) for m in final[3:]] == [("failed", 30001)] * 2  # slot over 1.05 s away
    http.close()


def test_twilio_concurrency_limit_is_20429(running):
    emulator = twilio.create_emulator(max_concurrent=1, api_latency_s=0.3)
    base = running(emulator)

    def get(_):
        return httpx.get(f"{base}/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json", auth=(SID, TOKEN))

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(get, range(2)))
    assert sorted(a.status_code for a in answers) == [200, 429]
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["code"] == 20429 and limited.headers["Twilio-Concurrent-Requests"] == "1"


def test_twilio_callback_retries_follow_connection_overrides(tw, receiver):
    emulator, base, http = tw
    receiver.status = 500
    default, retried = new_key(), new_key()
    receiver.fail[default] = receiver.fail[retried] = 2
    send = lambda url: http.post("/Messages.json", data={"To": twilio.FAILED_TO, "From": FROM_NUMBER, "Body": "x", "StatusCallback": url})  # noqa: E731
    send(f"{receiver.base}/hook/{default}")  # default: a 5xx answer is not retried
    overrides = f"{receiver.base}/hook/{retried}#rc=3&rp=5xx&ct=2000"
    send(overrides)
    with socket_closed_port() as dead_url:
        send(dead_url)  # default rp=ct,rt: an unreachable URL is retried once
        assert emulator.wait_idle(10)
    assert len(receiver.got(default)) == 1
    attempts = receiver.got(retried)
    assert len(attempts) == 3  # two 500s, then 200
    for request in attempts:  # the fragment is not part of the URL called, nor of the signed one
        assert request["url"] == f"{receiver.base}/hook/{retried}"
        tw_verify(request)
    statuses = {c["url"]: (c["status"], c["attempts"]) for c in emulator.callbacks}
    assert statuses[f"{receiver.base}/hook/{default}"] == ("failed", 1)
    assert statuses[f"{receiver.base}/hook/{retried}"] == ("delivered", 3)
    assert statuses[dead_url] == ("failed", 2)


class socket_closed_port:
    """A loopback URL nothing listens on."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{self.port}/hook"

    def __exit__(self, *exc) -> None:
        pass


class EmulatorHttpClient(TwilioHttpClient):
    """twilio-python's documented extension point (a custom HttpClient): the SDK builds
    https://api.twilio.com/... URLs and this client sends them to the emulator instead."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://api.twilio.com", self.base, 1), *args, **kwargs)


def test_twilio_official_sdk_unchanged(tw, receiver):
    emulator, base, http = tw
    client = TwilioSDK(SID, TOKEN, http_client=EmulatorHttpClient(base))
    key = new_key()
    message = client.messages.create(to="+15558675310", from_=FROM_NUMBER, body="Ready for pickup",
                                     status_callback=f"{receiver.base}/hook/{key}")
    assert (message.status, message.num_segments, message.direction) == ("queued", "1", "outbound-api")
    assert emulator.wait_idle(10)
    fetched = client.messages(message.sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None and fetched.price == "-0.00790"
    assert [m.sid for m in client.messages.list(to="+15558675310")] == [message.sid]
    assert [n.phone_number for n in client.incoming_phone_numbers.list(page_size=1)] == list(twilio.DEFAULT_NUMBERS)
    assert client.api.v2010.accounts(SID).fetch().status == "active"
    with pytest.raises(TwilioRestException) as invalid:
        client.messages.create(to="+15005550001", from_=FROM_NUMBER, body="x")
    assert (invalid.value.status, invalid.value.code) == (400, 21211)
    with pytest.raises(TwilioRestException) as refused:
        TwilioSDK(SID, "wrong", http_client=EmulatorHttpClient(base)).messages.create(to="+15558675310", from_=FROM_NUMBER, body="x")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    validator = RequestValidator(TOKEN)
    assert all(validator.validate(r["url"], params_of(r), r["headers"]["x-twilio-signature"]) for r in receiver.got(key))


# =================================================================================================
# end to end: the emulators' callbacks into the hub's webhook receiver (real PostgreSQL)
# =================================================================================================
def test_callbacks_are_accepted_by_the_hub_receiver(clean_db, secret_keys, running):
    from hub import integrations as store
    from hub.crypto import Keyring
    from hub.schema import inbound_event
    from hub.web.app import create_app
    from hub.inbound.provider_endpoints import create_inbound
    from tests.conftest import count

    sg_emulator = sendgrid.create_emulator(batch_window_s=0.02, deliver_delay_s=0.1, retry_schedule_s=(0.05,))
    tw_emulator = twilio.create_emulator(mps=100, send_delay_s=0.01, deliver_delay_s=0.02)
    sg_base, tw_base = running(sg_emulator), running(tw_emulator)
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company = store.create_company(conn, "Acme")
        sg_id = store.add_integration(conn, keyring, company_id=company, provider="sendgrid", config={"from_email": FROM_EMAIL},
                                      credentials={"api_key": SG_KEY, "webhook_public_key": sg_emulator.public_key}, active=True)
        tw_id = store.add_integration(conn, keyring, company_id=company, provider="twilio", config={"from_number": FROM_NUMBER},
                                      credentials={"account_sid": SID, "auth_token": TOKEN}, active=True)
        sg_endpoint, tw_endpoint = create_inbound(conn, keyring, sg_id), create_inbound(conn, keyring, tw_id)
    with serve(create_app(clean_db)) as hub:
        sg_emulator.set_event_webhook(f"{hub}/webhooks/sendgrid/{sg_endpoint}")
        sent = httpx.post(f"{sg_base}/v3/mail/send", json=mail(["ann@example.com", "bounce@example.com"]),
                          headers={"Authorization": f"Bearer {SG_KEY}"})
        assert sent.status_code == 202
        created = httpx.post(f"{tw_base}/2010-04-01/Accounts/{SID}/Messages.json", auth=(SID, TOKEN),
                             data={"To": "+15558675310", "From": FROM_NUMBER, "Body": "x",
                                   "StatusCallback": f"{hub}/webhooks/twilio/{tw_endpoint}"})
        assert created.status_code == 201
        assert sg_emulator.wait_idle(10) and tw_emulator.wait_idle(10)
        assert {b["status"] for b in sg_emulator.batches} == {"delivered"}
        assert [(c["message_status"], c["status"]) for c in tw_emulator.callbacks] == [("sent", "delivered"), ("delivered", "delivered")]
        assert count(clean_db, inbound_event, inbound_event.c.integration_id == sg_id) == 4  # 2 processed, delivered, bounce
        assert count(clean_db, inbound_event, inbound_event.c.integration_id == tw_id) == 2
        # a forged callback (right shape, wrong token) is refused by the receiver
        forged = {"MessageSid": created.json()["sid"], "MessageStatus": "failed"}
        url = f"{hub}/webhooks/twilio/{tw_endpoint}"
        refused = httpx.post(url, data=forged, headers={"X-Twilio-Signature": sign_twilio("not-the-token", url, forged)})
        assert refused.status_code == 401
        assert count(clean_db, inbound_event, inbound_event.c.integration_id == tw_id) == 2
