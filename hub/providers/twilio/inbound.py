"""Twilio's callbacks: how they are verified (scheme `twilio`, registered on the spec as
`inbound.verify`: ``X-Twilio-Signature`` over the URL called and the POST parameters), and
what a status callback says about an SMS the hub sent: its delivery status, read by
hub/notify/status.py through the spec's `inbound.delivery_status`, and what a callback must
carry to be stored (`check_envelope`, the spec's `inbound.envelope`). The rules every scheme
follows are in hub/inbound/verify.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from pydantic import BaseModel, Field

from hub.inbound.verify import (
    Context,
    InboundRequest,
    VerificationError,
    decode_base64,
    digest_length,
    matches_any,
    require_header,
    utf8_secret,
)
from hub.notify.status_report import StatusReport

# Twilio's MessageStatus -> our message statuses
STATUS = {"accepted": "accepted", "queued": "accepted", "sending": "accepted", "sent": "sent", "delivered": "delivered",
          "read": "delivered", "undelivered": "undelivered", "failed": "failed"}


class StatusCallback(BaseModel):
    """A message status callback: the form fields the hub keys on (the SID and status make the
    dedupe key, one callback per status); Twilio's other fields pass."""

    MessageSid: str = Field(min_length=1)
    MessageStatus: str = Field(min_length=1)


def check_envelope(payload: Any) -> None:
    """Raises pydantic's ValidationError (a ValueError) unless the payload is a status callback."""
    StatusCallback.model_validate(payload)


def delivery_status(payload: Any) -> StatusReport | None:
    """The report of one callback (matched by MessageSid), or None when it is not one."""
    if not isinstance(payload, dict) or not payload.get("MessageSid") or not payload.get("MessageStatus"):
        return None
    event = str(payload["MessageStatus"])
    detail = f"Twilio error {payload['ErrorCode']}" if payload.get("ErrorCode") else None
    return StatusReport(STATUS.get(event), event, payload.get("To"), str(payload["MessageSid"]), None, detail, None)


# ---- verification ----------------------------------------------------------------------------


def _digest(auth_token: str, url: str, params: Mapping[str, str | list[str]] | None) -> bytes:
    """HMAC-SHA1 of the URL followed by ``name + value`` for each parameter.

    Names are sorted, and the values of a repeated name are sorted too (Twilio's own
    validator does the same; the duplicate-parameter vector depends on it).
    """
    text = url
    for name in sorted(params or {}):
        values = params[name]  # type: ignore[index]
        if isinstance(values, str):
            values = [values]
        for value in sorted(values):
            text += name + value
    return hmac.new(utf8_secret(auth_token), text.encode("utf-8"), hashlib.sha1).digest()


def sign_twilio(auth_token: str, url: str, params: Mapping[str, str | list[str]] | None = None) -> str:
    """The ``X-Twilio-Signature`` value (base64 HMAC-SHA1) for a URL and POST parameters."""
    return base64.b64encode(_digest(auth_token, url, params)).decode("ascii")


_DEFAULT_PORTS = {"https": "443", "http": "80"}


def _urls(url: str) -> list[str]:
    """The URL as given plus the variant with the default port added or removed.

    Twilio sometimes signs ``https://host/...`` and sometimes ``https://host:443/...`` for
    the same endpoint, so both are tried. Only the scheme's default port (443/80) is
    added or removed: a non-default port names a different endpoint, so unlike
    twilio-python (which strips any port) we do not drop it.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.netloc:
        return [url]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: the port comes after the bracket
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
    else:
        host, sep, port_text = hostport.rpartition(":")
        if not sep:
            host, port = hostport, None
        else:
            port = port_text
    if port is None:
        new_hostport = f"{host}:{default}"
    elif port == default:
        new_hostport = host
    else:
        return [url]
    # Replace the authority in place rather than re-assembling the URL, which could
    # normalise the rest of it (an empty "?" or "#") and change the signed string.
    marker = "//" + parts.netloc
    return [url, url.replace(marker, "//" + userinfo + at + new_hostport, 1)]


def _form_params(request: InboundRequest) -> dict[str, list[str]]:
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("malformed_signature", "Twilio form body is not valid UTF-8 form data") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """Twilio: ``X-Twilio-Signature``, base64 HMAC-SHA1 of URL + sorted POST parameters.

    Twilio signs decoded form parameters, not the raw body, so the body is parsed as form
    data. JSON bodies are not form data: Twilio then puts ``bodySHA256=<hex sha256(body)>``
    in the URL (which is signed) and signs with no parameters; the hash must equal the
    SHA-256 of the exact raw body. A non-form body without ``bodySHA256`` is refused,
    since nothing would cover its bytes. There is no timestamp: replays are caught by
    deduplication on the message/call SID, not here.
    """
    header = require_header(request, "X-Twilio-Signature")
    candidate = digest_length(decode_base64(header, "X-Twilio-Signature"), 20, "X-Twilio-Signature")
    if not request.url:
        raise ValueError("Twilio verification needs the full public URL the provider called")

    body_hashes = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get("bodySHA256")
    params: Mapping[str, list[str]] | None
    if body_hashes is not None:
        if len(body_hashes) != 1:
            raise VerificationError("malformed_signature", "URL must carry exactly one bodySHA256")
        body_ok = hmac.compare_digest(
            hashlib.sha256(request.body).hexdigest().encode("ascii"), body_hashes[0].encode("utf-8")
        )
        params = None
    else:
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if request.body and media_type and media_type != "application/x-www-form-urlencoded":
            raise VerificationError(
                "malformed_signature", "Twilio request with a non-form body has no bodySHA256 in its URL"
            )
        body_ok = True
        params = _form_params(request)

    expected = [_digest(secret, url, params) for url in _urls(request.url)]
    signature_ok = matches_any([candidate], expected)
    if not (signature_ok and body_ok):
        raise VerificationError("bad_signature", "X-Twilio-Signature or bodySHA256 does not match")
