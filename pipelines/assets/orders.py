"""Delivery orders: the asset a run of the order job materializes."""

import dagster as dg

from hub.orders.processing import OrderProcessor
from resources import HubDatabase, SecretStore


@dg.asset(
    key=["delivery", "pos_orders"],
    group_name="delivery",
    kinds={"postgres"},
    description=(
        "Turns received DoorDash and Uber Eats orders into POS orders, accepts or denies them at the "
        "marketplace, and applies status events (cancellations, pickups) to external_order. Launched by "
        "new_orders_sensor; safe to run at any time, also twice at once (rows are claimed with SKIP LOCKED)."
    ),
)
def pos_orders(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
    processor = OrderProcessor(hub_db.get_engine(), secrets.keyring())
    try:
        report = processor.run()
    finally:
        processor.close()
    for error in report.errors[:20]:
        context.log.warning(error)
    context.log.info(f"orders: {report.as_metadata()}")
    return dg.MaterializeResult(metadata=report.as_metadata())
