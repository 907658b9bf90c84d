"""The integrations a data-quality check covers when it is executed without a partition
(the "Execute" button on a check in the Dagster UI): every active integration of its provider.
A partitioned execution checks exactly its partition's integration instead."""

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.schema import integration


def active_integration_ids(engine: Engine, provider: str) -> list[int]:
    """Ids of the active integrations of `provider`, ascending."""
    with engine.connect() as conn:
        return list(conn.scalars(
            sa.select(integration.c.id).where(integration.c.provider == provider, integration.c.is_active).order_by(integration.c.id)
        ))
