"""The seam between the dispatcher and a delivery channel.

The dispatcher owns everything that is the same for every channel: fan-out, claims,
leases, retries, the delivery log, auto-disable. A `Sender` owns only "make one attempt
to this target and say how it went". Today the one sender is `WebhookSender` (HTTP POST
with Standard Webhooks signatures); a notification route (a Slack channel, an email
address, a phone number) becomes another sender without touching the dispatcher:

* the target is still a `webhook_endpoint` row (company-wide, ``direction = 'outbound'``,
  with its events, retry policy and delivery log), whose ``url`` names the channel by
  scheme: ``http(s)://`` webhooks, ``slack://``, ``sendgrid://`` and ``twilio://`` notification routes (hub/notify);
* `kind_for_url` maps the scheme to a sender kind, and the dispatcher is given one sender
  per kind (``Dispatcher(..., senders={"webhook": ..., "slack": ...})``);
* the sender renders its own message from `Message` (the event) and returns an `Outcome`;
  it may set ``retry_after`` (Slack's 429), ``retryable=False`` (a permanent refusal) or
  ``disable_reason`` (the channel is gone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol
from urllib.parse import urlsplit

from hub.outbound.payload import PayloadOptions
from hub.outbound.policy import DeliveryPolicy
from hub.outbound.signing import SigningSecrets
from hub.providers import registry

__all__ = ["Message", "Outcome", "Sender", "Target", "kind_for_url"]


def kind_for_url(url: str) -> str | None:
    """The sender kind of a URL scheme: ``webhook`` for http(s), the provider for a messaging
    provider's scheme (hub/notify/sender.py), None for anything else."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return "webhook"
    return scheme if scheme in registry.with_capability("messaging") else None


@dataclass(frozen=True)
class Target:
    """One subscribed endpoint, as a sender needs it. The secret is masked in repr."""

    endpoint_id: int
    company_id: int
    name: str
    url: str = field(repr=False)  # may carry a token in its query string
    secrets: SigningSecrets | None = field(repr=False)
    policy: DeliveryPolicy
    payload: PayloadOptions

    @property
    def kind(self) -> str | None:
        return kind_for_url(self.url)


@dataclass(frozen=True)
class Message:
    """One event for one endpoint. ``message_id`` is the same on every attempt (and on a
    replay), so receivers can deduplicate on it."""

    message_id: str
    attempt: int
    event_id: int
    event_type: str
    company_id: int
    created_at: dt.datetime
    data: Mapping[str, Any]


@dataclass
class Outcome:
    """What one attempt did. ``error`` and ``response_body`` must be safe to store and
    show: no secrets, no full URLs."""

    ok: bool
    started_at: float  # unix seconds when the attempt began
    duration_ms: int = 0
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    retryable: bool = True  # False: a later attempt cannot succeed (blocked address, bad URL)
    disable_reason: str | None = None  # set: disable the endpoint now (HTTP 410)


class Sender(Protocol):
    async def send(self, target: Target, message: Message) -> Outcome:
        """Make one attempt. Must not raise for delivery failures: return an `Outcome`."""

    async def forget(self, endpoint_id: int) -> None:
        """Drop cached state (connections) of an endpoint whose configuration changed."""

    async def aclose(self) -> None:
        """Release everything (called once when the dispatcher stops)."""
