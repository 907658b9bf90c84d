"""Which integrations the sync schedules consider, and which of them are due tonight.

Read by the Dagster schedules (pipelines/schedules.py), which only add what needs the Dagster
instance (the run-key lookup). Kept here, without Dagster, so the selection and the local-hour
rule are the hub's: an integration is a candidate when it is active and its preferences leave
at least one stream on; its company's time zone decides when its night comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.crypto import Keyring
from hub.integrations import CONFIG_PURPOSE, partition_key
from hub.schema import company, integration
from hub.sync import preferences


@dataclass(frozen=True)
class Candidate:
    provider: str
    integration_id: int
    timezone: str
    prefs: preferences.SyncPreferences

    @property
    def partition_key(self) -> str:
        return partition_key(self.provider, self.integration_id)


def load_candidates(engine: Engine, keyring: Keyring, provider: str) -> list[Candidate]:
    """Active integrations of `provider` with at least one stream switched on, by id."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(integration.c.id, company.c.timezone, integration.c.config)
            .join(company, company.c.id == integration.c.company_id)
            .where(integration.c.is_active, integration.c.provider == provider)
            .order_by(integration.c.id)
        ).all()
    candidates = [
        Candidate(provider, row.id, row.timezone, preferences.from_config(provider, keyring.decrypt(row.config, CONFIG_PURPOSE)))
        for row in rows
    ]
    return [c for c in candidates if c.prefs.any_enabled]


def due_tonight(candidates: list[Candidate], now_utc: datetime) -> list[tuple[str, str]]:
    """(partition key, run key) of those whose sync hour has come on their company's local date
    at `now_utc`, whether or not that night's run happened yet (the schedule asks Dagster)."""
    due = []
    for c in candidates:
        local = now_utc.astimezone(ZoneInfo(c.timezone))
        if local.hour >= c.prefs.hour:
            due.append((c.partition_key, f"{c.partition_key}:{local.date().isoformat()}"))
    return due
