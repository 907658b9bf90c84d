"""What a delivery from a company's own system must look like to be stored (the custom
source's `inbound.envelope`): Standard Webhooks' payload shape, a JSON object with the
event's `type` (and, as senders usually add, a `timestamp` and the `data`). Verification
is the built-in Standard Webhooks scheme (hub/inbound/verify.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StandardEvent(BaseModel):
    """https://www.standardwebhooks.com (payload structure): `type` is required, as the hub
    lists events by it; other fields pass as the sender wrote them."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=200)


def check_envelope(payload: Any) -> None:
    """Raises pydantic's ValidationError (a ValueError) unless the payload is an event object."""
    StandardEvent.model_validate(payload)
