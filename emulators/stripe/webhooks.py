"""Webhook endpoints (`/v1/webhook_endpoints`) and the signed delivery of events to them.

Signing, as Stripe signs (stripe-python `WebhookSignature` verifies it): the header
`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, the key
being the whole `whsec_...` string. Every attempt is signed anew with the current (real) time,
so a retry passes a verifier's 300-second tolerance.

Retries: a non-2xx answer, no connection or no answer in 10 s is retried after each delay of
`retry_schedule_s` in turn, then given up (Stripe retries for up to three days in live mode,
three times over a few hours in test mode; the default here is compressed to 1, 5, 25 s for the
demo and tests pass less). Events are delivered in no guaranteed order, as Stripe warns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from emulators.sendgrid import CallbackDispatcher
from emulators.stripe.billing import Billing
from emulators.stripe.wire import as_list, check_params, invalid, metadata, missing, new_id


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class _Delivery(dict):
    """One event's delivery to one endpoint (the dispatcher's record); when it succeeds the
    event's `pending_webhooks` counts down, as Stripe's does."""

    def __init__(self, source: dict, **fields: Any):
        super().__init__(**fields)
        self._event = source

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == "status" and value == "delivered":
            self._event["pending_webhooks"] = max(0, self._event["pending_webhooks"] - 1)


class Webhooks:
    def __init__(self, billing: Billing, clock: Any, retry_schedule_s: tuple[float, ...]):
        self.billing, self.retry_schedule_s = billing, tuple(retry_schedule_s)
        self.dispatcher = CallbackDispatcher("stripe", clock)
        self.deliveries: list[dict[str, Any]] = []  # one record per (event, endpoint): status, attempts, ...
        billing.on_event = self.deliver

    # ---- endpoints ------------------------------------------------------------------------------
    def create(self, p: dict) -> dict:
        check_params(p, ("url", "enabled_events", "description", "metadata", "api_version", "connect", "disabled"))
        if not p.get("url"):
            raise missing("url")
        if not str(p["url"]).startswith(("http://", "https://")):
            raise invalid("url", "Invalid URL: URL must be publicly accessible and use http or https.", "url_invalid")
        events = as_list(p, "enabled_events")
        if not events:
            raise missing("enabled_events")
        endpoint = self.billing._base("we_", "webhook_endpoint", api_version=p.get("api_version") or None, application=None,
                                      description=p.get("description") or None, enabled_events=events,
                                      metadata=metadata(p), status="enabled", url=p["url"])
        secret = "whsec_" + secrets.token_hex(32)
        self.billing.add(endpoint, secret=secret)
        return {**self.billing.render(endpoint), "secret": secret}

    def update(self, ident: str, p: dict) -> dict:
        check_params(p, ("url", "enabled_events", "description", "metadata", "disabled"))
        endpoint = self.billing.get("webhook_endpoint", ident)
        if p.get("url"):
            endpoint["url"] = p["url"]
        if "enabled_events" in p:
            endpoint["enabled_events"] = as_list(p, "enabled_events") or endpoint["enabled_events"]
        if "description" in p:
            endpoint["description"] = p["description"] or None
        if "disabled" in p:
            endpoint["status"] = "disabled" if str(p["disabled"]).lower() == "true" else "enabled"
        endpoint["metadata"] = metadata(p, endpoint["metadata"])
        return endpoint

    def delete(self, ident: str) -> dict:
        self.billing.get("webhook_endpoint", ident)
        self.billing.hidden[ident]["deleted"] = True
        return {"id": ident, "object": "webhook_endpoint", "deleted": True}

    def secret(self, ident: str) -> str:
        return self.billing.hidden[ident]["secret"]

    # ---- delivery -------------------------------------------------------------------------------
    def deliver(self, event: dict) -> None:
        """Sign and send `event` to every enabled endpoint that takes its type (one payload)."""
        targets = [e for e in self.billing.all("webhook_endpoint") if e["status"] == "enabled"
                   and ("*" in e["enabled_events"] or event["type"] in e["enabled_events"])]
        if not targets:
            return
        event["pending_webhooks"] = len(targets)
        payload = json.dumps(event, indent=2).encode()
        for endpoint in targets:
            record = _Delivery(event, id=new_id("whdel_"), event=event["id"], type=event["type"], endpoint=endpoint["id"])
            self.deliveries.append(record)

            def headers(body: bytes, secret: str = self.secret(endpoint["id"])) -> dict[str, str]:
                return {"Content-Type": "application/json; charset=utf-8",
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "Stripe-Signature": sign(secret, body)}

            self.dispatcher.post(record, endpoint["url"], payload, headers, self._retry)

    def _retry(self, attempt: int, failure: str) -> float | None:
        """The delay before the next attempt after `attempt` failed, None to give up."""
        return self.retry_schedule_s[attempt - 1] if attempt <= len(self.retry_schedule_s) else None

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        return self.dispatcher.wait_idle(timeout)

    def close(self) -> None:
        self.dispatcher.close()
