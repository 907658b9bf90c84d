"""Secrets at rest in the database: which keys they are under, and key rotation.

The encrypted columns are listed once, in `hub.schema.ENCRYPTED_COLUMNS`.

- `assert_keyring_covers` runs before every write of a secret: if the database holds
  values under a key the configured keyring does not have, the keyring is wrong (or an old
  key was dropped too early) and writing under it would split the data across keys nobody
  holds together. It refuses, and nothing is written.
- `rotate` re-encrypts everything under the newest key in one transaction, with the
  tables locked against concurrent writers: all values end under the newest key, or, if
  any cannot be decrypted, nothing is written and the error names the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.crypto import Keyring, is_envelope
from hub.errors import SecretKeyError
from hub.schema import ENCRYPTED_COLUMNS
from hub.settings import SECRET_KEYS_VAR


def purpose(table: sa.Table, column: str) -> str:
    """The associated data bound into a column's ciphertexts."""
    return f"{table.name}.{column}"


def stored_key_ids(conn: Connection) -> set[str]:
    kids: set[str] = set()
    for table, column_name in ENCRYPTED_COLUMNS:
        column = table.c[column_name]
        kids.update(conn.execute(sa.select(column["kid"].astext).where(column.is_not(None)).distinct()).scalars())
    kids.discard(None)
    return kids


def assert_keyring_covers(conn: Connection, keyring: Keyring) -> None:
    missing = stored_key_ids(conn) - set(keyring.key_ids)
    if missing:
        raise SecretKeyError(
            f"{SECRET_KEYS_VAR} lacks key(s) {', '.join(sorted(missing))} that stored secrets are encrypted under "
            f"(configured: {', '.join(keyring.key_ids)}); is it the wrong key? Nothing was written"
        )


@dataclass
class RotationReport:
    examined: int = 0
    rotated: int = 0

    def __str__(self) -> str:
        return f"{self.rotated} of {self.examined} encrypted values re-encrypted"


def rotate(engine: Engine, keyring: Keyring) -> RotationReport:
    report = RotationReport()
    with engine.begin() as conn:
        # writers (integration add, endpoint secrets) wait until the rotation commits
        tables = sorted({table.name for table, _ in ENCRYPTED_COLUMNS})
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
        for table, column_name in ENCRYPTED_COLUMNS:
            label = purpose(table, column_name)
            column = table.c[column_name]
            rows = conn.execute(sa.select(table.c.id, column).where(column.is_not(None)).order_by(table.c.id)).all()
            for row_id, envelope in rows:
                report.examined += 1
                if not is_envelope(envelope):
                    raise SecretKeyError(f"{label} of row {row_id} is not an encrypted envelope; nothing was rotated")
                if not keyring.needs_rotation(envelope):
                    continue
                try:
                    value = keyring.decrypt(envelope, label)
                except SecretKeyError as exc:
                    raise SecretKeyError(f"row {row_id}: {exc}; nothing was rotated") from None
                conn.execute(sa.update(table).where(table.c.id == row_id).values({column_name: keyring.encrypt(value, label)}))
                report.rotated += 1
    return report
