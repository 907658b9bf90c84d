"""Receivables: customers (QuickBooks `Customer`, Xero contacts with IsCustomer) in a table of
their own, shaped as `vendor`; an invoice's customer (`invoice.customer_id`, receivables only:
a bill names a vendor, a sales invoice a customer); and invoice remote ids unique per kind,
because QuickBooks numbers `Bill` and `Invoice` ids apart (Bill 7 and Invoice 7 are two
records of one ledger). Sales invoices become an entity type of their own (`sales_invoice`)
in external_ref, sync_conflict and sync_write.

Downgrade drops the customers and the column; hub/migrate.py refuses it if that would lose
rows or values, unless forced. Restoring the old unique key fails (and rolls back) while a
bill and a sales invoice share a remote id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer',
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
    sa.Column('synced_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_customer_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_customer_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer')),
    sa.UniqueConstraint('integration_id', 'remote_id', name=op.f('uq_customer_integration_id_remote_id'))
    )
    op.add_column('invoice', sa.Column('customer_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_invoice_customer_id_customer'), 'invoice', 'customer', ['customer_id'], ['id'], ondelete='RESTRICT')
    op.create_check_constraint(op.f('ck_invoice_party'), 'invoice',
                               "(kind = 'payable' AND customer_id IS NULL) OR (kind = 'receivable' AND vendor_id IS NULL)")
    op.drop_constraint('uq_invoice_integration_id_remote_id', 'invoice', type_='unique')
    op.create_unique_constraint(op.f('uq_invoice_integration_id_kind_remote_id'), 'invoice', ['integration_id', 'kind', 'remote_id'])
    _move_receivables('invoice', 'sales_invoice')


def _move_receivables(old: str, new: str) -> None:
    """Sales invoices are their own entity type from here on (`sales_invoice`): the id map,
    open conflicts and ledger rows an earlier import wrote for Xero ACCREC invoices under
    `invoice` move with them (and back on downgrade)."""
    for table in ('external_ref', 'sync_conflict', 'sync_write'):
        op.execute(sa.text(f"UPDATE {table} SET entity_type = :new WHERE entity_type = :old "
                           "AND local_id IN (SELECT id FROM invoice WHERE kind = 'receivable')").bindparams(old=old, new=new))


def downgrade() -> None:
    _move_receivables('sales_invoice', 'invoice')
    op.drop_constraint('uq_invoice_integration_id_kind_remote_id', 'invoice', type_='unique')
    op.create_unique_constraint('uq_invoice_integration_id_remote_id', 'invoice', ['integration_id', 'remote_id'])
    op.drop_constraint(op.f('ck_invoice_party'), 'invoice', type_='check')
    op.drop_constraint('fk_invoice_customer_id_customer', 'invoice', type_='foreignkey')
    op.drop_column('invoice', 'customer_id')
    op.drop_table('customer')
