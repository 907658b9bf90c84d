"""Environment variables the hub reads, in one place.

| variable | meaning | default |
|---|---|---|
| HUB_DATABASE_URL | SQLAlchemy URL of the hub database | unset: embedded PostgreSQL (pgserver) |
| HUB_STATE_DIR | folder for local state (embedded PostgreSQL data, logs) | `<project>/.hub` |
| HUB_SECRET_KEYS | comma-separated encryption keys, newest first | none: secrets cannot be read or written |
| DAGSTER_PG_URL | Dagster instance storage URL (psycopg2) | derived from the hub server, database `dagster` |
| HUB_SESSION_SECRET | key signing the settings pages' session cookie | derived from HUB_SECRET_KEYS (HKDF) |
| HUB_SESSION_IDLE_MINUTES | a settings session ends after this long without a request | 30 |
| HUB_DEMO_PORT_BASE | the demo's first emulator port (`hub demo seed`/`outbound`; scripts/demo.sh) | 8101 |
| HUB_WEB_PORT | the demo's hub web app port (`hub demo connect`; scripts/demo.sh) | 8000 |
| HUB_OUTBOUND_ALLOW | IP networks outbound webhooks may reach despite the SSRF guard (e.g. `127.0.0.1/32,::1`) | none |
| HUB_OAUTH_<PROVIDER>_CLIENT_ID / _CLIENT_SECRET / _BASE_URL / _<FIELD> | the hub's OAuth app per provider the settings pages connect (hub/connect/oauth_flow.py) | none: no Connect |
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_VAR = "HUB_DATABASE_URL"
STATE_DIR_VAR = "HUB_STATE_DIR"
SECRET_KEYS_VAR = "HUB_SECRET_KEYS"
DAGSTER_PG_URL_VAR = "DAGSTER_PG_URL"
SESSION_SECRET_VAR = "HUB_SESSION_SECRET"
SESSION_IDLE_VAR = "HUB_SESSION_IDLE_MINUTES"
DEMO_PORT_BASE_VAR = "HUB_DEMO_PORT_BASE"
WEB_PORT_VAR = "HUB_WEB_PORT"
PUBLIC_URL_VAR = "HUB_PUBLIC_URL"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where local state lives; created on first use."""
    path = Path(os.environ.get(STATE_DIR_VAR) or PROJECT_ROOT / ".hub")
    path.mkdir(parents=True, exist_ok=True)
    return path
