"""The Slack, SendGrid and Twilio clients against their emulators over real HTTP: the calls the
notification router needs, errors classified into the taxonomy (Slack's `ok: false` on HTTP
200 read from the body), rate limits honoured (Retry-After, SendGrid's X-RateLimit-Reset,
Twilio's 20429), connect.py's static-bearer and Basic auth, and no secret in logs or reprs."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from emulators import sendgrid as sg_emulator
from emulators import slack as slack_emulator
from emulators import twilio as tw_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.sendgrid import client as sendgrid
from hub.providers.slack import client as slack
from hub.providers.twilio import client as twilio
from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    QuotaExhausted,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    TransientProblem,
)
from hub.providers.ratebudget import RateBudget
from hub.providers.transport import Transport
from tests.providers.conftest import FAST

pytestmark = pytest.mark.timeout(60)

SLACK_TOKEN, SG_KEY = slack_emulator.DEFAULT_BOT_TOKEN, sg_emulator.DEFAULT_API_KEY
SID, TOKEN = tw_emulator.DEFAULT_ACCOUNT_SID, tw_emulator.DEFAULT_AUTH_TOKEN
FROM_EMAIL, FROM_NUMBER = "noreply@acme-builders.example", "+15005550006"


def bearer_transport(dialect, base: str, token: str, retry=FAST) -> Transport:
    return Transport(dialect=dialect, base_url=base, budget=RateBudget(dialect.name, (), max_wait_s=5.0),
                     bearer_factory=lambda: token, retry=retry)


def basic_transport(base: str, sid: str = SID, token: str = TOKEN, retry=FAST) -> Transport:
    return Transport(dialect=twilio.TwilioDialect(), base_url=base, budget=RateBudget("twilio", (), max_wait_s=5.0), retry=retry,
                     http=httpx.Client(auth=httpx.BasicAuth(sid, token), timeout=5.0))


@pytest.fixture
def served():
    """`served(emulator)` -> base URL, until the test ends."""
    contexts = []

    def start(emulator) -> str:
        context = serve(emulator.app)
        contexts.append((context, emulator))
        return context.__enter__()

    yield start
    for context, emulator in reversed(contexts):
        if hasattr(emulator, "close"):
            emulator.close()
        context.__exit__(None, None, None)


# ---- Slack ----------------------------------------------------------------------------------------
@pytest.fixture
def slack_client(served):
    emulator = slack_emulator.create_emulator()
    base = served(emulator)
    client = slack.SlackClient(bearer_transport(slack.SlackDialect(), base, SLACK_TOKEN), default_channel="#ops")
    yield emulator, base, client
    client.transport.close()


def test_slack_post_message_channels_and_check(slack_client):
    emulator, base, client = slack_client
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Invoice 42* is paid"}}]
    posted = client.post_message(text="Invoice 42 is paid", blocks=blocks)  # the default channel
    assert posted["channel"] == "C0OPS00001" and posted["ts"]
    assert client.post_message("C0ALERTS01", "Budget alert")["channel"] == "C0ALERTS01"
    assert [(m["channel_name"], m["text"], m["blocks"]) for m in emulator.messages] == [
        ("ops", "Invoice 42 is paid", blocks), ("alerts", "Budget alert", None)]
    channels = client.channels(page_size=2)  # three pages
    assert [c["name"] for c in channels] == ["general", "ops", "alerts", "random", "leadership"]
    assert next(c for c in channels if c["name"] == "random")["is_member"] is False
    assert client.check() == {"team": "Acme Builders", "team_id": "T0ACME0001", "bot_user": "hubbot",
                              "default_channel": "#ops", "default_channel_id": "C0OPS00001", "bot_in_channel": True}
    with pytest.raises(ValueError):
        client.post_message("#ops")  # neither text nor blocks: refused before any call
    with pytest.raises(ValueError):
        client.post_message("#ops", blocks=[{"text": "no type"}])


@pytest.mark.parametrize("channel, kind, code", [
    ("#nope", ConfigurationProblem, "channel_not_found"),
    ("#random", ConfigurationProblem, "not_in_channel"),
    ("#old-announcements", ConfigurationProblem, "is_archived"),
])
def test_slack_channel_errors_are_configuration(slack_client, channel, kind, code):
    emulator, base, client = slack_client
    with pytest.raises(kind) as raised:
        client.post_message(channel, "x")
    assert raised.value.code == code and raised.value.status == 200
    assert client.transport.retries == 0  # not retried: it will not get better by itself


def test_slack_body_errors(slack_client):
    emulator, base, client = slack_client
    with pytest.raises(RecordProblem) as too_long:
        client.post_message("#ops", "x" * 40_001)
    assert too_long.value.code == "msg_too_long" and "too long" in too_long.value.message
    emulator.revoke_token(SLACK_TOKEN)
    with pytest.raises(NeedsReauthentication) as revoked:
        client.post_message("#ops", "x")
    assert revoked.value.code == "token_revoked" and SLACK_TOKEN not in str(revoked.value)
    wrong = slack.SlackClient(bearer_transport(slack.SlackDialect(), base, "xoxb-wrong"))
    with pytest.raises(NeedsReauthentication) as invalid:
        wrong.check()
    assert invalid.value.code == "invalid_auth"
    missing = slack.SlackClient(bearer_transport(slack.SlackDialect(), base, SLACK_TOKEN), default_channel="#gone")
    emulator.add_token(SLACK_TOKEN)
    with pytest.raises(ConfigurationProblem) as gone:
        missing.check()
    assert gone.value.code == "channel_not_found"


def test_slack_dialect_reads_the_body_of_http_200():
    dialect = slack.SlackDialect()
    def answer(status, body=None, **kw):  # noqa: E306
        return httpx.Response(status, json=body, **kw) if body is not None else httpx.Response(status, **kw)

    assert dialect.classify(answer(200, {"ok": True, "channel": "C1"})) is None
    blocks = dialect.classify(answer(200, {"ok": False, "error": "invalid_blocks",
                                           "response_metadata": {"messages": ["[ERROR] missing required field: type"]}}))
    assert isinstance(blocks, RecordProblem) and "missing required field" in blocks.detail
    assert isinstance(dialect.classify(answer(200, {"ok": False, "error": "missing_scope"})), ConfigurationProblem)
    assert isinstance(dialect.classify(answer(200, {"ok": False, "error": "account_inactive"})), NeedsReauthentication)
    assert isinstance(dialect.classify(answer(200, {"ok": False, "error": "fatal_error"})), TransientProblem)
    assert type(dialect.classify(answer(200, {"ok": False, "error": "something_new"}))) is RecordProblem
    limited = dialect.classify(answer(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"}))
    assert isinstance(limited, RateLimited) and limited.retry_after == 30
    assert dialect.classify(answer(429, content=b"")).retry_after == 1.0  # no header: a second
    assert isinstance(dialect.classify(answer(200, content=b"<html>proxy</html>")), TransientProblem)
    assert isinstance(dialect.classify(answer(503, content=b"")), TransientProblem)


def test_slack_rate_limit_waits_retry_after_then_posts(served):
    emulator = slack_emulator.create_emulator(per_channel_per_s=1.0, burst=1)
    client = slack.SlackClient(bearer_transport(slack.SlackDialect(), served(emulator), SLACK_TOKEN))
    client.post_message("#ops", "first")
    started = time.monotonic()
    client.post_message("#ops", "second")  # 429 + Retry-After: 1, honoured, then posted
    assert time.monotonic() - started >= 0.9
    assert client.transport.retries == 1 and [m["text"] for m in emulator.messages] == ["first", "second"]
    assert emulator.core.stats()["by_status"] == {"200": 2, "429": 1}
    httpx.post(f"{client.transport.base_url}/_emulator/faults", json={"burst_429": 1, "retry_after_s": 600})
    with pytest.raises(QuotaExhausted):  # past the transport's cap: a clear error, not a 10-minute sleep
        client.post_message("#alerts", "later")
    httpx.post(f"{client.transport.base_url}/_emulator/faults", json={"fail_next_5xx": 1})
    assert client.post_message("#alerts", "after a 503")["channel"] == "C0ALERTS01"
    client.transport.close()


# ---- SendGrid --------------------------------------------------------------------------------------
@pytest.fixture
def sg_client(served):
    emulator = sg_emulator.create_emulator(batch_window_s=0.01, deliver_delay_s=0.01)
    base = served(emulator)
    client = sendgrid.SendGridClient(bearer_transport(sendgrid.SendGridDialect(), base, SG_KEY), FROM_EMAIL, from_name="Acme")
    yield emulator, base, client
    client.transport.close()


def test_sendgrid_send_templates_senders_and_check(sg_client):
    emulator, base, client = sg_client
    message_id = client.send("ann@example.com", subject="Invoice 42 paid", content="Paid.", html="<p>Paid.</p>",
                             custom_args={"notification_id": 42}, categories=["invoices"])
    assert len(message_id) == 22
    sent = emulator.messages[-1]
    assert sent["x_message_id"] == message_id and sent["from"] == {"email": FROM_EMAIL, "name": "Acme"}
    assert sent["personalizations"][0]["custom_args"] == {"notification_id": "42"}
    assert [r["email"] for r in sent["recipients"]] == ["ann@example.com"]
    templated = client.send(["bob@example.com", {"email": "cy@example.com", "name": "Cy"}], template_id="d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b",
                            dynamic_data={"invoice_number": "42", "status": "paid"})
    assert templated and emulator.messages[-1]["template_id"] == "d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"
    emulator.add_template("Third", "three")
    templates = client.templates(page_size=1)  # three pages
    assert [(t["name"], t["subject"]) for t in templates] == [
        ("Invoice status changed", "Invoice {{invoice_number}} is {{status}}"), ("Budget alert", "Budget alert for {{project}}"),
        ("Third", "three")]
    assert [(s["from_email"], s["verified"]) for s in client.verified_senders()][:1] == [(FROM_EMAIL, True)]
    assert client.check() == {"verified_senders": 2, "from_email": FROM_EMAIL, "from_verified": True}
    pending = sendgrid.SendGridClient(client.transport, "pending@acme-builders.example")
    assert pending.check()["from_status"] == "verification pending"
    assert client.event_webhook_public_key() == emulator.public_key
    with pytest.raises(ValueError):
        client.send("ann@example.com", subject="no content")


def test_sendgrid_errors(sg_client):
    emulator, base, client = sg_client
    with pytest.raises(RecordProblem) as invalid:
        client.send("not-an-address", subject="s", content="c")
    assert invalid.value.status == 400 and invalid.value.code == "personalizations.0.to.0.email"
    assert "valid address" in invalid.value.message
    with pytest.raises(RecordProblem) as template:
        client.send("a@example.com", template_id="d-nope")
    assert template.value.code == "subject, template_id"  # an unknown template gives no subject either
    with pytest.raises(ConfigurationProblem) as unverified:
        client.send("a@example.com", "pending@acme-builders.example", subject="s", content="c")
    assert unverified.value.status == 403 and "verified sender" in unverified.value.message
    wrong = sendgrid.SendGridClient(bearer_transport(sendgrid.SendGridDialect(), base, "SG.wrong"), FROM_EMAIL)
    with pytest.raises(NeedsReauthentication):
        wrong.verified_senders()
    emulator.add_key("SG.mail-only", ["mail.send"])
    scoped = sendgrid.SendGridClient(bearer_transport(sendgrid.SendGridDialect(), base, "SG.mail-only"), FROM_EMAIL)
    with pytest.raises(ConfigurationProblem) as forbidden:
        scoped.templates()
    assert forbidden.value.message == "access forbidden"
    assert len(emulator.messages) == 0


def test_sendgrid_rate_limit_from_headers(served):
    emulator = sg_emulator.create_emulator(mail_send_limit=1, mail_send_window_s=1.0)
    base = served(emulator)
    first = sendgrid.SendGridClient(bearer_transport(sendgrid.SendGridDialect(), base, SG_KEY), FROM_EMAIL)
    first.send("a@example.com", subject="s", content="c")
    assert first.transport.budget.remaining == {"endpoint": 0}
    started = time.monotonic()
    first.send("a@example.com", subject="s", content="c")  # Remaining 0: the budget waits for the reset, no 429
    assert time.monotonic() - started >= 0.2 and emulator.core.stats()["by_status"] == {"202": 2}
    # another process's budget knows nothing: it gets the 429, which has no Retry-After, and waits for X-RateLimit-Reset
    other = sendgrid.SendGridClient(bearer_transport(sendgrid.SendGridDialect(), base, SG_KEY), FROM_EMAIL)
    other.send("b@example.com", subject="s", content="c")
    assert emulator.core.stats()["by_status"] == {"202": 3, "429": 1} and other.transport.retries == 1
    limited = sendgrid.SendGridDialect().classify(httpx.Response(429, json={"errors": [{"field": None, "message": "too many requests"}]},
                                                                 headers={"X-RateLimit-Reset": str(int(time.time()) + 30)}))
    assert isinstance(limited, RateLimited) and 28 <= limited.retry_after <= 30
    first.transport.close()
    other.transport.close()


# ---- Twilio --------------------------------------------------------------------------------------------
@pytest.fixture
def tw_client(served):
    emulator = tw_emulator.create_emulator(mps=100, send_delay_s=0.01, deliver_delay_s=0.02)
    base = served(emulator)
    client = twilio.TwilioClient(basic_transport(base), SID, FROM_NUMBER)
    yield emulator, base, client
    client.transport.close()


def test_twilio_send_sms_message_numbers_and_check(tw_client):
    emulator, base, client = tw_client
    sent = client.send_sms("+15558675310", "Order 42 is ready", status_callback="http://127.0.0.1:9/cb")
    assert sent["sid"].startswith("SM") and sent["status"] == "queued" and sent["from"] == FROM_NUMBER
    assert emulator.wait_idle(10)
    assert client.message(sent["sid"])["status"] == "delivered"
    emulator.add_number("+14155550199")
    numbers = client.numbers()
    assert [n["phone_number"] for n in numbers] == ["+15005550006", "+14155550100", "+14155550199"] and all(n["sms"] for n in numbers)
    assert client.check() == {"account": "Bella Pizza", "account_status": "active", "phone_numbers": 3,
                              "from_number": FROM_NUMBER, "from_number_sms": True}
    service = twilio.TwilioClient(client.transport, SID, messaging_service_sid=tw_emulator.DEFAULT_SERVICE_SID)
    assert service.send_sms("+15558675310", "via the service")["status"] == "accepted"
    with pytest.raises(ConfigurationProblem):
        twilio.TwilioClient(client.transport, SID, "+19995550000").check()


def test_twilio_errors(tw_client):
    emulator, base, client = tw_client
    with pytest.raises(RecordProblem) as invalid:
        client.send_sms("+15005550001", "x")
    assert (invalid.value.code, invalid.value.status) == ("21211", 400) and "not a valid phone number" in invalid.value.message
    with pytest.raises(RecordProblem) as opted_out:
        client.send_sms("+15005550004", "x")
    assert opted_out.value.code == "21610"
    with pytest.raises(ConfigurationProblem) as not_owned:
        client.send_sms("+15558675310", "x", from_number="+15005550007")
    assert not_owned.value.code == "21606"
    with pytest.raises(RecordNotFound):
        client.message("SM" + "0" * 32)
    wrong = twilio.TwilioClient(basic_transport(base, token="wrong-token"), SID, FROM_NUMBER)
    with pytest.raises(NeedsReauthentication) as refused:
        wrong.send_sms("+15558675310", "x")
    assert refused.value.code == "20003" and wrong.transport.retries == 0
    assert not emulator.messages


def test_twilio_concurrency_limit_is_retried(served):
    emulator = tw_emulator.create_emulator(max_concurrent=1, api_latency_s=0.2)
    base = served(emulator)
    clients = [twilio.TwilioClient(basic_transport(base), SID, FROM_NUMBER) for _ in range(3)]
    results: list = []
    threads = [threading.Thread(target=lambda c=c: results.append(len(c.numbers()))) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == [2, 2, 2]
    assert emulator.core.stats()["by_status"].get("429", 0) >= 1 and sum(c.transport.retries for c in clients) >= 1
    for c in clients:
        c.transport.close()


# ---- connect.py: stored integrations, static bearer and Basic auth, nothing secret shown ---------------
def test_open_client_for_stored_messaging_integrations(clean_db, secret_keys, served, caplog):
    caplog.set_level("DEBUG")
    slack_base = served(slack_emulator.create_emulator())
    sg_base = served(sg_emulator.create_emulator())
    tw_base = served(tw_emulator.create_emulator())
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company = store.create_company(conn, "Acme")
        ids = {
            "slack": store.add_integration(conn, keyring, company_id=company, provider="slack",
                                           config={"default_channel": "#ops", "base_url": slack_base},
                                           credentials={"bot_token": SLACK_TOKEN, "signing_secret": "slack-signing-secret"}, active=True),
            "sendgrid": store.add_integration(conn, keyring, company_id=company, provider="sendgrid",
                                              config={"from_email": FROM_EMAIL, "from_name": "Acme", "base_url": sg_base},
                                              credentials={"api_key": SG_KEY}, active=True),
            "twilio": store.add_integration(conn, keyring, company_id=company, provider="twilio",
                                            config={"from_number": FROM_NUMBER, "base_url": tw_base},
                                            credentials={"account_sid": SID, "auth_token": TOKEN}, active=True),
        }
    assert {"slack", "sendgrid", "twilio"} <= set(registry.with_client())
    summaries = {}
    for provider, integration_id in ids.items():
        client = open_client(clean_db, keyring, integration_id)
        try:
            summaries[provider] = client.check()
            shown = repr(client.transport) + repr(client.transport.__dict__) + repr(vars(client))
            for secret in (SLACK_TOKEN, SG_KEY, TOKEN):
                assert secret not in shown
        finally:
            client.transport.close()
    assert summaries["slack"]["default_channel_id"] == "C0OPS00001"
    assert summaries["sendgrid"]["from_verified"] is True
    assert summaries["twilio"]["from_number_sms"] is True
    sms = open_client(clean_db, keyring, ids["twilio"])
    assert sms.send_sms("+15558675310", "hello")["from"] == FROM_NUMBER
    sms.transport.close()
    email = open_client(clean_db, keyring, ids["sendgrid"])
    assert email.send("ann@example.com", subject="s", content="c") and email.from_name == "Acme"
    email.transport.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/api/auth.test" in logged and "/v3/verified_senders" in logged  # httpx logged the calls...
    for secret in (SLACK_TOKEN, SG_KEY, TOKEN):  # ...and no credential
        assert secret not in logged
