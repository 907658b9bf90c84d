"""AI assist's optional external model: per-company settings (an OpenAI-compatible chat API,
its key encrypted, token prices, a monthly budget), one metered row per call, and where a
suggestion came from.

Why: issue 14's cost monitoring meters an external model "per call" (tokens and cost) under a
monthly budget that is a hard cap. A call's row is written *before* the call with its
worst-case cost reserved (outcome `pending`), under a lock of the company's settings row, and
settled after it, so concurrent scorers cannot together spend past the budget
(hub/ai/external_budget.py). `notified_month` makes the 80% notice once per company-month.
`ai_suggestion.source` says whether the hub's own model or the external one answered.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

OUTCOMES = "outcome IN ('pending', 'ok', 'invalid_answer', 'error', 'refused_budget')"


def upgrade() -> None:
    op.create_table('ai_external_setting',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('base_url', sa.Text(), server_default='', nullable=False),
    sa.Column('api_key', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('model', sa.Text(), server_default='', nullable=False),
    sa.Column('price_input_per_1k', sa.Numeric(12, 6), server_default='0', nullable=False),
    sa.Column('price_output_per_1k', sa.Numeric(12, 6), server_default='0', nullable=False),
    sa.Column('monthly_budget', sa.Numeric(12, 4), server_default='0', nullable=False),
    sa.Column('notified_month', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('price_input_per_1k >= 0 AND price_output_per_1k >= 0 AND monthly_budget >= 0',
                       name=op.f('ck_ai_external_setting_not_negative')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_ai_external_setting_company_id_company'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_external_setting')),
    sa.UniqueConstraint('company_id', name=op.f('uq_ai_external_setting_company_id'))
    )
    op.create_table('ai_external_call',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=True),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('lines', sa.Integer(), server_default='0', nullable=False),
    sa.Column('answered', sa.Integer(), server_default='0', nullable=False),
    sa.Column('refused', sa.Integer(), server_default='0', nullable=False),
    sa.Column('input_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('output_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reserved', sa.Numeric(14, 6), server_default='0', nullable=False),
    sa.Column('cost', sa.Numeric(14, 6), server_default='0', nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("task IN ('line_coding', 'account_mapping', 'vendor_match')", name=op.f('ck_ai_external_call_task')),
    sa.CheckConstraint(OUTCOMES, name=op.f('ck_ai_external_call_outcome')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_ai_external_call_company_id_company'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_ai_external_call_integration_id_integration'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_external_call'))
    )
    op.create_index('ix_ai_external_call_company_id_created_at', 'ai_external_call', ['company_id', 'created_at'])
    op.add_column('ai_suggestion', sa.Column('source', sa.Text(), server_default='local', nullable=False))
    op.create_check_constraint(op.f('ck_ai_suggestion_source'), 'ai_suggestion', "source IN ('local', 'external')")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_ai_suggestion_source'), 'ai_suggestion', type_='check')
    op.drop_column('ai_suggestion', 'source')
    op.drop_index('ix_ai_external_call_company_id_created_at', table_name='ai_external_call')
    op.drop_table('ai_external_call')
    op.drop_table('ai_external_setting')
