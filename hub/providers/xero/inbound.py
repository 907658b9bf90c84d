"""What a Xero webhook says beyond its events: whether it is Xero's intent-to-receive probe.

Xero validates a new webhook by posting batches with an empty ``events`` list, some correctly
and some wrongly signed; it expects 200 with an empty body for the first and 401 for the
second. The receiver (hub/web/receiver.py, through the spec's `inbound.is_handshake`)
answers a verified probe with an empty 200 and stores nothing."""

from __future__ import annotations

from typing import Any


def is_handshake(payload: Any) -> bool:
    """True for a (verified) batch without events: the intent-to-receive probe."""
    return isinstance(payload, dict) and not payload.get("events")
