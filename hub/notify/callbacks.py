"""Where SendGrid and Twilio report delivery status back: the integration's inbound
webhook endpoint (``/webhooks/<provider>/<endpoint id>`` on the hub web app), which verifies
the provider's signature and stores each report as an `inbound_event`.

The hub must know its own public address to hand it out (Twilio takes a StatusCallback URL
with every message; SendGrid's Event Webhook URL is set once in its settings). In order:
the integration's config ``public_url`` (one integration behind its own tunnel or
proxy), else ``HUB_PUBLIC_URL`` (the same variable the web app uses to check Twilio's
signature, which covers the URL Twilio called). Without either, messages still go out, but
their delivery status cannot come back; `hub notify check` says so.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.schema import webhook_endpoint

__all__ = ["PUBLIC_URL_VAR", "public_base", "inbound_endpoint_id", "status_url"]

PUBLIC_URL_VAR = "HUB_PUBLIC_URL"


def public_base(config: Mapping[str, Any], default: str | None = None) -> str | None:
    """The hub's public base URL for this integration (no trailing slash), or None."""
    value = config.get("public_url") or default or os.environ.get(PUBLIC_URL_VAR) or None
    return str(value).rstrip("/") if value else None


def inbound_endpoint_id(conn: Connection, integration_id: int) -> int | None:
    return conn.scalar(
        sa.select(webhook_endpoint.c.id).where(
            webhook_endpoint.c.integration_id == integration_id, webhook_endpoint.c.direction == "inbound",
            webhook_endpoint.c.is_active)
    )


def status_url(base: str | None, provider: str, endpoint_id: int | None) -> str | None:
    """The URL the provider should POST status reports to, when both parts are known."""
    if not base or endpoint_id is None:
        return None
    return f"{base}/webhooks/{provider}/{endpoint_id}"
