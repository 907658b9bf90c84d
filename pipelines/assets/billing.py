"""Platform billing in Dagster: the Stripe webhooks applied as they arrive (launched by
`stripe_billing_sensor`), and the nightly reconciliation of every company's subscription
with Stripe, which repairs what a lost webhook left behind (hub/billing/). With billing off
both are no-ops that say so."""

import dagster as dg

from hub.billing import events, mirror, settings as billing
from resources import HubDatabase, SecretStore


@dg.asset(
    key=["billing", "subscription_events"],
    group_name="billing",
    kinds={"stripe", "postgres"},
    description="Applies the pending Stripe webhooks: each names a customer, re-read from Stripe into billing_account "
                "and billing_invoice (any order, duplicates and gaps converge).",
)
def subscription_events(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
    report = events.apply_pending(hub_db.get_engine(), secrets.keyring())
    for error in report.errors:
        context.log.warning(f"left pending: {error}")
    return dg.MaterializeResult(metadata={
        "events_applied": report.events, "customers_refreshed": report.customers, "not_about_a_customer": report.skipped,
        "left_pending": report.left_pending, "went_past_due": dg.MetadataValue.text(", ".join(map(str, report.dunning)) or "-")})


@dg.asset(
    key=["billing", "subscription_reconciliation"],
    group_name="billing",
    kinds={"stripe", "postgres"},
    description="Nightly: every customer the hub made, listed at Stripe and re-read, so the local mirror matches Stripe.",
)
def subscription_reconciliation(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
    engine = hub_db.get_engine()
    with engine.connect() as conn:
        if billing.current(conn) is None:
            return dg.MaterializeResult(metadata={"billing": "off"})
        client = billing.client(conn, secrets.keyring())
    report = mirror.reconcile(engine.begin, client)
    if report.failed:
        raise dg.Failure(f"{len(report.failed)} customer(s) could not be read from Stripe", metadata={
            "failed": dg.MetadataValue.text("\n".join(report.failed)), "checked": report.checked})
    return dg.MaterializeResult(metadata={"checked": report.checked, "repaired": len(report.repaired),
                                          "repaired_companies": dg.MetadataValue.text(", ".join(map(str, report.repaired)) or "-")})


billing_events_job = dg.define_asset_job("billing_events_job", selection=[subscription_events],
                                         description="Stripe webhooks to the billing mirror; launched by stripe_billing_sensor.")
billing_reconcile_job = dg.define_asset_job("billing_reconcile_job", selection=[subscription_reconciliation])
billing_reconcile_schedule = dg.ScheduleDefinition(
    name="billing_nightly_reconciliation", job=billing_reconcile_job, cron_schedule="30 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING, description="Reconcile every subscription with Stripe at 03:30 UTC.")


@dg.sensor(name="stripe_billing_sensor", job=billing_events_job, minimum_interval_seconds=10,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches billing_events_job when Stripe webhooks wait to be applied.")
def stripe_billing_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    waiting = events.pending_count(hub_db.get_engine())
    if not waiting:
        return dg.SkipReason("no Stripe event waiting (or billing is off)")
    generation = int(context.cursor or 0) + 1
    # the run key moves with the cursor: a tick evaluated again after a daemon restart asks for the same run once
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"billing-{generation}", tags={"events_waiting": str(waiting)})],
                           cursor=str(generation))
