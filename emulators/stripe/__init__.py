"""Stripe emulator: the Billing part of Stripe's v1 API, faithful enough that the official
`stripe` Python SDK works against it unchanged:

    client = stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": url, "files": url, "connect": url})

Modules: `wire` (form bodies, errors, lists and paging, expand, idempotency, search), `cards`
(test cards), `billing` (the account: the billing choices are documented there; it composes
`store`, `customers`, `catalog`, `subscriptions`, `invoices` and `timeline`), `sessions`
(Checkout and the Billing Portal), `webhooks` (endpoints, signed delivery, retries), `hosted`
(the hosted pages' HTML), `app` (routes). Facts: shared/reference/oauth-and-billing.md,
webhooks.md, and docs.stripe.com.

Conventions (as Stripe):
- Auth: `Authorization: Bearer sk_test_...` (or Basic with the key as user). None -> 401
  "You did not provide an API key"; unknown -> 401 "Invalid API Key provided: sk_test_****abcd".
- Bodies are form-encoded (`a[b][c]`, `a[0][b]`, `a[]`); `expand[]` on any call (`data.x` in
  lists, up to 4 levels); lists are `{"object": "list", "data", "has_more", "url"}`, newest
  first, `limit` 1..100 (default 10) with `starting_after` / `ending_before`.
- Errors: `{"error": {"type", "code", "param", "message", "doc_url", "request_log_url"}}`:
  400 invalid_request_error (parameter_missing, parameter_unknown, parameter_invalid_*), 401,
  402 card_error (card_declined + decline_code, expired_card, incorrect_cvc, incorrect_number,
  authentication_required), 404 resource_missing with `param` (`id`, or the parameter that named
  the missing object), 400 idempotency_error, 409 idempotency_key_in_use, 429 rate_limit.
- Idempotency-Key (POST): the first result is saved for 24 h of emulator time per (API key,
  key); the same key with the same method, path and parameters replays it (same status and body,
  `Idempotent-Replayed: true`, `Original-Request`); with other parameters -> 400
  idempotency_error. Validation errors raised before the endpoint runs (missing or unknown
  parameters, bad key) are not saved, as Stripe documents.
- Ids carry Stripe's prefixes (cus_, prod_, price_, pm_, sub_, si_, in_, il_, ii_, pi_, evt_,
  we_, clock_, cs_test_, bps_, bpc_); objects are `livemode: false` with `created` timestamps.
  Test tokens (`pm_card_visa`, `tok_visa`, ...) create a new PaymentMethod when used.

Routes (`/v1/...`): customers (+ /payment_methods), products, prices, payment_methods (+ attach,
detach), subscriptions (DELETE cancels), subscription_items, invoices (+ finalize, pay, void,
mark_uncollectible, lines, create_preview; legacy GET upcoming), invoiceitems, payment_intents
(read), setup_intents (+ confirm, cancel), search (customers, products, prices, subscriptions,
invoices), events, webhook_endpoints, test_helpers/test_clocks (+ advance), checkout/sessions (+
expire, line_items), billing_portal/configurations, billing_portal/sessions.
Hosted pages: `/c/pay/{cs}` (Checkout), `/p/session/{token}` (portal), `/i/{token}` and
`/i/{token}/pdf` (invoice page and PDF); see hosted.py for their forms.

Admin routes (besides the framework's, see core.py): GET /_emulator/deliveries (webhook
deliveries and every attempt), POST /_emulator/keys `{"key": "sk_test_..."}` (accept another key).
`POST /_emulator/clock {"advance": s}` moves the emulator clock; objects without a test clock
catch up on the next API call.

Not emulated: Connect, PaymentIntent confirmation, 3-D Secure pages, charges and refunds, coupons and
discounts, taxes, subscription schedules, usage-based (metered) prices.
"""

from __future__ import annotations

from emulators.core import EmulatorCore
from emulators.oauth import RefreshPolicy
from emulators.stripe.app import API_VERSION, StripeEmulator
from emulators.stripe.billing import Billing
from emulators.stripe.webhooks import Webhooks, sign

DEFAULT_API_KEY = "sk_test_51HubEmulator0000000000000000"

__all__ = ["API_VERSION", "DEFAULT_API_KEY", "StripeEmulator", "create_emulator", "sign"]


def create_emulator(*, api_keys: tuple[str, ...] = (DEFAULT_API_KEY,), retry_days: tuple[int, ...] = (3, 5, 7),
                    dunning_final: str = "canceled", upcoming_days: int = 7,
                    webhook_retry_s: tuple[float, ...] = (1.0, 5.0, 25.0), account_name: str = "Hub Emulator") -> StripeEmulator:
    """An empty Stripe test-mode account answering to `api_keys`. `retry_days`: days after each
    failed automatic charge of a renewal before the next one; `dunning_final`: the subscription
    status after the last one fails (canceled | unpaid | past_due); `webhook_retry_s`: delays
    between failed webhook attempts."""
    core = EmulatorCore("stripe", RefreshPolicy(access_ttl=3600))
    billing = Billing(core.clock, retry_days=retry_days, dunning_final=dunning_final, upcoming_days=upcoming_days,
                      account_name=account_name)
    webhooks = Webhooks(billing, core.clock, webhook_retry_s)
    return StripeEmulator(core, billing, webhooks, set(api_keys))
