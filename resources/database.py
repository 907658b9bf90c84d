"""The hub database as a Dagster resource."""

from typing import Optional

import dagster as dg
from sqlalchemy.engine import Engine

from hub import db


class HubDatabase(dg.ConfigurableResource):
    """PostgreSQL holding the hub schema.

    `url` is normally left unset: the resource then follows `HUB_DATABASE_URL` (or the
    embedded server), like the CLI and the web app. If set, pass `dg.EnvVar(...)` so the
    Dagster UI shows the variable's name, never a password.
    """

    url: Optional[str] = None

    def get_engine(self) -> Engine:
        return db.engine(self.url)
