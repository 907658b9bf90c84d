"""What an endpoint receives: the event envelope, shaped by its payload options
(`webhook_endpoint.payload_options`).

Every delivery body is one JSON object, Standard Webhooks' recommended shape::

    {"id": "evt_42", "type": "order.status_changed", "timestamp": "2026-11-22T10:00:00.123456Z",
     "company_id": 1, "data": {...}}

``timestamp`` is when the event was emitted (not when this attempt was sent: that is the
signed ``webhook-timestamp`` header), so a receiver can order late retries correctly.

Options, because receivers differ in what they should see:

* ``{"mode": "full"}`` (default): ``data`` is the whole event payload.
* ``{"mode": "full", "fields": ["order_id", "status", "customer.name"]}``: only those
  fields (dotted paths into nested objects); fields that are absent are left out. Useful
  to keep personal data away from a receiver that does not need it.
* ``{"mode": "thin"}``: the "thin event" pattern: ``data`` keeps only identifiers (``id``
  and keys ending in ``_id``) and the receiver fetches the rest over an API it is
  authorised for; nothing sensitive travels in the webhook at all.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Mapping

from hub.errors import ValidationError

__all__ = ["PayloadOptions", "envelope", "render"]

MODES = ("full", "thin")


@dataclass(frozen=True)
class PayloadOptions:
    mode: str = "full"
    fields: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> "PayloadOptions":
        value = dict(value or {})
        unknown = set(value) - {"mode", "fields"}
        if unknown:
            raise ValidationError(f"unknown payload option(s) {', '.join(sorted(unknown))}; known: mode, fields")
        mode = value.get("mode", "full")
        if mode not in MODES:
            raise ValidationError(f"payload mode must be one of {', '.join(MODES)}")
        fields = value.get("fields")
        if fields is not None:
            if mode != "full":
                raise ValidationError("payload fields apply to mode 'full' only")
            if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f.strip(".") and ".." not in f for f in fields):
                raise ValidationError("payload fields must be a non-empty list of field names (dotted for nested fields)")
            fields = tuple(fields)
        return cls(mode, fields)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        if self.fields is not None:
            out["fields"] = list(self.fields)
        return out

    def describe(self) -> str:
        if self.mode == "thin":
            return "thin (identifiers only)"
        return f"fields {', '.join(self.fields)}" if self.fields else "full"


def _pick(data: Mapping[str, Any], path: str, out: dict[str, Any]) -> None:
    head, _, rest = path.partition(".")
    if head not in data:
        return
    if not rest:
        out[head] = data[head]
    elif isinstance(data[head], Mapping):
        child = out.setdefault(head, {})
        if isinstance(child, dict):
            _pick(data[head], rest, child)
            if not child:
                out.pop(head)


def shape(data: Mapping[str, Any], options: PayloadOptions) -> dict[str, Any]:
    if options.mode == "thin":
        return {k: v for k, v in data.items() if k == "id" or k.endswith("_id")}
    if options.fields is None:
        return dict(data)
    out: dict[str, Any] = {}
    for path in options.fields:
        _pick(data, path, out)
    return out


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(event_id: int, event_type: str, company_id: int, created_at: dt.datetime, data: Mapping[str, Any], options: PayloadOptions) -> dict[str, Any]:
    return {
        "id": f"evt_{event_id}",
        "type": event_type,
        "timestamp": _iso(created_at),
        "company_id": company_id,
        "data": shape(data, options),
    }


def render(event_id: int, event_type: str, company_id: int, created_at: dt.datetime, data: Mapping[str, Any], options: PayloadOptions) -> bytes:
    """The exact body bytes that are signed and sent (compact JSON, UTF-8)."""
    return json.dumps(envelope(event_id, event_type, company_id, created_at, data, options), separators=(",", ":"), ensure_ascii=False).encode()
