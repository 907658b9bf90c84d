"""Two-way sync: the conflict table, the idempotency ledger of provider writes, the merge
base (`synced_values`) and last export error of vendors and invoices, document content;
invoice numbers unique per ledger (company, integration, kind) rather than per company.

Generated from hub.schema with alembic autogenerate, then frozen.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:53:31.981103
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_conflict',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('field', sa.Text(), nullable=False),
    sa.Column('base_value', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('local_value', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('remote_value', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.Text(), server_default='open', nullable=False),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f('ck_sync_conflict_status')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_sync_conflict_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_sync_conflict_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_conflict'))
    )
    op.create_index('uq_sync_conflict_open', 'sync_conflict', ['integration_id', 'entity_type', 'local_id', 'field'], unique=True, postgresql_where=sa.text("status = 'open'"))
    op.create_table('sync_write',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('local_id', sa.BigInteger(), nullable=False),
    sa.Column('operation', sa.Text(), nullable=False),
    sa.Column('request_key', sa.Text(), nullable=False),
    sa.Column('payload_hash', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False),
    sa.Column('remote_id', sa.Text(), nullable=True),
    sa.Column('remote_version', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("operation IN ('create', 'update', 'delete', 'void', 'upload')", name=op.f('ck_sync_write_operation')),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_sync_write_status')),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_sync_write_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_write')),
    sa.UniqueConstraint('integration_id', 'request_key', name=op.f('uq_sync_write_integration_id_request_key'))
    )
    op.create_index('ix_sync_write_pending', 'sync_write', ['integration_id', 'entity_type', 'local_id'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.add_column('document', sa.Column('content', sa.LargeBinary(), nullable=True))
    op.drop_constraint('uq_invoice_company_id_kind_number', 'invoice', type_='unique')
    op.create_unique_constraint(op.f('uq_invoice_company_id_integration_id_kind_number'), 'invoice',
                                ['company_id', 'integration_id', 'kind', 'number'], postgresql_nulls_not_distinct=True)
    op.add_column('invoice', sa.Column('synced_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('invoice', sa.Column('sync_error', sa.Text(), nullable=True))
    op.add_column('vendor', sa.Column('synced_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('vendor', sa.Column('sync_error', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('vendor', 'sync_error')
    op.drop_column('vendor', 'synced_values')
    op.drop_column('invoice', 'sync_error')
    op.drop_column('invoice', 'synced_values')
    op.drop_constraint('uq_invoice_company_id_integration_id_kind_number', 'invoice', type_='unique')
    op.create_unique_constraint('uq_invoice_company_id_kind_number', 'invoice', ['company_id', 'kind', 'number'])
    op.drop_column('document', 'content')
    op.drop_index('ix_sync_write_pending', table_name='sync_write', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('sync_write')
    op.drop_index('uq_sync_conflict_open', table_name='sync_conflict', postgresql_where=sa.text("status = 'open'"))
    op.drop_table('sync_conflict')
