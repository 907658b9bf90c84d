"""Outgoing events: the outbox, and signed webhook deliveries to customer endpoints.

Modules, in the order an event travels:

* `events`: the declared event types and `emit` (into the caller's transaction);
* `endpoints`: outbound endpoints (add, edit, rotate secret, enable/disable, delete, send a test),
  delivery log, replay (a window, or one delivery);
* `queue`: fan-out, leased claims, recording outcomes (PostgreSQL, SKIP LOCKED);
* `dispatcher`: the long-running worker (`hub webhooks dispatch`);
* `senders`: the seam for delivery channels; `webhook_sender`: the HTTP one;
* `policy` (retries, Retry-After, auto-disable), `signing` (Standard Webhooks, rotation),
  `payload` (envelope, fields, thin events), `ssrf` (connect-time address guard).
"""

from hub.outbound.outbox import EVENT_TYPES, emit

__all__ = ["EVENT_TYPES", "emit"]
