"""How a Slack request is verified (scheme `slack`, registered on the spec as
`inbound.verify`): ``X-Slack-Signature`` (``v0=`` hex HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the app's signing secret) and ``X-Slack-Request-Timestamp``
within 300 s. The rules every scheme follows are in hub/inbound/verify.py."""

from __future__ import annotations

import hmac

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
