"""How a Slack request is verified (scheme `slack`, registered on the spec as
`inbound.verify`): ``X-Slack-Signature`` (``v0=`` hex HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the app's signing secret) and ``X-Slack-Request-Timestamp``
within 300 s. The rules every scheme follows are in hub/inbound/verify.py. Also what an
Events API delivery must look like to be stored (`check_envelope`, the spec's
`inbound.envelope`), and the answer to Slack's `url_verification` probe (`handshake`)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from hub.inbound.verify import (
    Context,
    InboundRequest,
    VerificationError,
    check_fresh,
    decode_hex,
    digest_length,
    hmac_sha256,
    parse_timestamp,
    require_header,
    utf8_secret,
)

TOLERANCE_S = 300


class _EventCallback(BaseModel):
    type: Literal["event_callback"]
    event_id: str = Field(min_length=1)
    event: dict[str, Any]


class _UrlVerification(BaseModel):
    type: Literal["url_verification"]
    challenge: str = Field(min_length=1)


class _AppRateLimited(BaseModel):
    type: Literal["app_rate_limited"]


# https://api.slack.com/apis/events-api: the three outer types Slack posts to a request URL
_ENVELOPE = TypeAdapter(Annotated[Union[_EventCallback, _UrlVerification, _AppRateLimited], Field(discriminator="type")])


def check_envelope(payload: Any) -> None:
    """Raises pydantic's ValidationError (a ValueError) unless the payload is an Events API
    envelope; an `event_callback` needs its `event_id` (the dedupe key) and `event`."""
    _ENVELOPE.validate_python(payload)


def handshake(payload: Any) -> bytes | None:
    """The challenge to echo for a (verified) `url_verification` request, which Slack sends when
    a request URL is set and which is not an event; None for anything else. Slack takes the
    challenge back as the plain-text body."""
    if isinstance(payload, dict) and payload.get("type") == "url_verification" and isinstance(payload.get("challenge"), str) and payload["challenge"]:
        return payload["challenge"].encode("utf-8")
    return None


def _digest(secret: str, timestamp: int | str, body: bytes) -> bytes:
    return hmac_sha256(utf8_secret(secret), f"v0:{timestamp}:".encode() + body)


def sign_slack(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Slack-Signature`` value: ``v0=<hex>`` of ``v0:{timestamp}:{body}``."""
    return "v0=" + _digest(secret, timestamp, body).hex()


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """Slack: ``X-Slack-Signature: v0=<hex>`` with ``X-Slack-Request-Timestamp``; ±300 s."""
    header = require_header(request, "X-Slack-Signature")
    ts_text = require_header(request, "X-Slack-Request-Timestamp")
    timestamp = parse_timestamp(ts_text, "X-Slack-Request-Timestamp")
    if not header.startswith("v0="):
        raise VerificationError("malformed_signature", "X-Slack-Signature does not start with v0=")
    candidate = digest_length(decode_hex(header[3:], "X-Slack-Signature"), 32, "X-Slack-Signature")
    expected = _digest(secret, ts_text, request.body)
    if not hmac.compare_digest(candidate, expected):
        raise VerificationError("bad_signature", "X-Slack-Signature does not match")
    check_fresh(timestamp, ctx, "X-Slack-Request-Timestamp")
