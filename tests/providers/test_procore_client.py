"""The Procore client against the Procore emulator over real HTTP."""

from datetime import datetime, timedelta, timezone

import pytest

from emulators.procore import create_emulator
from hub.providers.errors import ConfigurationProblem, QuotaExhausted
from hub.providers.procore.client import ProcoreClient, ProcoreDialect
from tests.providers.conftest import running, transport_for

COMPANY = 562949953421312


@pytest.fixture(scope="module")
def emulator():
    return create_emulator(projects=2, rfis_per_project=3000, submittals_per_project=20, daily_logs_per_project=3)


@pytest.fixture(scope="module")
def base_url(emulator):
    with running(emulator) as url:
        yield url


@pytest.fixture
def client(emulator, base_url):
    emulator.core.faults.reset()
    emulator.set_rate_limits(hourly_limit=3600, reset=True)
    transport = transport_for(emulator, base_url, ProcoreDialect(), "/oauth/token", {"company_id": COMPANY})
    yield ProcoreClient(transport, COMPANY)
    transport.close()


def _project(emulator) -> int:
    return min(emulator.state.projects)


def _remote_ids(emulator, project_id) -> set[int]:
    return {r["id"] for r in emulator.state.records("rfi", project_id) if not r.get("deleted")}


def test_connection_check(client):
    assert client.check()["company_id"] == str(COMPANY)


def test_full_pagination_is_exact(client, emulator):
    pid = _project(emulator)
    seen = [r["id"] for page in client.rfis(pid) for r in page]
    assert len(seen) == len(set(seen)) == 3000
    assert set(seen) == _remote_ids(emulator, pid)


def test_pagination_through_429s_5xx_latency_and_dropped_connections(client, emulator):
    pid = _project(emulator)
    emulator.core.faults.configure(burst_429=3, retry_after_s=0, error_rate_5xx=0.25, latency_ms=20, drop_next=2, seed=7)
    seen = [r["id"] for page in client.rfis(pid) for r in page]
    assert len(seen) == len(set(seen))  # no duplicates
    assert set(seen) == _remote_ids(emulator, pid)  # nothing lost
    injected = emulator.core.faults.injected
    assert injected["429"] >= 3 and injected["drop"] >= 2 and injected["5xx"] >= 1
    assert client.transport.retries >= 6


def test_incremental_pull_after_remote_edits(client, emulator):
    pid = _project(emulator)
    since = datetime.now(timezone.utc) - timedelta(seconds=2)
    changed = sorted(_remote_ids(emulator, pid))[:3]
    for rid in changed:
        emulator.state.update("rfi", rid, {"subject": f"changed {rid}"}, project_id=pid)
    got = [r for page in client.rfis(pid, updated_since=since, until=datetime.now(timezone.utc) + timedelta(seconds=2)) for r in page]
    assert sorted(r["id"] for r in got) == changed
    assert all(r["subject"] == f"changed {r['id']}" for r in got)


def test_access_token_expiring_mid_pagination(client, emulator):
    pid = _project(emulator)
    pages = client.rfis(pid)
    first = next(pages)
    refreshes_before = emulator.core.oauth.refreshes
    emulator.core.oauth.expire_access_tokens()  # the provider drops our token between pages
    rest = [r["id"] for page in pages for r in page]
    assert set(r["id"] for r in first) | set(rest) == _remote_ids(emulator, pid)
    assert emulator.core.oauth.refreshes == refreshes_before + 1


def test_hourly_quota_used_up_is_a_clear_error_not_a_wait(client, emulator):
    emulator.set_rate_limits(hourly_limit=2, reset=True)
    client.check()
    client.check()
    started = datetime.now()
    with pytest.raises(QuotaExhausted, match="procore"):
        client.check()
    assert (datetime.now() - started).total_seconds() < 3


def test_unknown_company_is_a_configuration_problem(emulator, base_url):
    transport = transport_for(emulator, base_url, ProcoreDialect(), "/oauth/token", {"company_id": COMPANY})
    other = ProcoreClient(transport, 42)
    with pytest.raises(ConfigurationProblem):
        list(other.rfis(_project(emulator)))
    transport.close()
