"""What a company's subscription allows: which providers, how many active integrations, and
whether it may change anything at all.

Checked where an integration becomes active (hub/integrations.py calls `check_activation`
from each of those places: enable, connect, a passing connection check, add with
`active=True`), so no path around it exists: the pages, the CLI and OAuth connect all end
there. A refusal names the plan that would allow it.

Billing off (no `billing_settings` row): everything is allowed. The operator's own Stripe
integration is never refused. A subscription `past_due` or `unpaid` for longer than the grace
makes the company read-only for changes (`read_only`; the pages refuse actions), while its
syncs keep running and nothing is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.billing.plans import Catalog, Plan, catalog as configured_catalog
from hub.errors import ValidationError
from hub.providers import registry
from hub.schema import billing_account, billing_settings, company, integration

LIVE = ("trialing", "active", "past_due", "unpaid")  # a plan still applies (unpaid: until the grace ends)
DUNNING = ("past_due", "unpaid")
BILLING_PAGE = "/settings/integrations/stripe"


class EntitlementError(ValidationError):
    """The company's subscription does not allow this."""


@dataclass(frozen=True)
class Standing:
    plan: Plan | None  # None: no live subscription
    status: str
    past_due_since: datetime | None
    grace_ends: datetime | None
    read_only: bool

    def read_only_refusal(self) -> str:
        """What every refused change says while the company is read-only (one sentence for the
        activation check, the pages and the CLI)."""
        return (f"The subscription has been unpaid since {self.past_due_since:%Y-%m-%d}, past the grace period: the hub "
                f"is read-only for changes until the card is updated on the billing page ({BILLING_PAGE}). "
                f"Syncs keep running.")


def standing(conn: Connection, company_id: int, now: datetime | None = None, plans: Catalog | None = None) -> Standing | None:
    """The company's subscription as the mirror has it; None when billing is off."""
    settings = conn.execute(sa.select(billing_settings.c.stripe_integration_id, billing_settings.c.grace_days)).first()
    if settings is None:
        return None
    plans = plans or configured_catalog()
    row = conn.execute(sa.select(billing_account.c.status, billing_account.c.plan_key, billing_account.c.past_due_since)
                       .where(billing_account.c.company_id == company_id)).first()
    status = row.status if row else "none"
    plan = None
    if row and row.status in LIVE and row.plan_key:
        plan = next((p for p in plans.plans if p.key == row.plan_key), None)
    since = row.past_due_since if row and status in DUNNING else None
    grace_ends = since + timedelta(days=settings.grace_days) if since else None
    now = now or datetime.now(timezone.utc)
    return Standing(plan, status, since, grace_ends, bool(grace_ends and now >= grace_ends))


def _name(provider: str) -> str:
    spec = registry.providers().get(provider)
    return spec.display_name if spec else provider


def check_activation(conn: Connection, company_id: int, provider: str, integration_id: int | None = None) -> None:
    """Raise EntitlementError when the company's plan does not allow one more active
    integration of `provider` (`integration_id`: the one being activated, not counted twice)."""
    settings = conn.execute(sa.select(billing_settings.c.stripe_integration_id)).first()
    if settings is None or (integration_id is not None and integration_id == settings.stripe_integration_id):
        return
    # one activation per company at a time, or two could each see room for the last one
    conn.execute(sa.select(company.c.id).where(company.c.id == company_id).with_for_update())
    plans = configured_catalog()
    found = standing(conn, company_id, plans=plans)
    assert found is not None
    others = conn.scalar(sa.select(sa.func.count()).select_from(integration).where(
        integration.c.company_id == company_id, integration.c.is_active,
        integration.c.id != (integration_id or 0)))
    wanted = others + 1
    better = plans.cheapest_allowing(provider, wanted)
    suggestion = f" The {better.name} plan does; change the plan on the billing page ({BILLING_PAGE})." if better else ""
    if found.plan is None:
        raise EntitlementError(f"This company has no active subscription ({found.status}), so {_name(provider)} cannot be "
                               f"turned on. Choose a plan on the billing page ({BILLING_PAGE}).")
    if found.read_only:
        raise EntitlementError(found.read_only_refusal())
    if not found.plan.allows(provider):
        raise EntitlementError(f"The {found.plan.name} plan does not include {_name(provider)}.{suggestion}")
    if found.plan.caps(wanted):
        raise EntitlementError(f"The {found.plan.name} plan allows {found.plan.max_active_integrations} active integrations, "
                               f"and {others} are active.{suggestion}")


def check_changes_allowed(conn: Connection, company_id: int) -> None:
    """Raise EntitlementError when the company is read-only (unpaid past the grace)."""
    found = standing(conn, company_id)
    if found is not None and found.read_only:
        raise EntitlementError(found.read_only_refusal())
