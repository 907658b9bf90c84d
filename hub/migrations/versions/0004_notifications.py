"""Notifications: routes, one message row per recipient, synced provider templates; the
outbound dispatcher's index of due attempts.

Why each piece (hub/notify):
- `notification_route`: a notification route is an outbound `webhook_endpoint` (so fan-out,
  leases, retries, the delivery log, replay and auto-disable are the webhook machinery's);
  this 1:1 row adds what a notification needs and a webhook does not: the integration that
  sends it, the Slack channel or the recipients, and the message template.
- `notification_message`: one row per (route, event, recipient), written *before* the
  provider is called. Slack, SendGrid and Twilio sends are not idempotent, so a send whose
  outcome is unknown (timeout, crash mid-call) must be recorded, not blindly retried; the
  row also carries the provider's message id (Slack ts, SendGrid X-Message-Id, Twilio
  MessageSid) that delivery-status webhooks are matched on, and the status they report.
- `provider_template`: SendGrid dynamic templates pulled into the hub, to list and to check a
  route's template id against.
- `ix_inbound_event_unprocessed`: the status tracker (and the order job) poll for inbound
  events not yet applied; without it every poll scans the table.

Generated from hub.schema with alembic autogenerate against a database at 0003, then tidied
and frozen.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:14:57.058110
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_template',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('template_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('generation', sa.Text(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('active_version_id', sa.Text(), nullable=True),
    sa.Column('remote_updated_at', sa.Text(), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_provider_template_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_template')),
    sa.UniqueConstraint('integration_id', 'template_id', name=op.f('uq_provider_template_integration_id_template_id'))
    )
    op.create_table('notification_route',
    sa.Column('endpoint_id', sa.BigInteger(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('target_name', sa.Text(), nullable=True),
    sa.Column('recipients', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('template', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind <> 'slack' OR target IS NOT NULL", name=op.f('ck_notification_route_slack_target')),
    sa.CheckConstraint("kind IN ('slack', 'email', 'sms')", name=op.f('ck_notification_route_kind')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_notification_route_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_notification_route_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_notification_route'))
    )
    op.create_table('notification_message',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('endpoint_id', sa.BigInteger(), nullable=False),
    sa.Column('outbox_event_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('integration_id', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('provider_message_id', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('history', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('sending', 'unknown', 'not_sent', 'refused', 'accepted', 'processed', 'deferred', 'sent', 'delivered', 'bounced', 'dropped', 'undelivered', 'failed')", name=op.f('ck_notification_message_status')),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], name=op.f('fk_notification_message_delivery_id_webhook_delivery'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_notification_message_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_notification_message_integration_id_integration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_event_id'], ['outbox_event.id'], name=op.f('fk_notification_message_outbox_event_id_outbox_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_message')),
    sa.UniqueConstraint('endpoint_id', 'outbox_event_id', 'recipient', name=op.f('uq_notification_message_endpoint_id_outbox_event_id_recipient'))
    )
    op.create_index('ix_notification_message_message_id', 'notification_message', ['message_id'], unique=False)
    op.create_index('ix_notification_message_provider_id', 'notification_message', ['integration_id', 'provider_message_id'], unique=False)
    op.create_index('ix_inbound_event_unprocessed', 'inbound_event', ['id'], unique=False, postgresql_where=sa.text('processed_at IS NULL'))
    op.create_index('ix_webhook_delivery_due', 'webhook_delivery', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    # a route's delivery channel is an outbound endpoint (slack://, sendgrid://, twilio://) that
    # only the route's table makes sense of: without it the endpoint would stay active and fail
    # every delivery, so it goes with its route (hub.migrate reports these rows as lost)
    op.execute(sa.text("DELETE FROM webhook_endpoint WHERE id IN (SELECT endpoint_id FROM notification_route)"))
    op.drop_index('ix_webhook_delivery_due', table_name='webhook_delivery', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_inbound_event_unprocessed', table_name='inbound_event', postgresql_where=sa.text('processed_at IS NULL'))
    op.drop_index('ix_notification_message_provider_id', table_name='notification_message')
    op.drop_index('ix_notification_message_message_id', table_name='notification_message')
    op.drop_table('notification_message')
    op.drop_table('notification_route')
    op.drop_table('provider_template')
