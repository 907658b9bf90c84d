"""When an outbound endpoint's signing secret was last rotated, and until when the old one
still signs: plain (not secret) times, so the webhooks settings page can say "set, rotated
<time>; the previous secret signs until <time>" without decrypting the secret envelope
(which stays the only source the signatures come from; hub/outbound/signing.py).

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-07 17:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('webhook_endpoint', sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('webhook_endpoint', sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('webhook_endpoint', 'previous_secret_until')
    op.drop_column('webhook_endpoint', 'secret_rotated_at')
