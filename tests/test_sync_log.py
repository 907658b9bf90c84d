"""The sync_log recorder against real PostgreSQL."""

import pytest
import sqlalchemy as sa

from hub import integrations as store
from hub.crypto import Keyring, generate_key
from hub.schema import integration, sync_log
from hub.sync_log import close_runs_failed, close_sync, open_sync, record_sync

SYNC = dict(sync_type="incremental", action="import_vendors", direction="inbound", entity_type="vendor")


@pytest.fixture
def integration_id(clean_db):
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        return store.add_integration(
            conn, Keyring([generate_key()]), company_id=company_id, provider="stripe",
            credentials={"api_key": "sk_test_x", "webhook_secret": "whsec_x"}, active=True
        )


def _log(engine, log_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(sync_log).where(sync_log.c.id == log_id)).mappings().one()


def _integration(engine, integration_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(integration).where(integration.c.id == integration_id)).mappings().one()


def test_success(clean_db, integration_id):
    with record_sync(clean_db, integration_id=integration_id, run_id="run-ok", **SYNC) as sync:
        assert _log(clean_db, sync.id)["status"] == "started"  # visible while it runs
        assert _integration(clean_db, integration_id)["status"] == "syncing"
        sync.add(40)
        sync.add(2)
    row = _log(clean_db, sync.id)
    assert (row["status"], row["records_processed"], row["errors"], row["dagster_run_id"]) == ("completed", 42, [], "run-ok")
    assert row["completed_at"] is not None and row["direction"] == "inbound"
    item = _integration(clean_db, integration_id)
    assert (item["status"], item["error_message"]) == ("connected", None)
    assert item["last_sync_at"] is not None


def test_per_record_errors_are_kept(clean_db, integration_id):
    with record_sync(clean_db, integration_id=integration_id, **SYNC) as sync:
        sync.add(10)
        sync.record_error("V-17", "6240", "Duplicate Name Exists Error")
        sync.record_error(18, None, "display name is empty")
    row = _log(clean_db, sync.id)
    assert row["status"] == "completed"
    assert row["records_failed"] == 2
    assert row["errors"] == [
        {"record_id": "V-17", "code": "6240", "message": "Duplicate Name Exists Error"},
        {"record_id": "18", "code": None, "message": "display name is empty"},
    ]
    assert "2 record(s) failed" in _integration(clean_db, integration_id)["error_message"]


def test_failure_closes_the_row_failed(clean_db, integration_id):
    with pytest.raises(RuntimeError), record_sync(clean_db, integration_id=integration_id, **SYNC) as sync:
        sync.add(5)
        raise RuntimeError("provider returned 503 three times")
    row = _log(clean_db, sync.id)
    assert (row["status"], row["records_processed"]) == ("failed", 5)
    assert row["errors"][-1]["message"] == "RuntimeError: provider returned 503 three times"
    item = _integration(clean_db, integration_id)
    assert item["status"] == "error"
    assert "provider returned 503" in item["error_message"]
    assert item["last_sync_at"] is None  # last sync means the last one that finished


def test_page_progress_commits_with_the_page(clean_db, integration_id):
    with record_sync(clean_db, integration_id=integration_id, **SYNC) as sync:
        with clean_db.begin() as conn:
            sync.page(conn, processed=100)
        assert _log(clean_db, sync.id)["records_processed"] == 100
        with pytest.raises(ZeroDivisionError), clean_db.begin() as conn:
            sync.record_error("r1", "X", "bad row")
            sync.page(conn, processed=100)
            1 / 0  # the page's transaction rolls back: its progress must not be visible
        assert _log(clean_db, sync.id)["records_processed"] == 100
        with clean_db.begin() as conn:
            sync.record_error("r2", "6240", "Duplicate Name Exists Error")
            sync.page(conn, processed=50)
        sync.add(1)  # counted outside any page: written at the close
    row = _log(clean_db, sync.id)
    # the row describes exactly what was committed: the rolled-back page left no trace
    assert (row["status"], row["records_processed"], row["records_failed"]) == ("completed", 151, 1)
    assert [e["record_id"] for e in row["errors"]] == ["r2"]
    assert (sync.processed, sync.failed) == (151, 1)


def test_close_runs_failed_is_idempotent_and_scoped_to_the_run(clean_db, integration_id):
    crashed = open_sync(clean_db, integration_id=integration_id, run_id="run-dead", **SYNC)
    other = open_sync(clean_db, integration_id=integration_id, run_id="run-alive", **SYNC)
    assert close_runs_failed(clean_db, "run-dead", "worker lost") == 1
    assert close_runs_failed(clean_db, "run-dead", "worker lost") == 0
    assert _log(clean_db, crashed.id)["status"] == "failed"
    assert _log(clean_db, crashed.id)["errors"][-1]["message"] == "sync run run-dead ended: worker lost"
    assert _log(clean_db, other.id)["status"] == "started"
    # the newer sync is still running: the dead run's failure does not override it
    assert _integration(clean_db, integration_id)["status"] == "syncing"
    assert close_runs_failed(clean_db, "run-alive", "worker lost") == 1
    assert _integration(clean_db, integration_id)["status"] == "error"


def test_closing_twice_or_after_the_sensor_changes_nothing(clean_db, integration_id):
    sync = open_sync(clean_db, integration_id=integration_id, run_id="run-x", **SYNC)
    assert close_runs_failed(clean_db, "run-x", "worker lost") == 1
    assert close_sync(sync) is False  # the late worker does not turn failed into completed
    assert _log(clean_db, sync.id)["status"] == "failed"
    other = open_sync(clean_db, integration_id=integration_id, **SYNC)
    assert close_sync(other) is True
    assert close_sync(other, RuntimeError("late")) is False
    assert _log(clean_db, other.id)["status"] == "completed"


def test_an_old_sync_closing_late_does_not_overwrite_a_newer_outcome(clean_db, integration_id):
    old = open_sync(clean_db, integration_id=integration_id, run_id="run-old", **SYNC)
    new = open_sync(clean_db, integration_id=integration_id, run_id="run-new", **SYNC)
    close_sync(new)
    assert close_runs_failed(clean_db, "run-old", "worker lost") == 1
    assert _log(clean_db, old.id)["status"] == "failed"
    assert _integration(clean_db, integration_id)["status"] == "connected"


def test_a_check_row_written_meanwhile_does_not_count_as_a_newer_sync(clean_db, integration_id):
    sync = open_sync(clean_db, integration_id=integration_id, **SYNC)
    with clean_db.begin() as conn:  # as hub/quality/expectations.py writes a data-quality check's outcome
        conn.execute(sa.insert(sync_log).values(integration_id=integration_id, sync_type="check", action="check_x",
                                                direction="outbound", entity_type="vendor", status="completed",
                                                completed_at=sa.func.now()))
    close_sync(sync, RuntimeError("provider down"))
    assert _integration(clean_db, integration_id)["status"] == "error"


def test_a_disabled_integration_stays_disconnected(clean_db, integration_id):
    with clean_db.begin() as conn:
        store.set_active(conn, integration_id, False)
    with record_sync(clean_db, integration_id=integration_id, **SYNC):
        assert _integration(clean_db, integration_id)["status"] == "disconnected"
    assert _integration(clean_db, integration_id)["status"] == "disconnected"


def test_error_text_is_redacted_before_it_is_stored(clean_db, integration_id):
    leaky = RuntimeError("GET https://user:pw-XYZ@api.example/v3?access_token=tok-SECRET-1 failed; Authorization: Bearer abc.def")
    with pytest.raises(RuntimeError), record_sync(clean_db, integration_id=integration_id, **SYNC) as sync:
        sync.record_error("r1", "401", "refresh_token=rt-SECRET-2 was refused")
        raise leaky
    stored = str(_log(clean_db, sync.id)["errors"]) + str(_integration(clean_db, integration_id)["error_message"])
    for secret in ("pw-XYZ", "tok-SECRET-1", "abc.def", "rt-SECRET-2"):
        assert secret not in stored
    assert "RuntimeError" in stored and "access_token=***" in stored


def test_database_errors_are_stored_without_their_parameters(clean_db, integration_id):
    with pytest.raises(sa.exc.DBAPIError), record_sync(clean_db, integration_id=integration_id, **SYNC) as sync:
        with clean_db.begin() as conn:
            conn.execute(sa.text("SELECT CAST(:v AS integer)"), {"v": "secret-param-value"})
    (error,) = _log(clean_db, sync.id)["errors"]
    assert "secret-param-value" not in error["message"]
    assert error["message"].startswith("DataError: ")


def test_the_schema_refuses_a_started_row_with_a_completion_time(clean_db, integration_id):
    with pytest.raises(sa.exc.IntegrityError), clean_db.begin() as conn:
        conn.execute(sa.insert(sync_log).values(
            integration_id=integration_id, status="started", completed_at=sa.func.now(), **SYNC))
    with pytest.raises(sa.exc.IntegrityError), clean_db.begin() as conn:
        conn.execute(sa.insert(sync_log).values(integration_id=integration_id, status="completed", **SYNC))
