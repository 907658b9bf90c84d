"""What an inbound webhook says, per provider: its event id (the dedupe key), and for
delivery marketplaces which order it concerns and what it means for the order's status.

A provider's own parser is its spec's `inbound.parse` (the delivery marketplaces':
hub/providers/doordash/inbound.py, hub/providers/ubereats/inbound.py). A provider without
one still gets its events stored and deduplicated: the fallback uses the usual id fields,
else a hash of the body (a retried delivery has the same body).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Callable

from hub.providers import registry


@dataclass(frozen=True)
class InboundEventData:
    event_id: str
    event_type: str
    payload: Any
    order_id: str | None = None  # the provider's order id, for delivery events
    creates_order: bool = False
    order_status: str | None = None  # our status the event reports (state machine input)
    # the payload's JSON text as received, when the event is the whole body: stored as is,
    # which spares serializing the parsed payload again (CPU on the receiver's hot path)
    raw: str | None = None
    # the provider's own status string, verbatim (DoorDash "NEW", "DASHER_PICKED_UP"; Uber Eats'
    # meta.status): kept as external_order.external_status beside our mapped status
    provider_status: str | None = None
    # the body exactly as received when `payload` had to differ from it to be storable
    # (hub.inbound.payload: a NUL, a lone surrogate, bytes that are not UTF-8), else None
    raw_body: bytes | None = None


def body_text(body: bytes) -> str | None:
    """The body as text, to store as received (see InboundEventData.raw)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:  # valid JSON in another encoding: stored re-serialized
        return None


class MalformedEvent(ValueError):
    """The body is JSON but not the provider's event shape."""


class BadEventKey(MalformedEvent):
    """An event or order id the hub cannot key on: not a string or an integer, empty, or too long."""


MAX_MESSAGE_ID = 256  # Standard Webhooks ids are short (Svix: msg_ + 27); a longer one is refused, not stored
# event and order ids are unique-index keys: a B-tree entry holds at most ~2,700 bytes, and
# providers' ids are far shorter (Uber's are UUIDs; DoorDash's event id is type:order:digest)
MAX_KEY = 500

_ID_FIELDS = ("event_id", "id", "sg_event_id", "eventId", "MessageSid", "resourceId")


def _generic(payload: Any, body: bytes) -> list[InboundEventData]:
    items = payload if isinstance(payload, list) else [payload]  # SendGrid posts an array
    events = []
    for item in items:
        found = next((str(item[k]) for k in _ID_FIELDS if isinstance(item, dict) and item.get(k)), None)
        if isinstance(item, dict) and item.get("MessageSid") and item.get("MessageStatus"):
            found = f"{item['MessageSid']}:{item['MessageStatus']}"  # Twilio: one callback per status
        event_id = found or "sha256:" + hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        event_type = str(item.get("type") or item.get("event") or item.get("event_type") or "event") if isinstance(item, dict) else "event"
        events.append(InboundEventData(event_id, event_type, item))
    return events


Parser = Callable[[Any, bytes], list[InboundEventData]]


def parse(provider: str, payload: Any, body: bytes, message_id: str | None = None) -> list[InboundEventData]:
    """The events of a verified payload; MalformedEvent when it is not the provider's envelope
    (its spec's `inbound.envelope`), so a signed array or string is not stored as events.
    `message_id`: the delivery's own id where the scheme carries one (its spec's
    `inbound.message_id`, e.g. Standard Webhooks' webhook-id), the dedupe key of the one
    event the delivery holds instead of an id read from the body."""
    spec = registry.providers().get(provider)
    inbound = spec.inbound if spec is not None else None
    if inbound is not None and inbound.envelope is not None:
        try:
            inbound.envelope(payload)
        except ValueError as exc:
            raise MalformedEvent(f"{provider} body is not its event envelope") from exc
    own: Parser | None = inbound.parse if inbound is not None else None
    events = (own or _generic)(payload, body)
    if message_id is not None:
        if len(message_id) > MAX_MESSAGE_ID:  # a key the unique index takes, and a sane one
            raise BadEventKey(f"{provider} message id is over {MAX_MESSAGE_ID} characters")
        if len(events) != 1:
            raise MalformedEvent(f"{provider} delivery holds {len(events)} events under one message id")
        events = [replace(events[0], event_id=message_id)]
    return [_keyed(provider, event) for event in events]


def _key(value: Any) -> str | None:
    """An id as the text it is stored under: a string, or an integer's digits; None if unusable."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_KEY else None


def _keyed(provider: str, event: InboundEventData) -> InboundEventData:
    """The event with ids the unique indexes take, or BadEventKey (a 4xx: no retry changes
    an id; stored as is, a 20,000-character id or a list failed the insert, and 503 followed)."""
    event_id = _key(event.event_id)
    if event_id is None:
        raise BadEventKey(f"{provider} event id is not a string or integer of 1..{MAX_KEY} characters")
    order_id = event.order_id
    if order_id is not None:
        order_id = _key(order_id)
        if order_id is None:
            raise BadEventKey(f"{provider} order id is not a string or integer of 1..{MAX_KEY} characters")
    event_type = event.event_type if isinstance(event.event_type, str) else str(event.event_type)
    if (event_id, order_id, event_type) == (event.event_id, event.order_id, event.event_type):
        return event
    return replace(event, event_id=event_id, order_id=order_id, event_type=event_type)
