"""The external model's monthly budget, a hard cap, and the metering of every call
(`ai_external_call`).

How the cap holds with several scorers at once (import steps of several integrations, web
workers): a call is *reserved* before it is made and *settled* after, each in a short
transaction of its own that locks the company's `ai_external_setting` row (SELECT ... FOR
UPDATE), so reservations of one company are serialised:

1. `reserve`: under the lock, this month's spend is summed (settled calls at their cost,
   calls still pending at their reservation); if it plus this call's worst case (the prompt's
   token bound and `max_tokens` at the company's prices) is above the budget, the call is not
   made: a `refused_budget` row records it and the caller gets None. Otherwise a `pending` row
   holding the worst case is written and committed before the HTTP request starts.
2. `settle`: the row gets the provider's token counts, their cost and the outcome. A call
   sent that got no answer (a read timeout, a connection cut) may have been billed: it keeps
   its worst case as its cost. An error the provider answered (401, 429, 5xx) or a connection
   never made costs nothing.

The sum of reservations and costs therefore never passes the budget, whatever the timing; a
process that dies mid-call leaves its row `pending`, counted at its worst case for good (the
provider may have billed it): the cap errs on the side of spending less. The price of this
is the bound: a prompt's worst case counts UTF-8 bytes as tokens, so near the cap a call
that would have fitted may be refused.

Why transactions of their own (a second connection of the caller's engine), not the caller's:
the money is spent whether or not the import page that asked commits, so its record must not
roll back with the page; and the lock is held for a few milliseconds, never across an HTTP
call. The caller's transaction only reads, so the two cannot wait on each other (a 5 s
lock_timeout ends any surprise).

The 80% notice: when settled spend reaches 80% of the budget, the `ai.budget_80` event goes
to the company's notification routes and webhook endpoints (hub/outbound/outbox.py), once per
company and month (`notified_month`, set in the same transaction as the event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.ai import usage
from hub.outbound.outbox import emit
from hub.schema import ai_external_call, ai_external_setting

NOTICE_SHARE = Decimal("0.8")
EVENT = "ai.budget_80"
_MICRO = Decimal("0.000001")
_MONTH = usage.THIS_MONTH
_MONTH_START = sa.func.timezone("UTC", _MONTH)  # ... as a timestamptz


def token_cost(tokens: int, price_per_1k: Decimal, *, up: bool = False) -> Decimal:
    """What `tokens` cost at `price_per_1k`, to a millionth (rounded up for a reservation)."""
    return (Decimal(tokens) * Decimal(price_per_1k) / 1000).quantize(_MICRO, rounding=ROUND_CEILING if up else ROUND_HALF_UP)


@dataclass(frozen=True)
class Reservation:
    call_id: int
    company_id: int
    worst: Decimal


def _lock(conn: Connection, company_id: int):
    conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
    return conn.execute(sa.select(ai_external_setting).where(ai_external_setting.c.company_id == company_id)
                        .with_for_update()).mappings().first()


def month_spend(conn: Connection, company_id: int) -> Decimal:
    """This month's spend (UTC): settled calls at their cost, pending ones at their reservation."""
    held = sa.case((ai_external_call.c.outcome == "pending", ai_external_call.c.reserved), else_=ai_external_call.c.cost)
    return Decimal(conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(held), 0))
                               .where(ai_external_call.c.company_id == company_id, ai_external_call.c.created_at >= _MONTH_START)))


def _settled_spend(conn: Connection, company_id: int) -> Decimal:
    return Decimal(conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(ai_external_call.c.cost), 0))
                               .where(ai_external_call.c.company_id == company_id, ai_external_call.c.created_at >= _MONTH_START,
                                      ai_external_call.c.outcome != "pending")))


def _notice(conn: Connection, setting, spent: Decimal) -> None:
    """The 80% notice, once per company-month (under the row lock)."""
    budget = Decimal(setting["monthly_budget"])
    if budget <= 0 or spent < budget * NOTICE_SHARE:
        return
    month = conn.scalar(sa.select(sa.cast(_MONTH, sa.Date)))
    if setting["notified_month"] == month:
        return
    conn.execute(sa.update(ai_external_setting).where(ai_external_setting.c.id == setting["id"]).values(notified_month=month))
    share = spent / budget
    emit(conn, setting["company_id"], EVENT, {
        "company_id": setting["company_id"], "month": month.strftime("%Y-%m"), "model": setting["model"],
        "budget": float(budget), "spent": float(round(spent, 4)), "share": float(round(share, 4)),
        "message": f"The external AI model has used {share * 100:.0f}% of this month's budget ({spent:.2f} of {budget:.2f}); "
                   "at the budget its calls stop until next month (raise it on the AI assist page)."})


def reserve(engine: Engine, company_id: int, integration_id: int | None, task: str, model: str, lines: int,
            worst: Decimal) -> Reservation | None:
    """Hold `worst` of this month's budget for one call, or record the refusal and return None."""
    with engine.begin() as conn:
        setting = _lock(conn, company_id)
        if setting is None:
            return None
        budget, spent = Decimal(setting["monthly_budget"]), month_spend(conn, company_id)
        row = {"company_id": company_id, "integration_id": integration_id, "task": task, "model": model, "lines": lines}
        if spent + worst > budget:
            conn.execute(ai_external_call.insert().values(
                **row, outcome="refused_budget", finished_at=sa.func.now(),
                detail=f"not called: this month's budget of {budget:.2f} is spent or held ({spent:.4f}); this call could "
                       f"cost up to {worst:.4f}"))
            _notice(conn, setting, _settled_spend(conn, company_id))
            return None
        call_id = conn.scalar(ai_external_call.insert().values(**row, outcome="pending", reserved=worst)
                              .returning(ai_external_call.c.id))
    return Reservation(call_id, company_id, worst)


def settle(engine: Engine, reservation: Reservation, *, outcome: str, input_tokens: int = 0, output_tokens: int = 0,
           cost: Decimal = Decimal(0), answered: int = 0, refused: int = 0, detail: str | None = None) -> None:
    """Record what the call did and cost; the 80% notice if this call crossed it."""
    with engine.begin() as conn:
        setting = _lock(conn, reservation.company_id)
        conn.execute(sa.update(ai_external_call).where(ai_external_call.c.id == reservation.call_id).values(
            outcome=outcome, input_tokens=input_tokens, output_tokens=output_tokens, cost=cost, answered=answered,
            refused=refused, detail=detail, finished_at=sa.func.now()))
        if setting is not None:
            _notice(conn, setting, _settled_spend(conn, reservation.company_id))


def report(conn: Connection, company_id: int) -> list[dict]:
    """Per month (UTC), newest first: calls made, refused by the budget, failed; tokens; cost."""
    month = sa.cast(sa.func.date_trunc("month", sa.func.timezone("UTC", ai_external_call.c.created_at)), sa.Date).label("month")
    c = ai_external_call.c

    def count(*where) -> sa.ColumnElement:
        return sa.func.count().filter(*where)

    rows = conn.execute(sa.select(month, count(c.outcome.in_(("ok", "invalid_answer", "error", "pending"))).label("calls"),
                                  count(c.outcome == "refused_budget").label("refused_budget"),
                                  count(c.outcome.in_(("error", "invalid_answer"))).label("failed"),
                                  sa.func.sum(c.answered).label("answered"), sa.func.sum(c.input_tokens).label("input_tokens"),
                                  sa.func.sum(c.output_tokens).label("output_tokens"), sa.func.sum(c.cost).label("cost"))
                        .where(c.company_id == company_id).group_by(month).order_by(month.desc())).mappings()
    return [{**r, "cost": Decimal(r["cost"] or 0), "answered": int(r["answered"] or 0),
             "input_tokens": int(r["input_tokens"] or 0), "output_tokens": int(r["output_tokens"] or 0)} for r in rows]


def current_month(conn: Connection) -> date:
    return conn.scalar(sa.select(sa.cast(_MONTH, sa.Date)))


def last_problem(conn: Connection, company_id: int) -> dict | None:
    """The newest call that failed or gave an unusable answer: when, and the sentence."""
    row = conn.execute(sa.select(ai_external_call.c.created_at, ai_external_call.c.outcome, ai_external_call.c.detail)
                       .where(ai_external_call.c.company_id == company_id,
                              ai_external_call.c.outcome.in_(("error", "invalid_answer", "refused_budget")))
                       .order_by(ai_external_call.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None
