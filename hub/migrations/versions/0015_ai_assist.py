"""AI assist: trained models per integration and task, their suggestions, people's feedback,
per-company settings and monthly usage (hub/ai).

Why: the AI page configures processing preferences, confidence thresholds, learning feedback
and cost monitoring (issue 14). A model is a signed pickle the hub wrote (`signature`, an
HMAC under a key derived from HUB_SECRET_KEYS), stored with its version, training size and
held-out evaluation; suggestions keep their probability and the action taken (auto-applied,
suggested, none); feedback (accept / reject / correct) feeds the next training; usage rows
meter predictions, trainings and CPU seconds per task and month.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TASKS = "task IN ('line_coding', 'account_mapping', 'vendor_match')"


def _company(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f(f'fk_{table}_company_id_company'), ondelete='CASCADE')


def _integration(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f(f'fk_{table}_integration_id_integration'),
                                   ondelete='CASCADE')


def upgrade() -> None:
    op.create_table('ai_model',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trained_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('training_size', sa.Integer(), nullable=False),
    sa.Column('evaluation', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('cpu_seconds', sa.Numeric(12, 3), server_default='0', nullable=False),
    sa.Column('model', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.CheckConstraint(TASKS, name=op.f('ck_ai_model_task')),
    _company('ai_model'), _integration('ai_model'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_model')),
    sa.UniqueConstraint('integration_id', 'task', 'version', name=op.f('uq_ai_model_integration_id_task_version'))
    )
    op.create_table('ai_suggestion',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=True),
    sa.Column('subject_type', sa.Text(), nullable=False),
    sa.Column('subject_id', sa.BigInteger(), nullable=True),
    sa.Column('input_key', sa.Text(), nullable=False),
    sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('probability', sa.Numeric(5, 4), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='open', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(TASKS, name=op.f('ck_ai_suggestion_task')),
    sa.CheckConstraint("action IN ('auto_applied', 'suggested', 'none')", name=op.f('ck_ai_suggestion_action')),
    sa.CheckConstraint("status IN ('open', 'accepted', 'rejected', 'corrected')", name=op.f('ck_ai_suggestion_status')),
    _company('ai_suggestion'), _integration('ai_suggestion'),
    sa.ForeignKeyConstraint(['model_id'], ['ai_model.id'], name=op.f('fk_ai_suggestion_model_id_ai_model'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_suggestion'))
    )
    op.create_index('ix_ai_suggestion_integration_id_task_status', 'ai_suggestion', ['integration_id', 'task', 'status'])
    op.create_index('ix_ai_suggestion_subject_type_subject_id', 'ai_suggestion', ['subject_type', 'subject_id'])
    op.create_table('ai_feedback',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('suggestion_id', sa.BigInteger(), nullable=True),
    sa.Column('input_key', sa.Text(), nullable=False),
    sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('verdict', sa.Text(), nullable=False),
    sa.Column('suggested', sa.Text(), nullable=True),
    sa.Column('correct_value', sa.Text(), nullable=True),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint(TASKS, name=op.f('ck_ai_feedback_task')),
    sa.CheckConstraint("verdict IN ('accept', 'reject', 'correct')", name=op.f('ck_ai_feedback_verdict')),
    sa.CheckConstraint("verdict <> 'correct' OR correct_value IS NOT NULL", name=op.f('ck_ai_feedback_correction_value')),
    _company('ai_feedback'), _integration('ai_feedback'),
    sa.ForeignKeyConstraint(['suggestion_id'], ['ai_suggestion.id'], name=op.f('fk_ai_feedback_suggestion_id_ai_suggestion'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_ai_feedback_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_feedback'))
    )
    op.create_index('ix_ai_feedback_integration_id_task_input_key', 'ai_feedback', ['integration_id', 'task', 'input_key'])
    op.create_table('ai_setting',
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('price_per_cpu_hour', sa.Numeric(10, 4), server_default='0.05', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    _company('ai_setting'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_ai_setting'))
    )
    op.create_table('ai_task_setting',
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('mode', sa.Text(), server_default='auto', nullable=False),
    sa.Column('threshold_low', sa.Numeric(4, 3), server_default='0.5', nullable=False),
    sa.Column('threshold_high', sa.Numeric(4, 3), server_default='0.9', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint(TASKS, name=op.f('ck_ai_task_setting_task')),
    sa.CheckConstraint("mode IN ('auto', 'suggest')", name=op.f('ck_ai_task_setting_mode')),
    sa.CheckConstraint('threshold_low >= 0 AND threshold_low <= threshold_high AND threshold_high <= 1',
                       name=op.f('ck_ai_task_setting_thresholds')),
    _company('ai_task_setting'),
    sa.PrimaryKeyConstraint('company_id', 'task', name=op.f('pk_ai_task_setting'))
    )
    op.create_table('ai_usage',
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('task', sa.Text(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('predictions', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('training_runs', sa.Integer(), server_default='0', nullable=False),
    sa.Column('cpu_seconds', sa.Numeric(14, 3), server_default='0', nullable=False),
    sa.CheckConstraint(TASKS, name=op.f('ck_ai_usage_task')),
    _company('ai_usage'),
    sa.PrimaryKeyConstraint('company_id', 'task', 'month', name=op.f('pk_ai_usage'))
    )


def downgrade() -> None:
    op.drop_table('ai_usage')
    op.drop_table('ai_task_setting')
    op.drop_table('ai_setting')
    op.drop_index('ix_ai_feedback_integration_id_task_input_key', table_name='ai_feedback')
    op.drop_table('ai_feedback')
    op.drop_index('ix_ai_suggestion_subject_type_subject_id', table_name='ai_suggestion')
    op.drop_index('ix_ai_suggestion_integration_id_task_status', table_name='ai_suggestion')
    op.drop_table('ai_suggestion')
    op.drop_table('ai_model')
