"""Delivery orders: the asset a run of the order job materializes."""

from functools import partial

import dagster as dg

from hub.orders.processing import ORDER_RETRY, OrderProcessor
from resources import HubDatabase, ProviderClients, SecretStore


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
def pos_orders(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore,
               provider_clients: ProviderClients) -> dg.MaterializeResult:
    # the processor opens a client per integration as it meets one, and closes them all
    processor = OrderProcessor(hub_db.get_engine(), secrets.keyring(),
                               client_factory=partial(provider_clients.client, retry=ORDER_RETRY))
    try:
        report = processor.run()
    finally:
        processor.close()
    for error in report.errors[:20]:
        context.log.warning(error)
    context.log.info(f"orders: {report.as_metadata()}")
    return dg.MaterializeResult(metadata=report.as_metadata())
