"""Procore: project links, the RFI / submittal / daily-log pulls and document sharing, over
real HTTP to the Procore emulator and real PostgreSQL."""

import hashlib
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from emulators.procore import create_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.commands.projects import app as procore_app
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import TransientProblem
from hub.providers.transport import RetrySettings
from hub.schema import daily_log, document, project, rfi, submittal, sync_cursor, sync_log, sync_write
from hub.sync.engine import sync_stream
from hub.sync.project_records import FULL_LOG_DAYS
from hub.sync.procore_documents import share_documents
from hub.sync.procore_link import import_project, link_project, remote_projects, unlink_project
from tests.conftest import count

COMPANY = 562949953421312
FAST = RetrySettings(max_attempts=6, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=5.0, timeout_s=5.0)
RFIS, SUBMITTALS, LOGS = registry.stream("procore/rfis"), registry.stream("procore/submittals"), registry.stream("procore/daily_logs")


def add_procore_integration(conn, keyring, company_id: int, emulator, url: str) -> int:
    """A Procore integration of the company, connected to `emulator` (a refresh token it issued)."""
    return store.add_integration(
        conn, keyring, company_id=company_id, provider="procore",
        config={"company_id": str(COMPANY), "base_url": url, "token_url": url + "/oauth/token"},
        credentials={"client_id": "hub-demo", "client_secret": "hub-demo-secret",
                     "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"company_id": COMPANY})}, active=True)


@pytest.fixture
def procore():
    """A fresh emulator per test (tests change its data): 3 projects; 120 daily logs each
    reach back 40 days, 300 would reach 100 (past the 90-day full window)."""
    emulator = create_emulator(projects=3, rfis_per_project=120, submittals_per_project=30, daily_logs_per_project=300)
    with serve(emulator.app) as url:
        yield emulator, url


@pytest.fixture
def hub(clean_db, secret_keys, procore):
    """(engine, keyring, integration id, local project ids, remote project ids, emulator)."""
    emulator, url = procore
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Builders")
        other_company = store.create_company(conn, "Elsewhere")
        integration_id = add_procore_integration(conn, keyring, company_id, emulator, url)
        local = [conn.execute(sa.insert(project).values(company_id=company_id, name=f"Local {n}").returning(project.c.id)).scalar_one()
                 for n in range(3)]
        local.append(conn.execute(sa.insert(project).values(company_id=other_company, name="Not ours").returning(project.c.id)).scalar_one())
    return clean_db, keyring, integration_id, local, sorted(emulator.state.projects), emulator


def _client(hub_, retry=FAST):
    engine, keyring, integration_id, *_ = hub_
    return open_client(engine, keyring, integration_id, retry=retry)


def _sync(hub_, stream, retry=FAST, **kwargs):
    engine, keyring, integration_id, *_ = hub_
    client = _client(hub_, retry)
    try:
        return sync_stream(engine, keyring, integration_id, stream, client=client, **kwargs)
    finally:
        client.transport.close()


def _share(hub_, retry=FAST):
    engine, keyring, integration_id, *_ = hub_
    client = _client(hub_, retry)
    try:
        return share_documents(engine, keyring, integration_id, client=client)
    finally:
        client.transport.close()


def _remote(emulator, entity, project_ids, deleted=None):
    """{remote id: record} of the emulator's records in those projects (deleted: None = all)."""
    found = {}
    for pid in project_ids:
        for r in emulator.state.records(entity, pid):
            if deleted is None or (r["_deleted"] is not None) == deleted:
                key = f"{r['log_type']}:{r['id']}" if entity == "daily_log" else str(r["id"])
                found[key] = r
    return found


def _local(engine, table, integration_id):
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.integration_id == integration_id)).mappings().all()
    return {r["remote_id"]: dict(r) for r in rows}


# ---- linking ----------------------------------------------------------------------------
def test_link_import_unlink_with_clear_errors(hub):
    engine, keyring, iid, local, remote, emulator = hub
    listed = remote_projects(engine, keyring, iid)
    assert [p.procore_id for p in listed] == remote and all(p.linked_project_id is None for p in listed)

    assert link_project(engine, keyring, iid, local[0], remote[0]) is True
    assert link_project(engine, keyring, iid, local[0], remote[0]) is False  # the same link again is harmless
    with pytest.raises(ValidationError, match=f"project {local[0]} is already linked to {remote[0]}"):
        link_project(engine, keyring, iid, local[0], remote[1])
    with pytest.raises(ValidationError, match=f"Procore project {remote[0]} is already linked to project {local[0]}"):
        link_project(engine, keyring, iid, local[1], remote[0])
    with pytest.raises(NotFoundError, match=f"no Procore project 999 in Procore company {COMPANY}"):
        link_project(engine, keyring, iid, local[1], 999)
    with pytest.raises(NotFoundError, match="no project 424242"):
        link_project(engine, keyring, iid, 424242, remote[1])
    with pytest.raises(NotFoundError, match=f"no project {local[3]} in company"):  # another company's project
        link_project(engine, keyring, iid, local[3], remote[1])
    with pytest.raises(ValidationError, match="already linked to project"):
        import_project(engine, keyring, iid, remote[0])

    imported = import_project(engine, keyring, iid, remote[1])
    with engine.connect() as conn:
        row = conn.execute(sa.select(project).where(project.c.id == imported)).mappings().one()
    assert row["name"] == emulator.state.projects[remote[1]]["name"] and row["code"] == emulator.state.projects[remote[1]]["project_number"]
    assert (row["integration_id"], row["remote_id"]) == (iid, str(remote[1])) and row["linked_at"] is not None
    assert {p.procore_id: p.linked_project_id for p in remote_projects(engine, keyring, iid)} == {
        remote[0]: local[0], remote[1]: imported, remote[2]: None}

    assert unlink_project(engine, keyring, iid, local[0]) == str(remote[0])
    with pytest.raises(ValidationError, match=f"project {local[0]} is not linked through integration {iid}"):
        unlink_project(engine, keyring, iid, local[0])
    assert link_project(engine, keyring, iid, local[1], remote[0]) is True  # free again after the unlink


def test_a_non_procore_integration_is_refused(hub):
    engine, keyring, _, local, remote, _ = hub
    with engine.begin() as conn:
        company_id = conn.scalar(sa.select(project.c.company_id).where(project.c.id == local[0]))
        qbo = store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks", config={"realm_id": "1"},
                                    credentials={"client_id": "c", "client_secret": "s", "refresh_token": "r"}, active=True)
    with pytest.raises(ValidationError, match=f"integration {qbo} is quickbooks, not procore"):
        link_project(engine, keyring, qbo, local[0], remote[0])


# ---- pulls ------------------------------------------------------------------------------
def test_full_then_incremental_pull_of_linked_projects_only(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    link_project(engine, keyring, iid, local[1], remote[1])
    linked = {remote[0]: local[0], remote[1]: local[1]}
    gone = sorted(emulator.state.tables["rfi"][remote[0]])[5]
    emulator.state.recycle("rfi", gone)  # already in the bin at the first pull

    first = {s.name: _sync(hub, s, page_size=50) for s in (RFIS, SUBMITTALS, LOGS)}
    assert all(r.mode == "full" for r in first.values())
    rfis = _local(engine, rfi, iid)
    assert set(rfis) == set(_remote(emulator, "rfi", linked))  # recycled one included
    assert rfis[str(gone)]["status"] == "deleted" and rfis[str(gone)]["data"]["deleted_at"]
    assert first["rfis"].counts.created == len(rfis) - 1 and first["rfis"].counts.deleted == 1
    for rid, row in rfis.items():
        record = emulator.state.get("rfi", int(rid), deleted=None)
        assert row["project_id"] == linked[record["_project"]] and row["subject"] == record["subject"]
        assert not any(k.startswith("_") for k in row["data"])  # the raw record, without our tags
    subs = _local(engine, submittal, iid)
    assert set(subs) == set(_remote(emulator, "submittal", linked)) and len(subs) == 60
    logs = _local(engine, daily_log, iid)
    window = (datetime.now(timezone.utc).date() - timedelta(days=FULL_LOG_DAYS)).isoformat()
    expected_logs = {k for k, r in _remote(emulator, "daily_log", linked).items() if r["date"] >= window}
    assert set(logs) == expected_logs and len(expected_logs) < 600  # older logs are outside the full window
    assert {r["log_type"] for r in logs.values()} == {"manpower_logs", "notes_logs", "weather_logs"}
    assert count(engine, rfi, rfi.c.project_id == local[2]) == 0  # unlinked: untouched

    # remote changes, in linked and unlinked projects
    edited, recycled = sorted(emulator.state.tables["rfi"][remote[1]])[:2]
    emulator.state.update("rfi", edited, {"subject": "Changed on Procore"})
    emulator.state.recycle("rfi", recycled)
    emulator.state.retrieve("rfi", gone)
    new_rfi = emulator.state.create("rfi", remote[0], {"subject": "Brand new question"})
    emulator.state.create("rfi", remote[2], {"subject": "In the unlinked project"})
    new_sub = emulator.state.create("submittal", remote[1], {"title": "Anchor bolts"})
    new_log = emulator.state.create("daily_log", remote[0], {"log_type": "notes_logs", "comment": "Late pour"})

    second = {s.name: _sync(hub, s, page_size=50) for s in (RFIS, SUBMITTALS, LOGS)}
    assert all(r.mode == "incremental" for r in second.values())
    c = second["rfis"].counts
    assert (c.created, c.updated, c.deleted) == (1, 2, 1)  # new; edited + retrieved; recycled
    assert second["rfis"].api["api_calls"] == 4  # 2 linked projects x (list, recycle bin): changes only
    assert second["rfis"].pages == 3 and second["submittals"].counts.created == 1
    rfis = _local(engine, rfi, iid)
    assert rfis[str(edited)]["subject"] == "Changed on Procore"
    assert rfis[str(recycled)]["status"] == "deleted"  # kept, marked
    assert rfis[str(gone)]["status"] == emulator.state.get("rfi", gone)["status"]  # back from the bin
    assert rfis[str(new_rfi["id"])]["project_id"] == local[0]
    assert set(rfis) == set(_remote(emulator, "rfi", linked)) and count(engine, rfi, rfi.c.project_id == local[2]) == 0
    assert _local(engine, submittal, iid)[str(new_sub["id"])]["title"] == "Anchor bolts"
    assert _local(engine, daily_log, iid)[f"notes_logs:{new_log['id']}"]["notes"] == "Late pour"


def test_a_project_linked_later_is_read_in_full_by_the_next_incremental_pull(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    _sync(hub, RFIS)
    link_project(engine, keyring, iid, local[2], remote[2])
    later = _sync(hub, RFIS)
    assert later.mode == "incremental" and later.counts.created == 120
    assert set(_local(engine, rfi, iid)) == set(_remote(emulator, "rfi", [remote[0], remote[2]]))


def _kill_after(client, api_requests: int):
    """Make the client's connection die after that many API requests (a crash mid-pull)."""
    sent = []

    def hook(request):
        if "/rest/" in request.url.path:
            sent.append(request.url.path)
            if len(sent) > api_requests:
                raise httpx.ConnectError("killed")

    client.transport.http.event_hooks["request"].append(hook)
    return client


def test_a_pull_killed_mid_way_then_rerun_ends_exact(hub):
    """The first attempt dies after 3 pages of the first project; then a record it wrote goes
    to the recycle bin, which shifts the rest of that list back by one. Later attempts fail
    at random (one try per request). Each rerun resumes; the end state is exactly the remote
    set, and every record was written (and counted) once, the moved one twice."""
    engine, keyring, iid, local, remote, emulator = hub
    for n in range(3):
        link_project(engine, keyring, iid, local[n], remote[n])
    client = _kill_after(_client(hub, RetrySettings(max_attempts=1)), 3)
    with pytest.raises(TransientProblem):
        sync_stream(engine, keyring, iid, RFIS, client=client, page_size=20)
    client.transport.close()
    assert count(engine, rfi) == 60
    moved = min(emulator.state.tables["rfi"][remote[0]])
    emulator.state.recycle("rfi", moved)

    emulator.core.faults.configure(error_rate_5xx=0.1, seed=5)
    failures = 1
    for _ in range(60):
        try:
            result = _sync(hub, RFIS, retry=RetrySettings(max_attempts=1), page_size=100)  # the resume keeps 20
            break
        except TransientProblem:
            failures += 1
    else:
        pytest.fail("never finished")
    emulator.core.faults.reset()
    assert failures >= 2 and result.resumed_after > 0
    remote_all = _remote(emulator, "rfi", remote)
    local_rows = _local(engine, rfi, iid)
    assert set(local_rows) == set(remote_all) and count(engine, rfi) == len(remote_all) == 360
    assert local_rows[str(moved)]["status"] == "deleted"
    with engine.connect() as conn:
        logs = conn.execute(sa.select(sync_log.c.status, sync_log.c.records_processed)
                            .where(sync_log.c.action == "import_rfis").order_by(sync_log.c.id)).all()
        cursor = conn.scalar(sa.select(sync_cursor.c.value).where(sync_cursor.c.stream == "rfis"))
    assert [s for s, _ in logs].count("failed") == failures and logs[-1][0] == "completed"
    assert sum(n for _, n in logs) == len(remote_all) + 1  # nothing read twice but the record that changed
    assert "pull" not in cursor


def test_a_429_with_retry_after_is_waited_out(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    emulator.core.faults.configure(burst_429=2, retry_after_s=1)
    result = _sync(hub, SUBMITTALS)
    assert emulator.core.faults.injected["429"] == 2 and result.api["retries"] >= 2
    assert set(_local(engine, submittal, iid)) == set(_remote(emulator, "submittal", [remote[0]]))


# ---- documents --------------------------------------------------------------------------
def _add_document(engine, project_id, filename, content):
    with engine.begin() as conn:
        company_id = conn.scalar(sa.select(project.c.company_id).where(project.c.id == project_id))
        return conn.execute(sa.insert(document).values(company_id=company_id, project_id=project_id, filename=filename,
                                                       content_type="application/pdf", content=content)
                            .returning(document.c.id)).scalar_one()


def _remote_files(emulator):
    return sorted(((f["_project"], f["name"], f["sha256"]) for f in emulator.state.files.values()))


def test_documents_are_shared_once(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    link_project(engine, keyring, iid, local[1], remote[1])
    docs = [_add_document(engine, local[0], "plans.pdf", b"%PDF plans"), _add_document(engine, local[0], "specs.pdf", b"%PDF specs"),
            _add_document(engine, local[1], "plans.pdf", b"%PDF other plans")]
    _add_document(engine, local[2], "unlinked.pdf", b"%PDF not shared")  # project not linked
    _add_document(engine, local[0], "empty.pdf", None)  # nothing to send

    first = share_documents(engine, keyring, iid, run_id="run-1")
    assert first.uploaded == docs and not first.failed
    assert _remote_files(emulator) == sorted([(remote[0], "plans.pdf", hashlib.sha256(b"%PDF plans").hexdigest()),
                                              (remote[0], "specs.pdf", hashlib.sha256(b"%PDF specs").hexdigest()),
                                              (remote[1], "plans.pdf", hashlib.sha256(b"%PDF other plans").hexdigest())])
    shared = _local(engine, document, iid)
    assert {row["id"] for row in shared.values()} == set(docs)
    assert all(emulator.state.files[int(rid)]["name"] == row["filename"] for rid, row in shared.items())
    with engine.connect() as conn:
        log = conn.execute(sa.select(sync_log).where(sync_log.c.id == first.sync_log_id)).mappings().one()
    assert (log["direction"], log["entity_type"], log["status"], log["records_processed"], log["dagster_run_id"]) == (
        "outbound", "document", "completed", 3, "run-1")

    again = share_documents(engine, keyring, iid)
    assert again.uploaded == [] and again.found_remote == [] and len(emulator.state.files) == 3


def test_an_upload_with_unknown_outcome_is_looked_up_before_uploading_again(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    landed = _add_document(engine, local[0], "landed.pdf", b"%PDF landed")  # its answer is lost
    refused = _add_document(engine, local[0], "refused.pdf", b"%PDF refused")  # a 503 before anything happens
    emulator.core.faults.configure(drop_next=1)
    first = _share(hub)
    assert first.failed == [landed] and first.uploaded == [refused] and len(emulator.state.files) == 2
    with engine.connect() as conn:
        errors = conn.scalar(sa.select(sync_log.c.errors).where(sync_log.c.id == first.sync_log_id))
        pending = conn.scalar(sa.select(sync_write.c.status).where(sync_write.c.local_id == landed))
    assert errors[0]["record_id"] == str(landed) and "outcome unknown" in errors[0]["message"] and pending == "pending"

    second = _share(hub)
    assert second.found_remote == [landed] and second.uploaded == [] and len(emulator.state.files) == 2  # no double upload
    with engine.connect() as conn:  # the ledger's own discipline (hub/sync/write_ledger.py): the same row, resumed, now known
        writes = conn.execute(sa.select(sync_write.c.local_id, sync_write.c.status, sync_write.c.attempts, sync_write.c.remote_id)
                              .where(sync_write.c.entity_type == "document").order_by(sync_write.c.id)).all()
    remote_of = {row["id"]: rid for rid, row in _local(engine, document, iid).items()}
    assert [tuple(w) for w in writes] == [(landed, "succeeded", 2, remote_of[landed]), (refused, "succeeded", 1, remote_of[refused])]
    remote_id = _local(engine, document, iid)
    assert {emulator.state.files[int(r)]["name"] for r in remote_id} == {"landed.pdf", "refused.pdf"}

    # a 503 answered before the upload: the lookup finds nothing and the file goes up once
    third_doc = _add_document(engine, local[0], "third.pdf", b"%PDF third")
    emulator.core.faults.configure(fail_next_5xx=1)
    assert _share(hub, RetrySettings(max_attempts=1)).failed == [third_doc]
    assert _share(hub).uploaded == [third_doc]
    assert len(emulator.state.files) == 3


def test_a_refused_upload_is_recorded_with_procore_status_and_message(hub):
    engine, keyring, iid, local, remote, emulator = hub
    link_project(engine, keyring, iid, local[0], remote[0])
    doc = _add_document(engine, local[0], "orphan.pdf", b"%PDF orphan")
    with emulator.state.lock:
        del emulator.state.projects[remote[0]]  # the project is gone on Procore
    result = _share(hub)
    assert result.failed == [doc]
    with engine.connect() as conn:
        log = conn.execute(sa.select(sync_log).where(sync_log.c.id == result.sync_log_id)).mappings().one()
    assert log["records_failed"] == 1 and log["errors"] == [
        {"record_id": str(doc), "code": "404", "message": f"Couldn't find Project with 'id'={remote[0]}"}]
    with engine.connect() as conn:  # refused: it did not happen, so the ledger row is closed and the next run starts afresh
        assert conn.execute(sa.select(sync_write.c.status, sync_write.c.error).where(sync_write.c.local_id == doc)).one() == (
            "failed", f"Couldn't find Project with 'id'={remote[0]}")


# ---- CLI --------------------------------------------------------------------------------
def test_cli(hub, monkeypatch):
    engine, keyring, iid, local, remote, emulator = hub
    runner = CliRunner()

    def run(*args):
        return runner.invoke(procore_app, [str(a) for a in args])

    listed = run("projects", iid)
    assert listed.exit_code == 0 and str(remote[0]) in listed.output and "project " not in listed.output
    assert run("link", iid, local[0], remote[0]).output.startswith(f"project {local[0]} linked to Procore project {remote[0]}")
    refused = run("link", iid, local[1], 999)
    assert refused.exit_code == 1 and refused.output.strip() == f"Error: no Procore project 999 in Procore company {COMPANY}"
    imported = run("import", iid, remote[1])
    assert imported.exit_code == 0 and "created from Procore project" in imported.output
    assert f"project {local[0]}" in run("projects", iid).output
    _add_document(engine, local[0], "cli.pdf", b"%PDF cli")
    shared = run("share-documents", iid)
    assert shared.exit_code == 0 and shared.output.startswith("1 uploaded, 0 found already on Procore, 0 failed")
    assert run("unlink", iid, local[0]).output.strip() == f"project {local[0]} unlinked from Procore project {remote[0]}"
    again = run("unlink", iid, local[0])
    assert again.exit_code == 1 and again.output.startswith("Error: project")
