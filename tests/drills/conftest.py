"""The drills' fixtures: a fresh network of hosts and a fresh PostgreSQL per drill, torn
down at the end even when the drill fails. Root only (namespaces, the postgres user).

The normal suite does not collect this directory (`norecursedirs` in pyproject.toml);
`make drills` runs it by path. Each drill appends its counts to `REPORT`, printed again
after the results."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hub import db
from hub import integrations as store
from hub.crypto import Keyring
from hub.inbound.provider_endpoints import create_inbound
from tests.drills import netns
from tests.drills.cluster import Cluster
from tests.drills.load import STORE_ID

HOSTS = ("db", "web1", "web2", "lb", "worker1", "worker2", "orchestrator", "codeserver")
UBER_SECRET = "drill-ubereats-client-secret"
REPORT: list[str] = []


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        raise pytest.UsageError("the drills need root (network namespaces, a PostgreSQL cluster run as postgres)")


def pytest_terminal_summary(terminalreporter, config):
    if REPORT:
        terminalreporter.section("drill counts")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def cluster(request):
    netns.sweep()
    workdir = Path(tempfile.mkdtemp(prefix="hubdrill-"))
    os.chmod(workdir, 0o755)  # the postgres user reaches its data directory inside
    net = netns.Network(HOSTS, workdir)
    c = None
    try:
        net.up()
        c = Cluster(net)
        c.init_postgres()
        yield c
    finally:
        if c is not None:
            db.engine(c.db_url).dispose()
        net.down()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\ndrill logs kept in {workdir}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def engine(cluster):
    return db.engine(cluster.db_url)


@pytest.fixture
def uber_endpoint(cluster, engine):
    """An active Uber Eats integration with its inbound endpoint: the endpoint's id."""
    keyring = Keyring([cluster.keys])
    with engine.begin() as conn:
        company_id = store.create_company(conn, "Drill Pizza")
        integration_id = store.add_integration(conn, keyring, company_id=company_id, provider="ubereats",
                                               config={"store_id": STORE_ID},
                                               credentials={"client_id": "drill", "client_secret": UBER_SECRET}, active=True)
        return create_inbound(conn, keyring, integration_id)
