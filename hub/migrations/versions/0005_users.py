"""Users of the settings pages: accounts, memberships, failed sign-ins.

Why each piece (hub/auth):
- `app_user`: a person who signs in to the settings pages, with an argon2id password hash.
  Emails are stored lower-case (checked), so the plain unique key is case-insensitive.
- `membership`: which companies a user sees and with which role (`admin` changes,
  `viewer` reads); every page is scoped to one of them.
- `login_attempt`: one row per failed sign-in. The throttle counts the recent rows per
  account and per client address; in the database, not in a worker's memory, because the
  web app runs several workers and an attacker is spread across them.

Generated from hub.schema with alembic autogenerate against a database at 0004, then tidied
and frozen.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 15:20:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_app_user_email_lower')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('email', name=op.f('uq_app_user_email'))
    )
    op.create_table('membership',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'viewer')", name=op.f('ck_membership_role')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_membership_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_membership_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('user_id', 'company_id', name=op.f('uq_membership_user_id_company_id'))
    )
    op.create_table('login_attempt',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    op.create_index('ix_login_attempt_email_created_at', 'login_attempt', ['email', 'created_at'], unique=False)
    op.create_index('ix_login_attempt_address_created_at', 'login_attempt', ['address', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_attempt_address_created_at', table_name='login_attempt')
    op.drop_index('ix_login_attempt_email_created_at', table_name='login_attempt')
    op.drop_table('login_attempt')
    op.drop_table('membership')
    op.drop_table('app_user')
