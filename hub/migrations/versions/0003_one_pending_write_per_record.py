"""One pending write per record: the idempotency ledger's pending index becomes unique.

Why: two export runs racing on one bill each began a pending write and each created the bill
(hub/sync/write_ledger.py, hub/sync/export.py). With at most one `pending` row per (integration,
entity, local id), the second of two identical writes is refused by the database.

Before the index, any record that already has several pending rows keeps its newest one;
the older ones are closed as failed with the reason (they were superseded: a later attempt
of the same record was begun while their outcome was unknown).

Generated from hub.schema with alembic autogenerate against a database at 0002, then tidied
(the settling step added) and frozen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:56:37.127478
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("""
        UPDATE sync_write AS w
        SET status = 'failed', updated_at = now(),
            error = 'superseded before its outcome was known: a later write of the record was begun (migration 0003)'
        WHERE w.status = 'pending'
          AND EXISTS (SELECT 1 FROM sync_write n
                      WHERE n.status = 'pending' AND n.integration_id = w.integration_id AND n.entity_type = w.entity_type
                        AND n.local_id = w.local_id AND n.id > w.id)
    """))
    op.drop_index('ix_sync_write_pending', table_name='sync_write', postgresql_where=sa.text("status = 'pending'"))
    op.create_index('uq_sync_write_pending', 'sync_write', ['integration_id', 'entity_type', 'local_id'], unique=True,
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('uq_sync_write_pending', table_name='sync_write', postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_sync_write_pending', 'sync_write', ['integration_id', 'entity_type', 'local_id'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))
