"""Metering of the AI assist per company, task and month (`ai_usage`): predictions made,
trainings run and the CPU seconds they took, and their cost at the company's price per CPU
hour. Rows are incremented in the caller's transaction, so a rolled-back page meters nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.ai import settings
from hub.schema import ai_usage


THIS_MONTH = sa.func.date_trunc("month", sa.func.timezone("UTC", sa.func.now()))  # this month's first day, UTC (a timestamp)


def record(conn: Connection, company_id: int, task: str, *, predictions: int = 0, training_runs: int = 0,
           cpu_seconds: float = 0.0) -> None:
    month = sa.cast(THIS_MONTH, sa.Date)
    stmt = insert(ai_usage).values(company_id=company_id, task=task, month=month, predictions=predictions,
                                   training_runs=training_runs, cpu_seconds=round(cpu_seconds, 3))
    conn.execute(stmt.on_conflict_do_update(index_elements=["company_id", "task", "month"], set_={
        "predictions": ai_usage.c.predictions + stmt.excluded.predictions,
        "training_runs": ai_usage.c.training_runs + stmt.excluded.training_runs,
        "cpu_seconds": ai_usage.c.cpu_seconds + stmt.excluded.cpu_seconds}))


def report(conn: Connection, company_id: int) -> list[dict]:
    """Per task and month, newest first: predictions, training runs, CPU seconds and their cost."""
    price = settings.read(conn, company_id).price_per_cpu_hour
    rows = conn.execute(sa.select(ai_usage).where(ai_usage.c.company_id == company_id)
                        .order_by(ai_usage.c.month.desc(), ai_usage.c.task)).mappings()
    return [{"task": r["task"], "month": r["month"], "predictions": r["predictions"], "training_runs": r["training_runs"],
             "cpu_seconds": float(r["cpu_seconds"]), "cost": round(float(r["cpu_seconds"]) / 3600 * price, 6)} for r in rows]

