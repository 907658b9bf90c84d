"""Indexes for the settings pages' sync history (hub/web/sync_history.py) and "sync now"
progress (hub/web/sections/sync.py), which must stay fast with a million sync_log rows.

- `ix_sync_log_history` (integration_id, started_at, id) INCLUDE (sync_type,
  records_processed, records_failed) replaces (integration_id, started_at): the history
  page reads the newest rows of one integration in (started_at, id) order with a keyset
  (`(started_at, id) < (…)`), a stable order even when two rows share a start time, and the
  chart sums records and failures per day from the index alone (an index-only scan).
  Every earlier use of the old index (one integration's rows, by start time) is served by
  the new one.
- `ix_sync_log_failed` (partial, status 'failed'): the history filtered to failures, which
  are rare, without walking the integration's successful rows.
- `ix_sync_log_run` (dagster_run_id, integration_id): a run's rows, whatever their status
  (the existing `ix_sync_log_open_by_run` holds open rows only), read every two seconds
  while the page follows a run.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-07 17:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_sync_log_history', 'sync_log', ['integration_id', 'started_at', 'id'], unique=False,
                    postgresql_include=['sync_type', 'records_processed', 'records_failed'])
    op.drop_index('ix_sync_log_integration_id_started_at', table_name='sync_log')
    op.create_index('ix_sync_log_failed', 'sync_log', ['integration_id', 'started_at', 'id'], unique=False,
                    postgresql_where=sa.text("status = 'failed'"))
    op.create_index('ix_sync_log_run', 'sync_log', ['dagster_run_id', 'integration_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sync_log_run', table_name='sync_log')
    op.drop_index('ix_sync_log_failed', table_name='sync_log', postgresql_where=sa.text("status = 'failed'"))
    op.create_index('ix_sync_log_integration_id_started_at', 'sync_log', ['integration_id', 'started_at'], unique=False)
    op.drop_index('ix_sync_log_history', table_name='sync_log')
