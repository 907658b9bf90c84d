"""The hub's Stripe client is Stripe's own SDK (`stripe.StripeClient`): nothing of Stripe's
API is re-implemented here. This module only builds it from a stored integration (its API
key, and `base_url` in the config when it points elsewhere than api.stripe.com: the
emulator in the demo and the tests) and turns the SDK's errors into the hub's.

Why the SDK: it already does form encoding, `expand`, auto-paging, idempotency keys on
every POST (one per call, reused by its own retries) and retries with backoff on network
errors, 409, 429 and 5xx (`max_network_retries`).
"""

from __future__ import annotations

import stripe

from hub.errors import HubError, NotFoundError, ValidationError

NETWORK_RETRIES = 2
TIMEOUT_S = 30


def make_client(api_key: str, base_url: str | None = None, *, retries: int = NETWORK_RETRIES) -> stripe.StripeClient:
    base = {"api": base_url, "files": base_url, "connect": base_url} if base_url else {}
    return stripe.StripeClient(api_key, base_addresses=base, max_network_retries=retries,
                               http_client=stripe.HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True))


def hub_error(exc: stripe.StripeError) -> HubError:
    """The SDK's error as the hub's: its message (Stripe's own words, which name no secret),
    the HTTP status and code kept."""
    status = getattr(exc, "http_status", None)
    code = getattr(exc, "code", None)
    text = f"Stripe refused the request ({status}{', ' + code if code else ''}): {exc.user_message or str(exc)}"
    if isinstance(exc, stripe.InvalidRequestError) and status == 404:
        return NotFoundError(text)
    if isinstance(exc, (stripe.CardError, stripe.InvalidRequestError)):
        return ValidationError(text)
    return HubError(text)
