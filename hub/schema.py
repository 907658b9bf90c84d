"""The hub schema as SQLAlchemy Core tables.

Queries in `hub/` are written against these objects. The database itself is built only by
the Alembic revisions in `hub/migrations/versions/` (never `create_all` on a live
database); a test compares this module with the migrated database so the two cannot drift.

Seed-to-table mapping (the two seed documents are the restaurant "blueprint" and the
settings "view plan"; every seed column exists here under its seed name):

| table | blueprint | view plan | added by the hub |
|---|---|---|---|
| company | - | company_id (tenant of every row) | name, timezone, created_at |
| integration | integration: id, name, integration_type, provider, is_active, config, credentials, last_sync_at, created_at | integrations: company_id, provider, status, config, last_sync_at, error_message, created_at, updated_at | config/credentials are encrypted envelopes |
| webhook_endpoint | webhook_endpoint: id, integration_id, url, secret, events, is_active, created_at | webhooks: company_id, name, url, events, secret, is_active, retry_policy, last_triggered_at | direction, payload_options, failure counters, secret rotation times; `secret` is encrypted, not hashed |
| webhook_delivery | - | "delivery logs": status, response code, duration, response body, next attempt | attempt number, webhook-id |
| external_order | external_order: id, integration_id, external_id, order_id, status, external_status, raw_data, received_at, created_at, synced_at | - | status_history, processed flag for the commit-safe claim |
| pos_order | order (target of external_order.order_id) | - | items, totals, customer |
| sync_log | sync_log: id, integration_id, sync_type, status, records_processed, errors, started_at, completed_at | integration_logs: action, direction, entity_type, status, details | dagster_run_id, heartbeat_at |
| vendor, customer, invoice, invoice_line, gl_account, account_mapping, project, rfi, submittal, daily_log, document | - | "data synced" | provenance: integration_id, remote_id, remote_version, synced_at; invoices are payable (bills, vendor_id) or receivable (sales invoices, customer_id) |
| external_ref, sync_cursor, outbox_event, inbound_event | - | - | id map, per-stream cursors, outbox, raw inbound events |
| inbound_dead_letter | - | - | verified webhooks refused as poison (not JSON, too deep, not the envelope, unusable ids, refused by the database): the raw body, headers without credentials, the reason; listed and replayed by `hub webhooks dead-letters` |
| sync_conflict, sync_write | - | - | two-way sync: unsettled field conflicts, the idempotency ledger of writes to providers |
| notification_route, notification_message, provider_template | - | Slack "channel mapping, notification routing, message formatting"; SendGrid / Twilio "sender / phone number, templates, delivery tracking" | a route is an outbound `webhook_endpoint` plus its rendering; one message row per recipient and event (provider id, status); synced SendGrid templates (hub/notify) |
| app_user, membership, login_attempt | - | "behind a login": users with argon2id password hashes, membership per company with a role (admin, viewer) | emails stored lower-case (unique case-insensitively); failed sign-ins kept in the database so the throttle holds across web workers (hub/auth) |
| ai_model, ai_suggestion, ai_feedback, ai_setting, ai_task_setting, ai_usage | - | AI page: "AI processing preferences, confidence thresholds, learning feedback, cost monitoring" | a model per integration and task (signed pickle, held-out evaluation), suggestions with their probability, action and source, feedback for the next training, per-company settings, monthly metering (hub/ai) |
| ai_external_setting, ai_external_call | - | AI page: cost monitoring | the optional external model (an OpenAI-compatible API; key encrypted, token prices, monthly budget) and one metered row per call, reserved before it under the budget's hard cap (hub/ai) |
| oauth_state | - | "OAuth connection" (connect, reconnect) | one row per started connect: the state's hash bound to the session, user and company, the PKCE verifier and, between the code exchange and the account pick, the grant, both encrypted; single use, 10 minutes (hub/connect) |
| rate_budget | - | - | a provider account's published rate limit, counted once for every process (hub/providers/shared_budget.py; the function `rate_budget_take` of migration 0011 spends from it) |
| billing_settings, billing_account, billing_invoice | - | Stripe: "platform subscription billing" | the operator's Stripe account and dunning grace (no row: billing off); each company's subscription and invoices mirrored from Stripe, re-read on every webhook and nightly (hub/billing) |

Value sets from the seeds are CHECK constraints; they are listed once here and used by
both this module and the migrations.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

# ---- value sets (seed vocabularies) -------------------------------------------------
INTEGRATION_TYPES = (
    "delivery",
    "accounting",
    "payroll",
    "reservation",
    "marketing",
    "payment",
    "project_management",
    "communication",
    "productivity",
)
INTEGRATION_STATUSES = ("pending", "connected", "syncing", "error", "disconnected")
EXTERNAL_ORDER_STATUSES = (
    "received",
    "accepted",
    "rejected",
    "preparing",
    "ready",
    "picked_up",
    "delivered",
    "cancelled",
)
POS_ORDER_STATUSES = ("open", "in_progress", "ready", "completed", "cancelled")
SYNC_DIRECTIONS = ("inbound", "outbound")  # inbound = import, outbound = export
SYNC_STATUSES = ("started", "completed", "failed")
WEBHOOK_DIRECTIONS = ("inbound", "outbound")
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
INVOICE_STATUSES = ("draft", "submitted", "authorised", "paid", "voided", "deleted")
CONFLICT_STATUSES = ("open", "resolved")
WRITE_OPERATIONS = ("create", "update", "delete", "void", "upload")
WRITE_STATUSES = ("pending", "succeeded", "failed")
NOTIFY_KINDS = ("slack", "email", "sms")  # channel kinds of a notification route (Slack, SendGrid, Twilio)
# one notification message to one recipient: ours first (sending .. accepted), then what the provider reports
# why a verified webhook was refused and kept in inbound_dead_letter (hub/inbound/payload.py)
DEAD_LETTER_REASONS = ("not_json", "too_deep", "not_envelope", "bad_id", "refused_by_database", "unexpected")
ROLES = ("admin", "viewer")  # a member's role in a company: admins change, viewers read (hub/auth)
AI_TASKS = ("line_coding", "account_mapping", "vendor_match")  # hub/ai
AI_ACTIONS = ("auto_applied", "suggested", "none")  # at or above the high threshold / between low and high / below low
AI_SUGGESTION_STATUSES = ("open", "accepted", "rejected", "corrected")
AI_VERDICTS = ("accept", "reject", "correct")
AI_MODES = ("auto", "suggest")  # auto-apply at the high threshold, or only ever suggest
AI_SOURCES = ("local", "external")  # the hub's own model, or the company's external model (an OpenAI-compatible API)
AI_CALL_OUTCOMES = ("pending", "ok", "invalid_answer", "error", "refused_budget")  # hub/ai/external_budget.py
NOTIFY_STATUSES = ("sending", "unknown", "not_sent", "refused", "accepted", "processed", "deferred", "sent",
                   "delivered", "bounced", "dropped", "undelivered", "failed")


def in_set(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that `column` takes one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column:
    return Column("id", BigInteger, Identity(), primary_key=True)


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _company_fk() -> Column:
    return Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), nullable=False)


def _provenance() -> list:
    """Where a synced row came from: integration, remote id and version, time of sync."""
    return [
        Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="SET NULL")),
        Column("remote_id", Text),
        Column("remote_version", Text),
        Column("synced_at", DateTime(timezone=True)),
    ]


def _two_way() -> list:
    """For rows synced both ways: the field values both sides agreed on at the last sync (the
    base of a three-way merge: a field differing from it was changed on that side), and why
    the last export of the row did not go through (shown to the user, cleared on success)."""
    return [Column("synced_values", JSONB), Column("sync_error", Text)]


company = Table(
    "company",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False, server_default="UTC"),
    _created_at(),
    UniqueConstraint("name"),
)

integration = Table(
    "integration",
    metadata,
    _id(),
    _company_fk(),
    Column("name", Text, nullable=False),
    Column("integration_type", Text, nullable=False),
    Column("provider", Text, nullable=False),
    # inactive until its connection is established (a connection check passes) or an admin
    # enables it (blueprint default FALSE; migration 0006)
    Column("is_active", Boolean, nullable=False, server_default=text("false")),
    Column("status", Text, nullable=False, server_default="pending"),
    # encrypted envelopes {"v", "kid", "n", "ct"}; see hub/crypto.py
    Column("config", JSONB, nullable=False),
    Column("credentials", JSONB, nullable=False),
    Column("last_sync_at", DateTime(timezone=True)),
    Column("error_message", Text),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(in_set("integration_type", INTEGRATION_TYPES), name="integration_type"),
    CheckConstraint(in_set("status", INTEGRATION_STATUSES), name="status"),
    UniqueConstraint("company_id", "name"),
)

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE")),
    Column("direction", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("url", Text),
    Column("secret", JSONB),  # encrypted envelope: an HMAC key cannot be checked against a hash
    Column("events", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("retry_policy", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("payload_options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("disabled_reason", Text),
    Column("last_triggered_at", DateTime(timezone=True)),
    _created_at(),
    # not secret: when the signing secret was last rotated and until when the previous one
    # still signs (the secrets themselves are only in `secret`; migration 0010)
    Column("secret_rotated_at", DateTime(timezone=True)),
    Column("previous_secret_until", DateTime(timezone=True)),
    CheckConstraint(in_set("direction", WEBHOOK_DIRECTIONS), name="direction"),
    # inbound endpoints belong to the integration that calls us; outbound ones need a URL
    CheckConstraint(
        "(direction = 'inbound' AND integration_id IS NOT NULL) OR (direction = 'outbound' AND url IS NOT NULL)",
        name="direction_target",
    ),
    UniqueConstraint("company_id", "name"),
)

outbox_event = Table(
    "outbox_event",
    metadata,
    _id(),
    _company_fk(),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _created_at(),
    Column("dispatched_at", DateTime(timezone=True)),
    Index("ix_outbox_event_undispatched", "created_at", postgresql_where=text("dispatched_at IS NULL")),
)

webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    _id(),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False),
    Column("outbox_event_id", BigInteger, ForeignKey("outbox_event.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("message_id", Text, nullable=False),  # the webhook-id header, equal across attempts
    Column("status", Text, nullable=False),
    Column("response_code", Integer),
    Column("duration_ms", Integer),
    Column("response_body", Text),  # capped by the dispatcher
    Column("error", Text),
    _created_at(),
    Column("next_attempt_at", DateTime(timezone=True)),
    CheckConstraint(in_set("status", DELIVERY_STATUSES), name="status"),
    UniqueConstraint("endpoint_id", "outbox_event_id", "attempt"),
    # the dispatcher's claim: due pending attempts (without it the claim reads the whole
    # delivery history; bench/results/outbound_dispatch_index.md; migration 0004)
    Index("ix_webhook_delivery_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
)

pos_order = Table(
    "pos_order",
    metadata,
    _id(),
    _company_fk(),
    Column("order_number", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("source", Text, nullable=False, server_default="pos"),
    Column("customer", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("items", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("subtotal_cents", BigInteger, nullable=False, server_default="0"),
    Column("tax_cents", BigInteger, nullable=False, server_default="0"),
    Column("tip_cents", BigInteger, nullable=False, server_default="0"),
    Column("fees_cents", BigInteger, nullable=False, server_default="0"),
    Column("total_cents", BigInteger, nullable=False, server_default="0"),
    Column("currency", Text, nullable=False, server_default="USD"),
    _created_at(),
    CheckConstraint(in_set("status", POS_ORDER_STATUSES), name="status"),
    UniqueConstraint("company_id", "order_number"),
)

external_order = Table(
    "external_order",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("order_id", BigInteger, ForeignKey("pos_order.id", ondelete="SET NULL")),
    Column("status", Text, nullable=False, server_default="received"),
    Column("external_status", Text),  # the provider's own status string, last seen (verbatim; migration 0006)
    Column("raw_data", JSONB, nullable=False),
    Column("status_history", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("processed", Boolean, nullable=False, server_default=text("false")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),  # the webhook's arrival
    _created_at(),
    Column("synced_at", DateTime(timezone=True)),
    CheckConstraint(in_set("status", EXTERNAL_ORDER_STATUSES), name="status"),
    UniqueConstraint("integration_id", "external_id"),  # webhook dedupe
    Index("ix_external_order_unprocessed", "id", postgresql_where=text("NOT processed")),  # the sensor's claim queue
)

inbound_event = Table(
    "inbound_event",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("provider", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("processed_at", DateTime(timezone=True)),
    # the body exactly as received, kept only when `payload` had to differ from it to be
    # storable (a NUL or a lone surrogate in a string, bytes that are not UTF-8: hub/inbound/payload.py)
    Column("raw_body", LargeBinary),
    UniqueConstraint("integration_id", "event_id"),  # webhook dedupe on the provider's event id
    # what the order job and the notification status tracker poll for (migration 0004)
    Index("ix_inbound_event_unprocessed", "id", postgresql_where=text("processed_at IS NULL")),
)

inbound_dead_letter = Table(
    "inbound_dead_letter",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoint.id", ondelete="SET NULL")),
    Column("provider", Text, nullable=False),
    Column("reason", Text, nullable=False),  # one of DEAD_LETTER_REASONS: what to fix before a replay
    Column("detail", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),  # the verified body, byte for byte
    # a provider retrying a refused body (Stripe does, for days) adds an attempt, not a row
    Column("body_sha256", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),  # as received (the latest attempt's), without credentials (hub/inbound/dead_letters.py)
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("last_received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("replayed_at", DateTime(timezone=True)),  # stored as events by `hub webhooks dead-letters replay`
    Column("replay_result", Text),
    CheckConstraint(in_set("reason", DEAD_LETTER_REASONS), name="reason"),
    UniqueConstraint("integration_id", "body_sha256"),
    Index("ix_inbound_dead_letter_integration", "integration_id", "received_at"),
)

sync_log = Table(
    "sync_log",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("sync_type", Text, nullable=False),  # blueprint name, e.g. "full", "incremental", "check"
    Column("action", Text, nullable=False),  # view-plan name, e.g. "import_vendors"
    Column("direction", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="started"),
    Column("records_processed", Integer, nullable=False, server_default="0"),
    Column("records_failed", Integer, nullable=False, server_default="0"),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("dagster_run_id", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    # touched every few seconds while the sync runs, cleared at its close: a stale one means the
    # process died (the sweeper closes it; hub/sync_log.py; migration 0006)
    Column("heartbeat_at", DateTime(timezone=True)),
    CheckConstraint(in_set("direction", SYNC_DIRECTIONS), name="direction"),
    CheckConstraint(in_set("status", SYNC_STATUSES), name="status"),
    CheckConstraint("(status = 'started') = (completed_at IS NULL)", name="completed_at"),
    Index("ix_sync_log_open_by_run", "dagster_run_id", postgresql_where=text("status = 'started'")),
    # the sync history page (migration 0008): newest first with a keyset on (started_at, id),
    # and the 30-day chart read from the index alone (its sums are INCLUDEd)
    Index("ix_sync_log_history", "integration_id", "started_at", "id",
          postgresql_include=["sync_type", "records_processed", "records_failed"]),
    Index("ix_sync_log_failed", "integration_id", "started_at", "id", postgresql_where=text("status = 'failed'")),
    Index("ix_sync_log_run", "dagster_run_id", "integration_id"),  # a run's rows (the sync-now progress)
    Index("ix_sync_log_open_by_heartbeat", "heartbeat_at", postgresql_where=text("status = 'started'")),
)

sync_cursor = Table(
    "sync_cursor",
    metadata,
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("stream", Text, nullable=False),
    Column("value", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("integration_id", "stream"),
)

external_ref = Table(
    "external_ref",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("local_id", BigInteger, nullable=False),
    Column("remote_id", Text, nullable=False),
    Column("remote_version", Text),  # e.g. QuickBooks SyncToken
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("integration_id", "entity_type", "local_id"),
    UniqueConstraint("integration_id", "entity_type", "remote_id"),
)


# ---- synced entities ("data synced" in the view plan) -------------------------------
def _party(name: str) -> Table:
    """A vendor (who bills the company) or a customer (whom the company invoices): the same
    shape, synced both ways alike (hub/sync/vendors.py), one table each because each ledger
    keeps them apart (QuickBooks `Vendor` and `Customer` ids are separate sequences; a Xero
    contact can be both, one row in each table; migration 0012)."""
    return Table(
        name,
        metadata,
        _id(),
        _company_fk(),
        Column("display_name", Text, nullable=False),
        Column("legal_name", Text),
        Column("email", Text),
        Column("phone", Text),
        Column("tax_id", Text),
        Column("address", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("is_active", Boolean, nullable=False, server_default=text("true")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        *_provenance(),
        *_two_way(),
        _created_at(),
        UniqueConstraint("integration_id", "remote_id"),
    )


vendor = _party("vendor")
customer = _party("customer")

gl_account = Table(
    "gl_account",
    metadata,
    _id(),
    _company_fk(),
    Column("code", Text),
    Column("name", Text, nullable=False),
    Column("account_type", Text, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    *_provenance(),
    _created_at(),
    UniqueConstraint("integration_id", "remote_id"),
)

account_mapping = Table(
    "account_mapping",
    metadata,
    _id(),
    _company_fk(),
    Column("local_category", Text, nullable=False),  # the hub's own expense/revenue category
    Column("gl_account_id", BigInteger, ForeignKey("gl_account.id", ondelete="CASCADE"), nullable=False),
    Column("confidence", Numeric(4, 3)),  # set when suggested by the AI assist
    Column("source", Text, nullable=False, server_default="manual"),
    *_provenance(),
    _created_at(),
    CheckConstraint(in_set("source", ("manual", "suggested", "imported")), name="source"),
    UniqueConstraint("integration_id", "local_category"),
)

invoice = Table(
    "invoice",
    metadata,
    _id(),
    _company_fk(),
    Column("vendor_id", BigInteger, ForeignKey("vendor.id", ondelete="RESTRICT")),  # payables: who bills us
    Column("kind", Text, nullable=False, server_default="payable"),
    Column("number", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date),
    Column("currency", Text, nullable=False, server_default="USD"),
    Column("subtotal", Numeric(14, 2), nullable=False, server_default="0"),
    Column("tax", Numeric(14, 2), nullable=False, server_default="0"),
    Column("total", Numeric(14, 2), nullable=False, server_default="0"),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_provenance(),
    *_two_way(),
    _created_at(),
    Column("customer_id", BigInteger, ForeignKey("customer.id", ondelete="RESTRICT")),  # receivables: whom we bill (0012)
    CheckConstraint(in_set("kind", ("payable", "receivable")), name="kind"),
    CheckConstraint(in_set("status", INVOICE_STATUSES), name="status"),
    # a bill names a vendor, a sales invoice a customer, never the other (migration 0012)
    CheckConstraint("(kind = 'payable' AND customer_id IS NULL) OR (kind = 'receivable' AND vendor_id IS NULL)", name="party"),
    # numbers are unique within one ledger: the hub's own (integration NULL) or one provider's,
    # so a company on QuickBooks and Xero can hold INV-0001 from each
    UniqueConstraint("company_id", "integration_id", "kind", "number", postgresql_nulls_not_distinct=True),
    # remote ids are unique per kind: QuickBooks numbers Bill and Invoice ids apart, so Bill 7
    # and Invoice 7 are two records (migration 0012)
    UniqueConstraint("integration_id", "kind", "remote_id"),
)

invoice_line = Table(
    "invoice_line",
    metadata,
    _id(),
    Column("invoice_id", BigInteger, ForeignKey("invoice.id", ondelete="CASCADE"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("description", Text),
    Column("category", Text),  # mapped to a remote account through account_mapping
    Column("quantity", Numeric(14, 4), nullable=False, server_default="1"),
    Column("unit_amount", Numeric(14, 2), nullable=False, server_default="0"),
    Column("amount", Numeric(14, 2), nullable=False, server_default="0"),
    Column("gl_account_id", BigInteger, ForeignKey("gl_account.id", ondelete="SET NULL")),
    UniqueConstraint("invoice_id", "line_no"),
)

project = Table(
    "project",
    metadata,
    _id(),
    _company_fk(),
    Column("name", Text, nullable=False),
    Column("code", Text),
    Column("status", Text),
    Column("linked_at", DateTime(timezone=True)),  # set when linked to a Procore project
    *_provenance(),
    _created_at(),
    UniqueConstraint("integration_id", "remote_id"),
)


def _project_child(name: str, *columns: Column) -> Table:
    """RFIs, submittals and daily logs share shape: a project, provenance, payload."""
    return Table(
        name,
        metadata,
        _id(),
        _company_fk(),
        Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
        *columns,
        Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("remote_updated_at", DateTime(timezone=True)),
        *_provenance(),
        _created_at(),
        UniqueConstraint("integration_id", "remote_id"),
    )


rfi = _project_child(
    "rfi", Column("number", Text), Column("subject", Text, nullable=False), Column("status", Text), Column("due_date", Date)
)
submittal = _project_child(
    "submittal", Column("number", Text), Column("title", Text, nullable=False), Column("status", Text), Column("due_date", Date)
)
daily_log = _project_child(
    "daily_log", Column("log_date", Date, nullable=False), Column("log_type", Text, nullable=False), Column("notes", Text)
)
document = _project_child(
    "document",
    Column("filename", Text, nullable=False),
    Column("content_type", Text),
    Column("size_bytes", BigInteger),
    Column("sha256", Text),
    Column("content", LargeBinary),  # the file to share; large files belong in object storage later
)

# ---- two-way sync bookkeeping ---------------------------------------------------------
sync_conflict = Table(
    "sync_conflict",
    metadata,
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("local_id", BigInteger, nullable=False),
    Column("remote_id", Text),
    Column("field", Text, nullable=False),
    Column("base_value", JSONB),  # the value both sides had at the last sync
    Column("local_value", JSONB),
    Column("remote_value", JSONB),
    Column("status", Text, nullable=False, server_default="open"),
    Column("resolution", Text),  # e.g. "kept_local", "took_remote"
    _created_at(),
    Column("resolved_at", DateTime(timezone=True)),
    CheckConstraint(in_set("status", CONFLICT_STATUSES), name="status"),
    # one open conflict per field: a later sync updates it rather than piling up rows
    Index("uq_sync_conflict_open", "integration_id", "entity_type", "local_id", "field", unique=True,
          postgresql_where=text("status = 'open'")),
)

sync_write = Table(
    "sync_write",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("local_id", BigInteger, nullable=False),
    Column("operation", Text, nullable=False),
    # sent as QuickBooks `requestid` / Xero `Idempotency-Key`, equal across retries of one write
    Column("request_key", Text, nullable=False),
    Column("payload_hash", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("remote_id", Text),
    Column("remote_version", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(in_set("operation", WRITE_OPERATIONS), name="operation"),
    CheckConstraint(in_set("status", WRITE_STATUSES), name="status"),
    UniqueConstraint("integration_id", "request_key"),
    # one write per record in flight: a second pending row would be a second send (migration 0003)
    Index("uq_sync_write_pending", "integration_id", "entity_type", "local_id", unique=True,
          postgresql_where=text("status = 'pending'")),
)

# ---- notifications (hub/notify; migration 0004) ------------------------------------------
notification_route = Table(
    "notification_route",
    metadata,
    # a route IS an outbound webhook_endpoint (events, retry policy, delivery log, disable);
    # this row holds only what a notification adds: which integration, whom, how it looks
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), primary_key=True),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("target", Text),  # Slack: the channel id (rate limits and dedupe key on it)
    Column("target_name", Text),  # Slack: the channel name, for people
    Column("recipients", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # email addresses / phone numbers
    Column("template", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created_at(),
    CheckConstraint(in_set("kind", NOTIFY_KINDS), name="kind"),
    CheckConstraint("kind <> 'slack' OR target IS NOT NULL", name="slack_target"),
)

notification_message = Table(
    "notification_message",
    metadata,
    _id(),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False),
    Column("outbox_event_id", BigInteger, ForeignKey("outbox_event.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", Text, nullable=False),  # the delivery's webhook-id (SendGrid custom arg hub_message_id)
    Column("recipient", Text, nullable=False),  # Slack channel id, email address or phone number
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("provider", Text, nullable=False),
    # the attempt that last tried to send it: written before the provider call, so a crash
    # mid-call leaves 'sending' behind and the next claim knows the outcome is unknown
    Column("delivery_id", BigInteger, ForeignKey("webhook_delivery.id", ondelete="SET NULL")),
    Column("status", Text, nullable=False),
    Column("provider_message_id", Text),  # Slack ts, SendGrid X-Message-Id, Twilio MessageSid
    Column("detail", Text),  # why not sent / refused / bounced (safe to show)
    Column("history", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # statuses the provider reported
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(in_set("status", NOTIFY_STATUSES), name="status"),
    UniqueConstraint("endpoint_id", "outbox_event_id", "recipient"),  # one message per recipient, across attempts
    Index("ix_notification_message_provider_id", "integration_id", "provider_message_id"),
    Index("ix_notification_message_message_id", "message_id"),
)

provider_template = Table(
    "provider_template",
    metadata,
    _id(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("template_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("generation", Text),
    Column("subject", Text),  # of the active version
    Column("active_version_id", Text),
    Column("remote_updated_at", Text),  # as the provider wrote it
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("integration_id", "template_id"),
)

# ---- users of the settings pages (hub/auth; migration 0005) -------------------------------
app_user = Table(
    "app_user",
    metadata,
    _id(),
    # stored lower-case (hub/auth/users.py normalises), so a plain unique key is case-insensitive
    Column("email", Text, nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, in the PHC string format
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created_at(),
    Column("last_login_at", DateTime(timezone=True)),
    CheckConstraint("email = lower(email)", name="email_lower"),
    UniqueConstraint("email"),
)

membership = Table(
    "membership",
    metadata,
    _id(),
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
    _company_fk(),
    Column("role", Text, nullable=False),
    _created_at(),
    CheckConstraint(in_set("role", ROLES), name="role"),
    UniqueConstraint("user_id", "company_id"),
)

login_attempt = Table(
    "login_attempt",
    metadata,
    # one failed sign-in; the throttle counts the recent ones per account and per address
    _id(),
    Column("email", Text, nullable=False),  # as typed, lower-cased: unknown accounts are throttled too
    Column("address", Text, nullable=False),  # the client's IP address
    _created_at(),
    Index(None, "email", "created_at"),
    Index(None, "address", "created_at"),
)

# ---- OAuth connects in flight (hub/connect/oauth_state.py; migration 0007) -------------------
oauth_state = Table(
    "oauth_state",
    metadata,
    _id(),
    Column("state_hash", Text, nullable=False),  # SHA-256 of the `state` sent to the provider (the value itself is never stored)
    Column("session_hash", Text, nullable=False),  # SHA-256 of the browser session's id: another session cannot finish it
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
    _company_fk(),
    Column("provider", Text, nullable=False),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE")),  # a reconnect; NULL: a new one
    Column("integration_name", Text),
    Column("code_verifier", JSONB),  # PKCE verifier, an encrypted envelope (hub/crypto.py)
    Column("pending", JSONB),  # after the code exchange, awaiting the account pick: the grant, encrypted
    _created_at(),
    Column("consumed_at", DateTime(timezone=True)),  # the callback used it (single use)
    Column("picked_at", DateTime(timezone=True)),  # the account pick used the pending grant
    UniqueConstraint("state_hash"),
    Index(None, "created_at"),
)

# ---- platform billing: the hub's operator bills each company through Stripe (hub/billing/) ----
SUBSCRIPTION_STATUSES = ("none", "incomplete", "incomplete_expired", "trialing", "active", "past_due", "unpaid",
                         "canceled", "paused")

billing_settings = Table(
    "billing_settings",
    metadata,
    # one row: the operator's Stripe account (a Stripe integration holding its API key and
    # webhook secret) and the dunning grace; no row: billing is off and nothing is enforced
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("stripe_integration_id", BigInteger, ForeignKey("integration.id", ondelete="RESTRICT"), nullable=False),
    Column("grace_days", Integer, nullable=False, server_default=text("14")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("grace_days >= 0", name="grace_days"),
)

billing_account = Table(
    "billing_account",
    metadata,
    # a company's subscription as Stripe last said (hub/billing/mirror.py re-reads it on every
    # event and nightly): a mirror, never the source
    Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), primary_key=True),
    Column("stripe_customer_id", Text, nullable=False),
    Column("subscription_id", Text),
    Column("status", Text, nullable=False, server_default="none"),
    Column("plan_key", Text),  # the plan of the subscription's price lookup key (hub/billing/plans.py)
    Column("interval", Text),
    Column("quantity", Integer),
    Column("trial_end", DateTime(timezone=True)),
    Column("current_period_end", DateTime(timezone=True)),
    Column("cancel_at_period_end", Boolean, nullable=False, server_default=text("false")),
    Column("canceled_at", DateTime(timezone=True)),
    Column("past_due_since", DateTime(timezone=True)),  # start of the dunning grace; NULL when paid up
    Column("had_trial", Boolean, nullable=False, server_default=text("false")),
    Column("payment_method", JSONB),  # {brand, last4, exp_month, exp_year}: nothing more of a card
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(in_set("status", SUBSCRIPTION_STATUSES), name="status"),
    UniqueConstraint("stripe_customer_id"),
)

billing_invoice = Table(
    "billing_invoice",
    metadata,
    Column("stripe_invoice_id", Text, primary_key=True),
    _company_fk(),
    Column("number", Text),
    Column("status", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_due", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=False),
    Column("hosted_invoice_url", Text),
    Column("invoice_pdf", Text),
    Column("period_start", DateTime(timezone=True)),
    Column("period_end", DateTime(timezone=True)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "company_id", "created"),
)

# ---- provider rate budgets shared by every process (hub/providers/shared_budget.py; migration 0011) ----
rate_budget = Table(
    "rate_budget",
    metadata,
    Column("provider", Text, nullable=False),
    Column("account", Text, nullable=False),  # realm, tenant, company id: the account the provider's limit is per
    Column("window_name", Text, nullable=False),  # "minute", "hour", "day" (the spec's `Limit.name`)
    Column("calls", Integer, nullable=False),
    Column("per_seconds", Double, nullable=False),  # the provider's window plus a margin for the delay to it
    Column("slots", ARRAY(Integer), nullable=False),  # calls per 1/60 of the window, oldest first, 61 of them
    Column("head", BigInteger, nullable=False),  # the newest slot's number: epoch seconds // slot length
    Column("blocked_until", DateTime(timezone=True)),  # the provider said stop (429 Retry-After, remaining 0)
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("calls > 0 AND per_seconds > 0", name="positive"),
    PrimaryKeyConstraint("provider", "account", "window_name"),
    prefixes=["UNLOGGED"],  # counts are not worth a WAL flush per provider call; emptied by a crash, then re-registered
)

# ---- AI assist (hub/ai; migration 0015) --------------------------------------------------------
ai_model = Table(
    "ai_model",
    metadata,
    # one trained model of one integration for one task; the newest version is the one used
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("task", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("trained_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("training_size", Integer, nullable=False),
    Column("evaluation", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # held-out metrics (hub/ai/evaluation.py)
    Column("cpu_seconds", Numeric(12, 3), nullable=False, server_default="0"),
    Column("model", LargeBinary, nullable=False),  # a pickle the hub wrote, loaded only if `signature` verifies
    Column("signature", Text, nullable=False),  # HMAC-SHA256 of `model` under a key derived from HUB_SECRET_KEYS
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
    UniqueConstraint("integration_id", "task", "version"),
)

ai_suggestion = Table(
    "ai_suggestion",
    metadata,
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("task", Text, nullable=False),
    Column("model_id", BigInteger, ForeignKey("ai_model.id", ondelete="SET NULL")),
    Column("subject_type", Text, nullable=False),  # invoice_line, account_mapping (a category), vendor
    Column("subject_id", BigInteger),  # the row suggested for, when it has one
    Column("input_key", Text, nullable=False),  # the input's identity for feedback (hub/ai/features.py input_key)
    Column("input", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("value", Text),  # the suggested answer: a gl_account id, a remote vendor id
    Column("label", Text),  # the answer as people read it
    Column("probability", Numeric(5, 4)),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    _created_at(),
    Column("decided_at", DateTime(timezone=True)),
    Column("source", Text, nullable=False, server_default="local"),  # who answered: the hub's model or the external one (0016)
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
    CheckConstraint(in_set("action", AI_ACTIONS), name="action"),
    CheckConstraint(in_set("status", AI_SUGGESTION_STATUSES), name="status"),
    CheckConstraint(in_set("source", AI_SOURCES), name="source"),
    Index(None, "integration_id", "task", "status"),
    Index(None, "subject_type", "subject_id"),
)

ai_feedback = Table(
    "ai_feedback",
    metadata,
    # what a person said about a suggestion (or about an input directly); the next training reads it
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="CASCADE"), nullable=False),
    Column("task", Text, nullable=False),
    Column("suggestion_id", BigInteger, ForeignKey("ai_suggestion.id", ondelete="SET NULL")),
    Column("input_key", Text, nullable=False),
    Column("input", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("verdict", Text, nullable=False),
    Column("suggested", Text),  # the answer judged
    Column("correct_value", Text),  # the right answer (accept: the suggested one; correct: the person's)
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")),
    _created_at(),
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
    CheckConstraint(in_set("verdict", AI_VERDICTS), name="verdict"),
    CheckConstraint("verdict <> 'correct' OR correct_value IS NOT NULL", name="correction_value"),
    Index(None, "integration_id", "task", "input_key"),
)

ai_setting = Table(
    "ai_setting",
    metadata,
    # per company: which integrations the assist works on (NULL: all) and the price of its CPU time
    Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), primary_key=True),
    Column("integration_ids", JSONB),
    Column("price_per_cpu_hour", Numeric(10, 4), nullable=False, server_default="0.05"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

ai_task_setting = Table(
    "ai_task_setting",
    metadata,
    # per company and task: on/off, auto-apply or suggest-only, the two thresholds
    Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), nullable=False),
    Column("task", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("mode", Text, nullable=False, server_default="auto"),
    Column("threshold_low", Numeric(4, 3), nullable=False, server_default="0.5"),
    Column("threshold_high", Numeric(4, 3), nullable=False, server_default="0.9"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("company_id", "task"),
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
    CheckConstraint(in_set("mode", AI_MODES), name="mode"),
    CheckConstraint("threshold_low >= 0 AND threshold_low <= threshold_high AND threshold_high <= 1", name="thresholds"),
)

ai_usage = Table(
    "ai_usage",
    metadata,
    # metering per company, task and month: predictions made, trainings run, CPU seconds spent
    Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), nullable=False),
    Column("task", Text, nullable=False),
    Column("month", Date, nullable=False),  # the first day of the month (UTC)
    Column("predictions", BigInteger, nullable=False, server_default="0"),
    Column("training_runs", Integer, nullable=False, server_default="0"),
    Column("cpu_seconds", Numeric(14, 3), nullable=False, server_default="0"),
    PrimaryKeyConstraint("company_id", "task", "month"),
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
)

ai_external_setting = Table(
    "ai_external_setting",
    metadata,
    # per company: the optional external model (an OpenAI-compatible chat API) for lines the hub's own model is unsure
    # of, its token prices and monthly budget (hub/ai/external_settings.py; migration 0016)
    _id(),  # key rotation (hub/stored_secrets.py) walks encrypted columns by `id`
    Column("company_id", BigInteger, ForeignKey("company.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, server_default=text("false")),
    Column("base_url", Text, nullable=False, server_default=""),
    Column("api_key", JSONB),  # an encrypted envelope (hub/crypto.py)
    Column("model", Text, nullable=False, server_default=""),
    Column("price_input_per_1k", Numeric(12, 6), nullable=False, server_default="0"),
    Column("price_output_per_1k", Numeric(12, 6), nullable=False, server_default="0"),
    Column("monthly_budget", Numeric(12, 4), nullable=False, server_default="0"),
    Column("notified_month", Date),  # the month whose 80% notice went out (once per company-month)
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("price_input_per_1k >= 0 AND price_output_per_1k >= 0 AND monthly_budget >= 0", name="not_negative"),
)

ai_external_call = Table(
    "ai_external_call",
    metadata,
    # one call to the external model, metered: written `pending` with its worst-case cost reserved before the call,
    # settled after it with the tokens the provider reported (hub/ai/external_budget.py)
    _id(),
    _company_fk(),
    Column("integration_id", BigInteger, ForeignKey("integration.id", ondelete="SET NULL")),
    Column("task", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("lines", Integer, nullable=False, server_default="0"),  # lines asked about
    Column("answered", Integer, nullable=False, server_default="0"),  # answers kept (an account of the chart)
    Column("refused", Integer, nullable=False, server_default="0"),  # answers refused (an account not in the chart, ...)
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("reserved", Numeric(14, 6), nullable=False, server_default="0"),  # the worst case held while pending
    Column("cost", Numeric(14, 6), nullable=False, server_default="0"),
    Column("outcome", Text, nullable=False),
    Column("detail", Text),  # a sentence for a person: what went wrong (never a secret)
    _created_at(),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(in_set("task", AI_TASKS), name="task"),
    CheckConstraint(in_set("outcome", AI_CALL_OUTCOMES), name="outcome"),
    Index(None, "company_id", "created_at"),
)

ENCRYPTED_COLUMNS: tuple[tuple[Table, str], ...] = (
    (integration, "config"),
    (integration, "credentials"),
    (webhook_endpoint, "secret"),
    (oauth_state, "code_verifier"),
    (oauth_state, "pending"),
    (ai_external_setting, "api_key"),
)
"""Every column holding an encrypted envelope; key rotation walks exactly these."""
