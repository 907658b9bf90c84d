"""Migrations on a real PostgreSQL database: up, down, up; schema module agrees; seed
columns, CHECK value sets and dedupe keys are present."""

import re
import uuid
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub import db, migrate, schema
from tests.test_cli import hub  # the CLI, in-process


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


# ---- downgrades refuse to lose data (issue 15 item 11) ------------------------------------
def _check_values() -> dict[tuple[str, str], str]:
    """(table, column) -> a value its `col IN (...)` CHECK admits (the last of the set: for
    sync_log.status that is 'failed', which goes with a completed_at)."""
    allowed = {}
    for table in schema.metadata.sorted_tables:
        for constraint in table.constraints:
            match = re.fullmatch(r"(\w+) IN \((.*)\)", str(getattr(constraint, "sqltext", "")))
            if match:
                allowed[(table.name, match[1])] = re.findall(r"'([^']*)'", match[2])[-1]
    return allowed


def _value(table: sa.Table, column: sa.Column, ids: dict[str, int], allowed: dict):
    if (table.name, column.name) in allowed:
        return allowed[(table.name, column.name)]
    if column.foreign_keys:
        return ids[next(iter(column.foreign_keys)).column.table.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, (sa.Integer, sa.Numeric, sa.Float)):
        return 1
    if isinstance(kind, sa.ARRAY):
        return [1]
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    if isinstance(kind, sa.Date):
        return date(2026, 1, 2)
    if isinstance(kind, sa.LargeBinary):
        return b"bytes"
    if isinstance(kind, sa.dialects.postgresql.JSONB):
        return {"filled": column.name}
    return "a@b.example" if column.name == "email" else f"{table.name}.{column.name}"


def fill_every_table(engine) -> None:
    """One row in every table of the schema, with a value in every column (ids generated)."""
    allowed, ids = _check_values(), {}
    with engine.begin() as conn:
        for table in schema.metadata.sorted_tables:
            values = {c.name: _value(table, c, ids, allowed) for c in table.columns
                      if not (c.primary_key and c.identity is not None)}
            if table.name == "invoice":  # a receivable names a customer, never a vendor (ck_invoice_party)
                values["vendor_id"] = None
            row = conn.execute(sa.insert(table).values(**values).returning(*table.primary_key.columns)).first()
            ids[table.name] = row[0]


def snapshot(engine) -> dict[str, list[str]]:
    """Every row of every table, as sorted JSON text (a multiset: no order is assumed)."""
    with engine.connect() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        return {t: sorted(conn.execute(sa.text(f'SELECT to_jsonb(x)::text FROM "{t}" AS x')).scalars()) for t in tables}


@pytest.fixture
def filled(scratch_url):
    migrate.upgrade(scratch_url)
    fill_every_table(db.engine(scratch_url))
    return scratch_url


def test_every_table_is_filled(filled):
    assert all(snapshot(db.engine(filled)).values())
    assert set(snapshot(db.engine(filled))) == set(schema.metadata.tables)


def test_a_downgrade_that_would_drop_rows_is_refused_and_changes_nothing(filled):
    before = snapshot(db.engine(filled))
    with pytest.raises(migrate.DataLossRefused) as refused:
        migrate.downgrade(filled, "0003")
    message = str(refused.value)
    for lost in ("row(s) of notification_route (table dropped)", "row(s) of app_user (table dropped)",
                 "value(s) of external_order.received_at (column dropped)", "row(s) of webhook_endpoint (rows deleted)"):
        assert lost in message, message
    assert "--force" in message
    assert migrate.current(filled) == migrate.head()
    assert migrate.upgrade(filled) == migrate.head()
    assert snapshot(db.engine(filled)) == before  # the round trip left every table as it was


def test_the_cli_downgrade_refuses_then_upgrade_leaves_every_table_as_it_was(filled, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", filled.render_as_string(hide_password=False))
    before = snapshot(db.engine(filled))
    refused = hub("db", "downgrade", "0003")
    assert refused.exit_code == 1 and "would lose data" in refused.output and "notification_message" in refused.output
    assert hub("db", "upgrade").exit_code == 0
    assert snapshot(db.engine(filled)) == before


def test_a_forced_downgrade_says_what_was_lost_and_leaves_no_route_endpoint_behind(filled):
    done = migrate.downgrade_report(filled, "0003", force=True)
    assert done.revision == "0003"
    assert migrate.Loss("notification_route", None, 1, "table dropped") in done.lost
    assert migrate.Loss("webhook_endpoint", None, 1, "rows deleted") in done.lost  # the route's endpoint went with it
    with db.engine(filled).connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM webhook_endpoint")) == 0


def test_a_downgrade_that_loses_nothing_goes_through_and_the_round_trip_keeps_every_row(filled):
    engine = db.engine(filled)
    with engine.begin() as conn:  # what 0006..head added holds no data: an empty external_order, no heartbeat,
        conn.execute(sa.text("DELETE FROM external_order"))  # no OAuth flow under way (0007), no secret rotation times (0010)
        conn.execute(sa.text("UPDATE sync_log SET heartbeat_at = NULL"))
        conn.execute(sa.text("DELETE FROM oauth_state"))
        conn.execute(sa.text("UPDATE webhook_endpoint SET secret_rotated_at = NULL, previous_secret_until = NULL"))
        conn.execute(sa.text("DELETE FROM billing_settings; DELETE FROM billing_invoice; DELETE FROM billing_account"))  # billing
        conn.execute(sa.text("UPDATE invoice SET customer_id = NULL"))  # no customers, no receivable's customer (receivables)
        conn.execute(sa.text("DELETE FROM customer"))
        conn.execute(sa.text("DELETE FROM inbound_dead_letter"))  # no dead letters, no kept raw bodies (dead letters)
        conn.execute(sa.text("UPDATE inbound_event SET raw_body = NULL"))
        conn.execute(sa.text("TRUNCATE ai_feedback, ai_suggestion, ai_model, ai_setting, ai_task_setting, ai_usage, "
                             "ai_external_setting, ai_external_call"))  # no AI assist data
    before = snapshot(engine)
    assert migrate.downgrade_report(filled, "0005") == migrate.Downgraded("0005", [])
    assert migrate.upgrade(filled) == migrate.head()
    after = snapshot(engine)
    # the shared rate budget's counts (UNLOGGED, 0011) are not data: dropped without a refusal
    assert before.pop("rate_budget") and after.pop("rate_budget") == []
    assert after == before


def test_0012_moves_earlier_receivables_to_their_own_entity_type_and_back(scratch_url):
    """Xero ACCREC invoices imported before 0012 were linked under entity `invoice`; from 0012 a
    sales invoice is `sales_invoice` (its id map is apart from the bills'), and a Bill and an
    Invoice may share a remote id."""
    assert migrate.upgrade(scratch_url, "0010") == "0010"
    engine = db.engine(scratch_url)
    with engine.begin() as conn:
        company = conn.scalar(sa.text("INSERT INTO company (name) VALUES ('Acme') RETURNING id"))
        iid = conn.scalar(sa.text("INSERT INTO integration (company_id, name, integration_type, provider, config, credentials) "
                                  "VALUES (:c, 'books', 'accounting', 'xero', '{}', '{}') RETURNING id"), {"c": company})
        ids = {kind: conn.scalar(sa.text(
            "INSERT INTO invoice (company_id, integration_id, kind, number, issue_date, remote_id) "
            "VALUES (:c, :i, :k, :n, '2026-01-02', :r) RETURNING id"), {"c": company, "i": iid, "k": kind, "n": f"N-{kind}", "r": f"r-{kind}"})
            for kind in ("payable", "receivable")}
        for kind, local in ids.items():
            conn.execute(sa.text("INSERT INTO external_ref (integration_id, entity_type, local_id, remote_id) "
                                 "VALUES (:i, 'invoice', :l, :r)"), {"i": iid, "l": local, "r": f"r-{kind}"})

    def refs():
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT local_id, entity_type FROM external_ref")).all())

    assert migrate.upgrade(scratch_url) == migrate.head()
    assert refs() == {ids["payable"]: "invoice", ids["receivable"]: "sales_invoice"}
    with engine.begin() as conn:  # the same remote id on a bill and a sales invoice: two records now
        conn.execute(sa.text("UPDATE invoice SET remote_id = '7'"))
    with pytest.raises(sa.exc.IntegrityError):  # the old key cannot hold them: refused, nothing changed
        migrate.downgrade(scratch_url, "0010")
    assert migrate.current(scratch_url) == migrate.head() and refs()[ids["receivable"]] == "sales_invoice"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE invoice SET remote_id = 'r-' || kind"))
    assert migrate.downgrade(scratch_url, "0010") == "0010"
    assert refs() == {ids["payable"]: "invoice", ids["receivable"]: "invoice"}
