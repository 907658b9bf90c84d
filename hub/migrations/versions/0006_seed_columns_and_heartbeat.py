"""Seed columns the blueprint names, integrations inactive until connected, sync heartbeats.

Why each piece:
- `external_order.external_status`: the provider's own status string, as last seen (DoorDash
  "NEW", "DASHER_PICKED_UP"; Uber Eats' `meta.status`), kept verbatim beside our mapped
  `status` (shared/reference/webhooks.md: "keep `external_status` verbatim"). Set by the order
  job (hub/orders/processing.py).
- `external_order.received_at`: when the order's webhook arrived, set by the receiver's ingest
  (hub/inbound/ingest.py). Rows from before this revision take their `created_at`, which the
  ingest wrote in the same statement as the webhook's arrival.
- `integration.is_active` defaults to FALSE, as the blueprint says: an integration becomes
  active when its connection is established (a successful connection check) or when an admin
  enables it (hub/integrations.py, hub/connection_check.py). Existing rows keep their value.
- `sync_log.heartbeat_at`: a running sync touches it every few seconds (hub/sync_log.py), so the
  sweeper sensor closes the row of a process that died without anyone telling Dagster (a killed
  `dagster asset materialize`) within minutes, not after the 6 h run limit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:30:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('external_order', sa.Column('external_status', sa.Text(), nullable=True))
    op.add_column('external_order', sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE external_order SET received_at = created_at"))
    op.alter_column('external_order', 'received_at', nullable=False, server_default=sa.text('now()'))
    op.alter_column('integration', 'is_active', server_default=sa.text('false'))
    op.add_column('sync_log', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_sync_log_open_by_heartbeat', 'sync_log', ['heartbeat_at'],
                    postgresql_where=sa.text("status = 'started'"))


def downgrade() -> None:
    op.drop_index('ix_sync_log_open_by_heartbeat', table_name='sync_log', postgresql_where=sa.text("status = 'started'"))
    op.drop_column('sync_log', 'heartbeat_at')
    op.alter_column('integration', 'is_active', server_default=sa.text('true'))
    op.drop_column('external_order', 'received_at')
    op.drop_column('external_order', 'external_status')
