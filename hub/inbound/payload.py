"""From a verified webhook body to what is stored, or to the reason it cannot be: the one
place that decides what a body a retry can never fix gets (issue 15 item 9).

The rule: a stray character never loses an event, anything else that cannot be stored is
refused (`Refused`, a 4xx the receiver answers and keeps as a dead letter,
hub/inbound/dead_letters.py), and 503 stays for what a retry can fix (the database).

- Text PostgreSQL refuses is made storable, and the exact body is kept beside it as bytes
  (`inbound_event.raw_body`): a NUL (`\\u0000`, which jsonb and text refuse), a lone
  surrogate (`\\ud800`, which jsonb refuses), bytes that are not UTF-8 inside a string, each
  become U+FFFD; a UTF-8 byte order mark (Python reads past it, jsonb does not) is dropped.
  A DoorDash order whose special instructions hold a NUL is an order.
- Refused, as `not_json`: JSON that is not (RFC 8259 has no NaN or Infinity, which jsonb
  refuses too), a number beyond a double (1e400: Python reads it as infinity, unstorable) or
  an integer of more than Python's 4,300 digits; `too_deep`: nesting beyond MAX_DEPTH (a
  body 100,000 levels deep raised RecursionError); `not_envelope`/`bad_id`: what
  hub.inbound.events.parse refuses (not the provider's event shape; an event or order id
  that is not a short string or integer, hub.inbound.events.MAX_KEY).

Checks cost little on an ordinary body (about 5 µs on a 1 KB order): the walk that makes text storable and measures
depth runs only when the bytes can hold a NUL or a surrogate (escaped, or encoded as
Python's decoder accepts: ED A0..BF), are not UTF-8, or hold more brackets than MAX_DEPTH.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from hub.inbound.events import BadEventKey, InboundEventData, MalformedEvent, parse
from hub.inbound.verify import InboundRequest
from hub.providers import registry

MAX_DEPTH = 64  # providers' events nest a handful of levels; 64 leaves room and keeps every walk shallow
REPLACEMENT = "\ufffd"

# where a NUL or a surrogate can hide in a JSON body: an escape (\u0000, \uD800-\uDFFF), or a
# surrogate encoded as if it were UTF-8 (ED A0..BF ..), which Python's JSON decoder lets through
_RISKY = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Refused(Exception):
    """A verified body that no retry can make storable: answered with `status`, kept as a
    dead letter under `reason` (hub.schema.DEAD_LETTER_REASONS)."""

    def __init__(self, reason: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


@dataclass(frozen=True)
class Read:
    """What a verified body means: a set-up probe's reply (answered, not stored), or its events."""

    reply: bytes | None
    events: list[InboundEventData]


def read(provider: str, body: bytes, content_type: str, message_id: str | None = None) -> Read:
    """The body's events (or a probe's reply), storable; `Refused` when it cannot be."""
    payload, altered = load(body, content_type)
    reply = _handshake(provider, payload)
    if reply is not None:
        return Read(reply, [])
    try:
        events = parse(provider, payload, body, message_id)
    except BadEventKey as exc:
        raise Refused("bad_id", str(exc)) from None
    except MalformedEvent as exc:
        raise Refused("not_envelope", str(exc)) from None
    if altered:  # the storable text, and the exact bytes beside it; never the raw text as JSON
        events = [replace(event, raw=None, raw_body=body) for event in events]
    return Read(None, events)


def load(body: bytes, content_type: str) -> tuple[Any, bool]:
    """(the payload, storable; whether its text had to change to be). Form bodies (Twilio)
    are decoded as form fields, anything else as JSON."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        # bytes (or %-escapes) that are not UTF-8 become lone surrogates here, then U+FFFD
        text = body.decode("utf-8", errors="surrogateescape")
        return storable(dict(parse_qsl(text, keep_blank_values=True, errors="surrogateescape")))
    try:
        # a byte order mark: JSON to Python, not to PostgreSQL, so the text is not kept as is
        payload, altered = _json(body), body.startswith(codecs.BOM_UTF8)
    except UnicodeDecodeError:  # not UTF-8 (nor UTF-16/32): keep what can be read
        try:
            encoding = json.detect_encoding(body)
            payload, altered = _json(body.decode(encoding, errors="replace")), True
        except (ValueError, LookupError) as exc:
            raise Refused("not_json", f"body is not JSON ({type(exc).__name__})") from None
    if altered or _RISKY.search(body) or b"\x00" in body or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        return storable(payload, altered)
    return payload, False


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise Refused("too_deep", f"body nests deeper than {MAX_DEPTH} levels") from None
    except Refused:
        raise
    except UnicodeDecodeError:
        raise
    except ValueError as exc:  # JSONDecodeError, an integer over Python's digit limit
        raise Refused("not_json", f"body is not JSON ({_first_line(exc)})") from None


def _no_constant(name: str) -> Any:
    raise Refused("not_json", f"body is not JSON: {name} is no JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Refused("not_json", "body holds a number beyond a double's range")
    return value


def storable(payload: Any, altered: bool = False) -> tuple[Any, bool]:
    """`payload` with every string and key PostgreSQL would refuse made storable (U+FFFD for a
    NUL or a lone surrogate), in place, without recursion; `Refused` past MAX_DEPTH.
    Returns (payload, altered or whether anything changed)."""
    if isinstance(payload, str):
        fixed = _fix(payload)
        return fixed, altered or fixed is not payload
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused("too_deep", f"body nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str):
                    fixed = _fix(value)
                    if fixed is not value:
                        node[i], altered = fixed, True
                elif isinstance(value, (list, dict)):
                    stack.append((value, depth + 1))
        elif isinstance(node, dict):
            for key, value in list(node.items()):
                if isinstance(value, str):
                    fixed = _fix(value)
                    if fixed is not value:
                        node[key], altered = fixed, True
                elif isinstance(value, (list, dict)):
                    stack.append((value, depth + 1))
                fixed_key = _fix(key)
                if fixed_key is not key:
                    node[fixed_key] = node.pop(key)
                    altered = True
    return payload, altered


def _fix(text: str) -> str:
    """The same object when it is storable (the common case, one regex search), else a copy."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def _handshake(provider: str, payload: Any) -> bytes | None:
    """The reply to a verified set-up probe, to answer and not store, per the provider's
    spec; None for an event (a generic provider without a spec has no probe)."""
    spec = registry.providers().get(provider)
    probe = spec.inbound.handshake if spec is not None and spec.inbound is not None else None
    return probe(payload) if probe is not None else None


def message_id(provider: str, request: InboundRequest) -> str | None:
    """The delivery's own message id where its scheme has one (Standard Webhooks'
    webhook-id, signed with the body): the event's dedupe key, so a retry of one message
    is stored once whatever its body says."""
    spec = registry.providers().get(provider)
    reader = spec.inbound.message_id if spec is not None and spec.inbound is not None else None
    return reader(request) if reader is not None else None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
