"""An external order's status history: only ever appended to, by every path that touches
the order (webhook, order job, status events, the kitchen)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hub.schema import external_order


def with_history(entry: dict[str, Any]) -> sa.ColumnElement:
    """`status_history || [entry]`, for an UPDATE's values."""
    return external_order.c.status_history.op("||")(sa.cast([entry], external_order.c.status_history.type))
