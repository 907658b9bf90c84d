"""OAuth connects in flight: `oauth_state`.

Why (hub/connect): the settings pages connect QuickBooks, Xero, Procore and Slack by the
authorization-code flow. The `state` sent to the provider must be unguessable, bound to the
browser session, single-use and short-lived (RFC 9700), and must survive the round trip
through the provider across web workers: so it lives here, as a hash, with the session's
hash, the user, the company, the provider, the integration being reconnected (if any) and
the PKCE verifier (encrypted). A callback consumes the row atomically (`consumed_at`); a
provider whose grant covers several accounts keeps the exchanged grant (encrypted, in
`pending`) until the person picks one (`picked_at`).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07 18:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_state',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('state_hash', sa.Text(), nullable=False),
    sa.Column('session_hash', sa.Text(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('integration_name', sa.Text(), nullable=True),
    sa.Column('code_verifier', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('pending', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('picked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_oauth_state_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_oauth_state_integration_id_integration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_oauth_state_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_state')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oauth_state_state_hash'))
    )
    op.create_index('ix_oauth_state_created_at', 'oauth_state', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_oauth_state_created_at', table_name='oauth_state')
    op.drop_table('oauth_state')
