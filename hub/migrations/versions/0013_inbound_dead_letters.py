"""Poison webhooks (issue 15 item 9): `inbound_dead_letter` keeps every verified delivery the
receiver refuses with a 4xx (not JSON, too deep, not the provider's envelope, ids it cannot
key on, data the database refuses), byte for byte with its headers minus credentials (once
per integration and body: a provider's retries count as attempts), so nothing a provider sent is lost and an operator can see it (`hub webhooks dead-letters`) and
replay it after a fix; `inbound_event.raw_body` keeps the exact body of an event whose text
had to be made storable (a NUL, a lone surrogate, bytes that are not UTF-8).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 21:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# as hub.schema.DEAD_LETTER_REASONS on the day this revision was written
REASONS = ("not_json", "too_deep", "not_envelope", "bad_id", "refused_by_database", "unexpected")


def upgrade() -> None:
    op.add_column('inbound_event', sa.Column('raw_body', sa.LargeBinary(), nullable=True))
    op.create_table(
        'inbound_dead_letter',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('integration_id', sa.BigInteger(), nullable=False),
        sa.Column('endpoint_id', sa.BigInteger(), nullable=True),
        sa.Column('provider', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('body_sha256', sa.LargeBinary(), nullable=False),
        sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
        sa.Column('last_received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replay_result', sa.Text(), nullable=True),
        sa.CheckConstraint("reason IN (" + ", ".join(f"'{r}'" for r in REASONS) + ")", name=op.f('ck_inbound_dead_letter_reason')),
        sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_inbound_dead_letter_integration_id_integration'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_inbound_dead_letter_endpoint_id_webhook_endpoint'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_dead_letter')),
        sa.UniqueConstraint('integration_id', 'body_sha256', name=op.f('uq_inbound_dead_letter_integration_id_body_sha256')),
    )
    op.create_index('ix_inbound_dead_letter_integration', 'inbound_dead_letter', ['integration_id', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_dead_letter_integration', table_name='inbound_dead_letter')
    op.drop_table('inbound_dead_letter')
    op.drop_column('inbound_event', 'raw_body')
