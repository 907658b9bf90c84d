"""The Stripe account's objects and the billing engine that moves them through time.

Objects are kept as the API shows them (API version 2026-10-28, what stripe-python 16 sends):
subscription periods live on the items (`items.data[].current_period_start/end`), an invoice
names its subscription in `parent.subscription_details.subscription`, invoice lines price in
`pricing.price_details`, payments in `invoice.payments`. Hidden bookkeeping is in `self.hidden`.

Time: every object belongs to a scope, its customer's test clock (frozen until advanced) or
the emulator clock. `run_due(scope, until)` performs what falls due in that scope in time order
(renewals, trial ends, invoice finalization, payment retries, cancellations), so one advance of
a test clock over three months renews three times. Objects on the emulator clock are brought up
to date at the start of every API request.

Billing choices (Stripe's defaults where it has one; all configurable on `create_emulator`):
- Subscriptions bill in advance; periods step by calendar month/year from the billing cycle
  anchor (start, or the trial end), clamped to the month's last day. All items share one interval.
- Creating without a trial invoices at once (billing_reason subscription_create) and charges the
  default card: paid -> active; declined -> incomplete (payment_behavior allow_incomplete, the
  default) or a 402 (error_if_incomplete); default_incomplete charges nothing. An incomplete
  subscription expires (incomplete_expired, invoice voided) 23 hours after creation.
- A trial starts `trialing` with a paid 0.00 invoice; `customer.subscription.trial_will_end` 3
  days before it ends; at its end the subscription is `active` and the first real invoice made.
- At each period end a draft invoice (subscription_cycle, with pending invoice items) is made;
  it finalizes and is charged an hour later (`automatically_finalizes_at`), as Stripe does.
  `invoice.upcoming` is sent `upcoming_days` (7) before a renewal.
- Dunning: a failed renewal charge makes the subscription `past_due` and the invoice is retried
  `retry_days` (3, 5, 7) days after each failed automatic attempt; after the last one fails
  the subscription becomes `dunning_final` ("canceled", Stripe's default; or "unpaid" or
  "past_due"). Paying the invoice (retry, API pay, portal card update) makes it `active` again.
  Unpaid subscriptions keep renewing with draft invoices that are not charged.
- Changing quantity or price prorates by the second over the item's current period: a credit
  ("Unused time on ...") and a charge ("Remaining time on ...") as pending invoice items
  (create_prorations, the default), invoiced now (always_invoice) or not at all (none). A price
  of another interval resets the billing cycle and invoices at once.
- cancel_at_period_end / cancel_at end the subscription when that time comes; DELETE ends it now.
"""

from __future__ import annotations

from emulators.stripe.catalog import Catalog
from emulators.stripe.customers import Customers
from emulators.stripe.invoices import Invoices
from emulators.stripe.store import DAY, LIVE, Store, add_interval
from emulators.stripe.subscriptions import Subscriptions
from emulators.stripe.timeline import Timeline

__all__ = ["DAY", "LIVE", "Billing", "add_interval"]


class Billing(Timeline, Invoices, Subscriptions, Catalog, Customers, Store):
    """Every object of one Stripe account and every change to them, put together from one module
    per subject: store (storage, time, events), customers (and payment methods, setup intents),
    catalog (products, prices), subscriptions, invoices (and charging, previews), timeline
    (time passing, test clocks)."""
