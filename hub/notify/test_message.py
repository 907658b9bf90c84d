"""A test message to one Slack channel, sent now, for the settings page's "Send test
message" button: the sample `webhook.test` event rendered by render.py and posted by the
Slack client exactly as the notification sender posts a route's message (one attempt, no
transport retries: a post is not idempotent), its failure classified by the sender's
`classify`.

Why not an event through the outbox (`hub notify test`): every route subscribes to
`webhook.test`, so an emitted event reaches every channel, email and phone of the company;
the button must reach the one channel a person picked, and show the outcome on the page
at once instead of in the delivery log a moment later.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub.crypto import Keyring
from hub.notify import render, samples
from hub.notify.sender import SEND_RETRY, classify
from hub.providers.connect import open_client
from hub.providers.slack.client import NAME, SlackClient

__all__ = ["TestResult", "post_test"]

TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class TestResult:
    ok: bool
    text: str  # what happened, safe to show (no token, no URL)
    channel: str | None = None  # Slack's channel id
    ts: str | None = None  # the posted message's ts


def post_test(engine: Engine, keyring: Keyring, integration_id: int, company_id: int, channel: str) -> TestResult:
    """Post the test event to `channel` (an id or a name) with the default formatting."""
    ctx = samples.sample_context(TEST_EVENT, company_id)
    text, blocks = render.slack_message({}, ctx)
    try:
        client: SlackClient = open_client(engine, keyring, integration_id, retry=SEND_RETRY)
    except Exception as exc:  # no client: nothing was sent
        _status, detail, _wait, _code = classify(exc, NAME)
        return TestResult(False, f"not sent: {detail}")
    try:
        posted = client.post_message(channel, text=text, blocks=blocks)
    except Exception as exc:
        status, detail, _wait, _code = classify(exc, NAME)
        return TestResult(False, f"{status.replace('_', ' ')}: {detail}")
    finally:
        client.transport.close()
    return TestResult(True, f"posted to {posted.get('channel')} (ts {posted.get('ts')})", posted.get("channel"), posted.get("ts"))
