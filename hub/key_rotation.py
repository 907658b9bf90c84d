"""Re-encrypt every stored secret under the newest key (`hub keys rotate`).

One transaction over all encrypted columns (`hub.schema.ENCRYPTED_COLUMNS`), rows locked
as they are read: either every value ends under the newest key or, if any value cannot
be decrypted with the configured keys, nothing is written and the error names the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.crypto import Keyring, is_envelope
from hub.errors import SecretKeyError
from hub.schema import ENCRYPTED_COLUMNS


@dataclass
class RotationReport:
    examined: int = 0
    rotated: int = 0

    def __str__(self) -> str:
        return f"{self.rotated} of {self.examined} encrypted values re-encrypted"


def rotate(engine: Engine, keyring: Keyring) -> RotationReport:
    report = RotationReport()
    with engine.begin() as conn:
        for table, column_name in ENCRYPTED_COLUMNS:
            purpose = f"{table.name}.{column_name}"
            column = table.c[column_name]
            rows = conn.execute(
                sa.select(table.c.id, column).where(column.is_not(None)).order_by(table.c.id).with_for_update()
            ).all()
            for row_id, envelope in rows:
                report.examined += 1
                if not is_envelope(envelope):
                    raise SecretKeyError(f"{purpose} of row {row_id} is not an encrypted envelope; nothing was rotated")
                if not keyring.needs_rotation(envelope):
                    continue
                try:
                    value = keyring.decrypt(envelope, purpose)
                except SecretKeyError as exc:
                    raise SecretKeyError(f"row {row_id}: {exc}; nothing was rotated") from None
                conn.execute(sa.update(table).where(table.c.id == row_id).values({column_name: keyring.encrypt(value, purpose)}))
                report.rotated += 1
    return report
