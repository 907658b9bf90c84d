"""Initial schema: every table of DESIGN section 4 (see hub/schema.py for the seed mapping).

Generated from hub.schema with alembic autogenerate, then frozen: later schema
changes are new revisions, never edits here.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 00:37:59.514750
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('company',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('timezone', sa.Text(), server_default='UTC', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company')),
    sa.UniqueConstraint('name', name=op.f('uq_company_name'))
    )
    op.create_table('integration',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('integration_type', sa.Text(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('credentials', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("integration_type IN ('delivery', 'accounting', 'payroll', 'reservation', 'marketing', 'payment', 'project_management', 'communication', 'productivity')", name=op.f('ck_integration_integration_type')),
    sa.CheckConstraint("status IN ('pending', 'connected', 'syncing', 'error', 'disconnected')", name=op.f('ck_integration_status')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_integration_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration')),
    sa.UniqueConstraint('company_id', 'name', name=op.f('uq_integration_company_id_name'))
    )
    op.create_table('outbox_event',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_outbox_event_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_event'))
    )
    op.create_index('ix_outbox_event_undispatched', 'outbox_event', ['created_at'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'))
    op.create_table('pos_order',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('order_number', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='open', nullable=False),
    sa.Column('source', sa.Text(), server_default='pos', nullable=False),
    sa.Column('customer', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('items', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('subtotal_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('tax_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('tip_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('fees_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('total_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('currency', sa.Text(), server_default='USD', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'ready', 'completed', 'cancelled')", name=op.f('ck_pos_order_status')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_pos_order_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pos_order')),
    sa.UniqueConstraint('company_id', 'order_number', name=op.f('uq_pos_order_company_id_order_number'))
    )
    op.create_table('external_order',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Text(), server_default='received', nullable=False),
    sa.Column('raw_data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status_history', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('processed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('received', 'accepted', 'rejected', 'preparing', 'ready', 'picked_up', 'delivered', 'cancelled')", name=op.f('ck_external_order_status')),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_external_order_integration_id_integration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['pos_order.id'], name=op.f('fk_external_order_order_id_pos_order'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_order')),
    sa.UniqueConstraint('integration_id', 'external_id', name=op.f('uq_external_order_integration_id_external_id'))
    )
    op.create_index('ix_external_order_unprocessed', 'external_order', ['id'], unique=False, postgresql_where=sa.text('NOT processed'))
    op.create_table('external_ref',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('remote_id', sa.Text(), nullable=False),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_external_ref_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_ref')),
    sa.UniqueConstraint('integration_id', 'entity_type', 'local_id', name=op.f('uq_external_ref_integration_id_entity_type_local_id')),
    sa.UniqueConstraint('integration_id', 'entity_type', 'remote_id', name=op.f('uq_external_ref_integration_id_entity_type_remote_id'))
    )
    op.create_table('gl_account',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('account_type', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_gl_account_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_gl_account_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gl_account')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_gl_account_integration_id_remote_id'))
    )
    op.create_table('inbound_event',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_inbound_event_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_event')),
    sa.UniqueConstraint('integration_id', 'event_id', name=op.f('uq_inbound_event_integration_id_event_id'))
    )
    op.create_table('project',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_project_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_project_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_project_integration_id_remote_id'))
    )
    op.create_table('sync_cursor',
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('stream', sa.Text(), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_sync_cursor_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('integration_id', 'stream', name=op.f('pk_sync_cursor'))
    )
    op.create_table('sync_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('sync_type', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('direction', sa.Text(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='started', nullable=False),
    sa.Column('records_processed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('records_failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('dagster_run_id', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'started') = (completed_at IS NULL)", name=op.f('ck_sync_log_completed_at')),
    sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f('ck_sync_log_direction')),
    sa.CheckConstraint("status IN ('started', 'completed', 'failed')", name=op.f('ck_sync_log_status')),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_sync_log_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_log'))
    )
    op.create_index(op.f('ix_sync_log_integration_id_started_at'), 'sync_log', ['integration_id', 'started_at'], unique=False)
    op.create_index('ix_sync_log_open_by_run', 'sync_log', ['dagster_run_id'], unique=False, postgresql_where=sa.text("status = 'started'"))
    op.create_table('vendor',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('legal_name', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('tax_id', sa.Text(), nullable=True),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_vendor_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_vendor_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vendor')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_vendor_integration_id_remote_id'))
    )
    op.create_table('webhook_endpoint',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('direction', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('secret', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('events', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('retry_policy', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('payload_options', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('last_triggered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(direction = 'inbound' AND integration_id IS NOT NULL) OR (direction = 'outbound' AND url IS NOT NULL)", name=op.f('ck_webhook_endpoint_direction_target')),
    sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f('ck_webhook_endpoint_direction')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_webhook_endpoint_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_webhook_endpoint_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint')),
    sa.UniqueConstraint('company_id', 'name', name=op.f('uq_webhook_endpoint_company_id_name'))
    )
    op.create_table('account_mapping',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('local_category', sa.Text(), nullable=False),
    sa.Column('gl_account_id', sa.BigInteger(), nullable=False),
    sa.Column('confidence', sa.Numeric(precision=4, scale=3), nullable=True),
    sa.Column('source', sa.Text(), server_default='manual', nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source IN ('manual', 'suggested', 'imported')", name=op.f('ck_account_mapping_source')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_account_mapping_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['gl_account_id'], ['gl_account.id'], name=op.f('fk_account_mapping_gl_account_id_gl_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_account_mapping_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_mapping')),
    sa.UniqueConstraint('integration_id', 'local_category', name=op.f('uq_account_mapping_integration_id_local_category'))
    )
    op.create_table('daily_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('log_date', sa.Date(), nullable=False),
    sa.Column('log_type', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('remote_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_daily_log_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_daily_log_integration_id_integration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_daily_log_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_log')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_daily_log_integration_id_remote_id'))
    )
    op.create_table('document',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('content_type', sa.Text(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.Text(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('remote_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_document_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_document_integration_id_integration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_document_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_document_integration_id_remote_id'))
    )
    op.create_table('invoice',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('vendor_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.Text(), server_default='payable', nullable=False),
    sa.Column('number', sa.Text(), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('currency', sa.Text(), server_default='USD', nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('tax', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('status', sa.Text(), server_default='draft', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('payable', 'receivable')", name=op.f('ck_invoice_kind')),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'authorised', 'paid', 'voided', 'deleted')", name=op.f('ck_invoice_status')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_invoice_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_invoice_integration_id_integration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['vendor_id'], ['vendor.id'], name=op.f('fk_invoice_vendor_id_vendor'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('company_id', 'kind', 'number', name=op.f('uq_invoice_company_id_kind_number')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_invoice_integration_id_remote_id'))
    )
    op.create_table('rfi',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Text(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('remote_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_rfi_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_rfi_integration_id_integration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_rfi_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rfi')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_rfi_integration_id_remote_id'))
    )
    op.create_table('submittal',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('remote_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_submittal_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_submittal_integration_id_integration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_submittal_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submittal')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_submittal_integration_id_remote_id'))
    )
    op.create_table('webhook_delivery',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('endpoint_id', sa.BigInteger(), nullable=False),
    sa.Column('outbox_event_id', sa.BigInteger(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('response_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_webhook_delivery_status')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_webhook_delivery_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_event_id'], ['outbox_event.id'], name=op.f('fk_webhook_delivery_outbox_event_id_outbox_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    sa.UniqueConstraint('endpoint_id', 'outbox_event_id', 'attempt', name=op.f('uq_webhook_delivery_endpoint_id_outbox_event_id_attempt'))
    )
    op.create_table('invoice_line',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('category', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=14, scale=4), server_default='1', nullable=False),
    sa.Column('unit_amount', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('gl_account_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['gl_account_id'], ['gl_account.id'], name=op.f('fk_invoice_line_gl_account_id_gl_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_invoice_line_invoice_id_invoice'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_line')),
    sa.UniqueConstraint('invoice_id', 'line_no', name=op.f('uq_invoice_line_invoice_id_line_no'))
    )


def downgrade() -> None:
    op.drop_table('invoice_line')
    op.drop_table('webhook_delivery')
    op.drop_table('submittal')
    op.drop_table('rfi')
    op.drop_table('invoice')
    op.drop_table('document')
    op.drop_table('daily_log')
    op.drop_table('account_mapping')
    op.drop_table('webhook_endpoint')
    op.drop_table('vendor')
    op.drop_index('ix_sync_log_open_by_run', table_name='sync_log', postgresql_where=sa.text("status = 'started'"))
    op.drop_index(op.f('ix_sync_log_integration_id_started_at'), table_name='sync_log')
    op.drop_table('sync_log')
    op.drop_table('sync_cursor')
    op.drop_table('project')
    op.drop_table('inbound_event')
    op.drop_table('gl_account')
    op.drop_table('external_ref')
    op.drop_index('ix_external_order_unprocessed', table_name='external_order', postgresql_where=sa.text('NOT processed'))
    op.drop_table('external_order')
    op.drop_table('pos_order')
    op.drop_index('ix_outbox_event_undispatched', table_name='outbox_event', postgresql_where=sa.text('dispatched_at IS NULL'))
    op.drop_table('outbox_event')
    op.drop_table('integration')
    op.drop_table('company')
