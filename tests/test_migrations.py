"""Migrations on a real PostgreSQL database: up, down, up; schema module agrees; seed
columns, CHECK value sets and dedupe keys are present."""

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub import db, migrate, schema


@pytest.fixture
def scratch_url(server_url):
    url = server_url.set(database=f"hub_mig_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    yield url
    db.engine(url).dispose()
    db.drop_database(url)


def _tables(url) -> set[str]:
    with db.engine(url).connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(scratch_url):
    assert _tables(scratch_url) == set()
    assert migrate.upgrade(scratch_url) == migrate.head()
    assert _tables(scratch_url) == set(schema.metadata.tables)
    assert migrate.downgrade(scratch_url, "base") is None
    assert _tables(scratch_url) == set()
    assert migrate.upgrade(scratch_url) == migrate.head()
    assert _tables(scratch_url) == set(schema.metadata.tables)


def test_schema_module_matches_migrated_database(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, schema.metadata) == []


# Every column the two seed documents name, table by table: the blueprint's tables as it
# writes them, and the view plan's fields under the names the hub gives them (the mapping
# table in hub/schema.py's docstring). The seeds' complete lists: a seed column the schema
# lacks fails here.
BLUEPRINT_COLUMNS = {
    "integration": {"id", "name", "integration_type", "provider", "is_active", "config", "credentials", "last_sync_at",
                    "created_at"},
    "webhook_endpoint": {"id", "integration_id", "url", "secret", "events", "is_active", "created_at"},
    "external_order": {"id", "integration_id", "external_id", "order_id", "status", "external_status", "raw_data",
                       "received_at", "created_at", "synced_at"},
    "pos_order": {"id"},  # the blueprint's `order`, target of external_order.order_id
    "sync_log": {"id", "integration_id", "sync_type", "status", "records_processed", "errors", "started_at",
                 "completed_at"},
}
VIEW_PLAN_COLUMNS = {
    "company": {"id"},  # the view plan's company_id, the tenant
    "integration": {"company_id", "provider", "status", "config", "last_sync_at", "error_message", "created_at",
                    "updated_at"},  # "integrations"
    "webhook_endpoint": {"company_id", "name", "url", "events", "secret", "is_active", "retry_policy",
                         "last_triggered_at"},  # "webhooks"
    "webhook_delivery": {"status", "response_code", "duration_ms", "response_body", "next_attempt_at"},  # "delivery logs"
    "sync_log": {"action", "direction", "entity_type", "status", "details"},  # "integration_logs"
    "app_user": {"email", "password_hash"},  # "behind a login": users with argon2id password hashes
    "membership": {"user_id", "company_id", "role"},  # membership per company with a role
}
# what the hub adds that other code relies on (not seed columns)
HUB_COLUMNS = {
    "company": {"name", "timezone"},
    "webhook_endpoint": {"direction", "payload_options"},
    "webhook_delivery": {"endpoint_id"},
    "external_order": {"status_history", "processed"},
    "pos_order": {"company_id", "status", "items", "total_cents"},
    "sync_log": {"dagster_run_id", "heartbeat_at"},
    "external_ref": {"integration_id", "entity_type", "local_id", "remote_id", "remote_version"},
    "sync_cursor": {"integration_id", "stream", "value"},
    "outbox_event": {"company_id", "event_type", "payload", "created_at", "dispatched_at"},
    "inbound_event": {"integration_id", "event_id", "event_type", "payload", "received_at"},
}
SYNCED_ENTITIES = ("vendor", "invoice", "gl_account", "account_mapping", "project", "rfi", "submittal", "daily_log", "document")
PROVENANCE = {"integration_id", "remote_id", "remote_version", "synced_at"}


def _columns(engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
        )
        found: dict[str, set[str]] = {}
        for table, column in rows:
            found.setdefault(table, set()).add(column)
    return found


def test_every_seed_column_exists(engine):
    found = _columns(engine)
    for listing in (BLUEPRINT_COLUMNS, VIEW_PLAN_COLUMNS, HUB_COLUMNS):
        for table, columns in listing.items():
            assert columns <= found.get(table, set()), f"{table} lacks {columns - found.get(table, set())}"
    for table in SYNCED_ENTITIES:
        assert PROVENANCE <= found[table], f"{table} lacks provenance"
    assert {"invoice_id", "line_no", "amount"} <= found["invoice_line"]


def test_schema_docstring_lists_the_blueprint_columns():
    """The mapping in hub/schema.py's docstring names each blueprint table's columns; it says
    what the test above checks, so the two cannot tell different stories."""
    written = {}
    for line in schema.__doc__.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and ":" in cells[1]:
            name, columns = cells[1].split(":", 1)
            written[cells[0]] = {c.strip() for c in columns.split(",")}
    for table in ("integration", "webhook_endpoint", "external_order", "sync_log"):
        assert written[table] == BLUEPRINT_COLUMNS[table], table


def test_integration_is_inactive_until_connected_or_enabled(clean_db):
    """The blueprint's default: a new integration row is not active."""
    with clean_db.begin() as conn:
        company_id = conn.execute(sa.text("INSERT INTO company (name) VALUES ('d') RETURNING id")).scalar()
        active = conn.execute(sa.text(
            "INSERT INTO integration (company_id, name, integration_type, provider, config, credentials) "
            "VALUES (:c, 'x', 'delivery', 'doordash', '{}', '{}') RETURNING is_active"), {"c": company_id}).scalar()
    assert active is False


CHECK_SETS = {
    ("integration", "integration_type"): schema.INTEGRATION_TYPES,
    ("integration", "status"): schema.INTEGRATION_STATUSES,
    ("external_order", "status"): schema.EXTERNAL_ORDER_STATUSES,
    ("sync_log", "direction"): ("inbound", "outbound"),
    ("sync_log", "status"): ("started", "completed", "failed"),
    ("webhook_endpoint", "direction"): ("inbound", "outbound"),
    ("webhook_delivery", "status"): schema.DELIVERY_STATUSES,
}


def test_check_constraints_hold_the_seed_value_sets(clean_db):
    """clean_db although nothing is kept: the refused insert still took id sequence values,
    which the next test (expecting ids from 1) would otherwise inherit."""
    engine = clean_db
    with engine.connect() as conn:
        clauses = dict(conn.execute(sa.text("SELECT constraint_name, check_clause FROM information_schema.check_constraints")).all())
    for (table, column), values in CHECK_SETS.items():
        clause = clauses[f"ck_{table}_{column}"]
        for value in values:
            assert f"'{value}'" in clause, f"{table}.{column} check lacks {value}"
    # and the database really refuses a value outside the set
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        company_id = conn.execute(sa.text("INSERT INTO company (name) VALUES ('chk') RETURNING id")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO integration (company_id, name, integration_type, provider, config, credentials) "
                "VALUES (:c, 'x', 'telepathy', 'x', '{}', '{}')"
            ),
            {"c": company_id},
        )


def test_dedupe_and_idempotency_keys(engine):
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        uniques = {t: {tuple(u["column_names"]) for u in inspector.get_unique_constraints(t)} for t in schema.metadata.tables}
        fks = {t: {(tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys(t)} for t in schema.metadata.tables}
    assert ("integration_id", "external_id") in uniques["external_order"]
    assert ("integration_id", "event_id") in uniques["inbound_event"]
    assert ("integration_id", "entity_type", "remote_id") in uniques["external_ref"]
    assert ("integration_id", "entity_type", "local_id") in uniques["external_ref"]
    assert ("endpoint_id", "outbox_event_id", "attempt") in uniques["webhook_delivery"]
    assert (("order_id",), "pos_order") in fks["external_order"]
    assert (("company_id",), "company") in fks["integration"]
    assert (("integration_id",), "integration") in fks["sync_log"]
