"""`hub billing`: the operator bills each company through Stripe (hub/billing/).

`enable` names the operator's Stripe integration; `plans list|sync` shows the plans of
plans.toml and makes Stripe's catalog match; `apply` applies the pending Stripe webhooks;
`reconcile` re-reads every customer from Stripe (what the nightly asset does); `status`
shows a company's subscription as mirrored here."""

from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
import typer

from hub import db
from hub import integrations as store
from hub.billing import events, mirror, settings
from hub.billing.catalog_sync import sync_catalog
from hub.billing.entitlements import standing
from hub.billing.plans import catalog
from hub.commands import typer_app
from hub.crypto import Keyring
from hub.schema import billing_account

app = typer_app("Platform billing through Stripe: plans, subscriptions, webhooks, reconciliation.")
plans_app = typer_app("The subscription plans (plans.toml, or the file HUB_BILLING_PLANS names).")
app.add_typer(plans_app, name="plans")


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


@app.command("enable")
def billing_enable(integration: int = typer.Option(..., help="the operator's Stripe integration (hub integration add --provider stripe)"),
                   grace_days: int = typer.Option(settings.DEFAULT_GRACE_DAYS, help="days a past-due company keeps changing things")) -> None:
    """Bill companies through this Stripe account; its webhooks are applied from now on."""
    with db.engine().begin() as conn:
        done = settings.enable(conn, Keyring.from_env(), integration, grace_days)
    typer.echo(f"billing on: Stripe integration {done.stripe_integration_id}, grace {done.grace_days} days")


@app.command("disable")
def billing_disable() -> None:
    """Stop billing: nothing is enforced any more (the mirror is kept)."""
    with db.engine().begin() as conn:
        settings.disable(conn)
    typer.echo("billing off: no plan limits are enforced")


@plans_app.command("list")
def plans_list() -> None:
    """The configured plans."""
    plans = catalog()
    typer.echo(f"{'plan':<10} {'name':<10} {'monthly':>14} {'annual':>14} {'integrations':>12}  providers")
    for p in plans.plans:
        cap = str(p.max_active_integrations) if p.max_active_integrations else "any"
        typer.echo(f"{p.key:<10} {p.name:<10} {_money(p.monthly, plans.currency):>14} {_money(p.annual, plans.currency):>14} "
                   f"{cap:>12}  {', '.join(sorted(p.providers))}")
    typer.echo(f"trial: {plans.trial_days} days")


@plans_app.command("sync")
def plans_sync() -> None:
    """Create or update Stripe's products and prices to match the plans (safe to run again)."""
    with db.engine().connect() as conn:
        client = settings.client(conn, Keyring.from_env())
    report = sync_catalog(client, catalog())
    for what, items in (("created", report.created), ("updated", report.updated), ("archived", report.archived)):
        for item in items:
            typer.echo(f"{what}: {item}")
    typer.echo(f"{len(report.unchanged)} unchanged" + ("" if report.changed else "; Stripe already matches the plans"))


@app.command("apply")
def billing_apply(limit: int = typer.Option(200, min=1, help="at most this many events")) -> None:
    """Apply the pending Stripe webhooks (each re-reads its customer from Stripe)."""
    report = events.apply_pending(db.engine(), Keyring.from_env(), limit)
    typer.echo(f"{report.events} event(s) applied for {report.customers} customer(s); {report.skipped} not about a "
               f"customer; {report.left_pending} left pending")
    for error in report.errors:
        typer.echo(f"  not applied: {error}", err=True)


@app.command("reconcile")
def billing_reconcile() -> None:
    """Re-read every customer the hub made from Stripe and repair the mirror."""
    engine = db.engine()
    with engine.connect() as conn:
        client = settings.client(conn, Keyring.from_env())
    report = mirror.reconcile(engine.begin, client)
    typer.echo(f"{report.checked} customer(s) checked; repaired: {sorted(report.repaired) or 'none'}")
    for error in report.failed:
        typer.echo(f"  failed: {error}", err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command("status")
def billing_status(company: Optional[str] = typer.Option(None, help="one company (id or name); all by default")) -> None:
    """Each company's subscription as mirrored here."""
    with db.engine().connect() as conn:
        if settings.current(conn) is None:
            typer.echo("billing is off (hub billing enable --integration ID)")
            return
        query = sa.select(billing_account)
        if company:
            query = query.where(billing_account.c.company_id == store.find_company(conn, company).id)
        rows = conn.execute(query.order_by(billing_account.c.company_id)).mappings().all()
        for row in rows:
            found = standing(conn, row["company_id"])
            period = row["current_period_end"].date().isoformat() if row["current_period_end"] else "-"
            flags = " read-only" if found and found.read_only else ""
            typer.echo(f"company {row['company_id']}: {row['status']} {row['plan_key'] or '-'}/{row['interval'] or '-'} "
                       f"until {period}{' (cancels then)' if row['cancel_at_period_end'] else ''}{flags}")
    if not rows:
        typer.echo("no company is a Stripe customer yet")
