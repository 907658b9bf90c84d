"""Embedded PostgreSQL for machines without a server: `pgserver` ships real binaries.

The data folder lives under the state directory (`.hub/pgdata`). The server is started
detached from the process that started it (cleanup_mode=None) so the demo's several
processes (CLI, dagster dev, code server, runs) share one server, and the next start
reuses it. `stop()` shuts it down cleanly with `pg_ctl stop`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from hub.settings import state_dir

log = logging.getLogger(__name__)


def data_dir() -> Path:
    return state_dir() / "pgdata"


_started: dict[Path, URL] = {}  # per process: start once, not on every engine request


def start() -> URL:
    """Start (or attach to) the embedded server; return a URL to its `postgres` database."""
    known = _started.get(data_dir())
    if known is not None and is_running():
        return known
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only needed when no server is configured

    pgdata = data_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    # pgserver caches one handle per folder even after the server stopped; start afresh so
    # a stopped server is started again (attaching to a running one costs milliseconds)
    pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    url = make_url(server.get_uri())
    # pgserver keeps a list of attached pids to decide who stops the server; we stop it
    # explicitly instead, so detach this process from that bookkeeping.
    server.global_process_id_list.get_and_remove(os.getpid())
    url = url.set(drivername="postgresql+psycopg")
    _started[data_dir()] = url
    return url


def is_running() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir())
    return info is not None and info.is_running()


def stop() -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    if not is_running():
        return False
    from pgserver.postgres_server import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user under root
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data_dir(), user=user)
    _started.pop(data_dir(), None)
    return True
