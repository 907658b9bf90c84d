"""Platform billing (hub/billing/): `billing_settings` (the operator's Stripe account and the
dunning grace; no row means billing is off), `billing_account` (each company's subscription
as Stripe last said: a mirror re-read from the API on every event and nightly) and
`billing_invoice` (its invoices with their hosted links).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 20:37:57.080963
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_account',
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('stripe_customer_id', sa.Text(), nullable=False),
    sa.Column('subscription_id', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default='none', nullable=False),
    sa.Column('plan_key', sa.Text(), nullable=True),
    sa.Column('interval', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('trial_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('current_period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('past_due_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('had_trial', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('payment_method', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('none', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused')", name=op.f('ck_billing_account_status')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_billing_account_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_billing_account')),
    sa.UniqueConstraint('stripe_customer_id', name=op.f('uq_billing_account_stripe_customer_id'))
    )
    op.create_table('billing_invoice',
    sa.Column('stripe_invoice_id', sa.Text(), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('amount_due', sa.BigInteger(), nullable=False),
    sa.Column('amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('hosted_invoice_url', sa.Text(), nullable=True),
    sa.Column('invoice_pdf', sa.Text(), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_billing_invoice_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('stripe_invoice_id', name=op.f('pk_billing_invoice'))
    )
    op.create_index(op.f('ix_billing_invoice_company_id_created'), 'billing_invoice', ['company_id', 'created'], unique=False)
    op.create_table('billing_settings',
    sa.Column('id', sa.SmallInteger(), server_default=sa.text('1'), nullable=False),
    sa.Column('stripe_integration_id', sa.BigInteger(), nullable=False),
    sa.Column('grace_days', sa.Integer(), server_default=sa.text('14'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('grace_days >= 0', name=op.f('ck_billing_settings_grace_days')),
    sa.CheckConstraint('id = 1', name=op.f('ck_billing_settings_single_row')),
    sa.ForeignKeyConstraint(['stripe_integration_id'], ['integration.id'], name=op.f('fk_billing_settings_stripe_integration_id_integration'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_settings'))
    )


def downgrade() -> None:
    op.drop_table('billing_settings')
    op.drop_index(op.f('ix_billing_invoice_company_id_created'), table_name='billing_invoice')
    op.drop_table('billing_invoice')
    op.drop_table('billing_account')
