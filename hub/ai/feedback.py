"""People's verdicts on suggestions: accept, reject or correct, one at a time or in bulk.

A verdict is stored (`ai_feedback`, read by the next training: hub/ai/data.py) and acted on in
the same transaction:
- accept: the suggested answer is applied (if it was only suggested): a line's account, a
  category's mapping, a hub vendor linked to the ledger's vendor (hub/ai/vendor_match.py `link`);
- reject: an auto-applied answer is taken back (a line's account is cleared if it is still
  the suggested one; a vendor linked by the export is a hub vendor again, with its bills);
  the same answer for the same input is never auto-applied again (a rejected vendor pair:
  the next export creates the vendor);
- correct: the person's answer is applied (it must be an account of the same integration).

Suggestions are looked up within the company only: another company's suggestion is "not found".
"""

from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.ai import mapping, vendor_match
from hub.errors import NotFoundError, ValidationError
from hub.schema import AI_VERDICTS, ai_feedback, ai_suggestion, gl_account, invoice_line

_STATUS = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}


def _check_account(conn: Connection, integration_id: int, value: str) -> int:
    try:
        account_id = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{value}' is not an account id") from None
    if conn.scalar(sa.select(gl_account.c.id).where(gl_account.c.id == account_id, gl_account.c.integration_id == integration_id)) is None:
        raise ValidationError(f"account {account_id} is not an account of integration {integration_id}")
    return account_id


def _apply(conn: Connection, s, value: str) -> None:
    """Make the subject of suggestion `s` take `value`."""
    if s.subject_type == "invoice_line" and s.subject_id is not None:
        conn.execute(sa.update(invoice_line).where(invoice_line.c.id == s.subject_id).values(gl_account_id=int(value)))
    elif s.subject_type == "account_mapping":
        mapping.apply(conn, s.company_id, s.integration_id, s.input_key, int(value), float(s.probability or 0), source="manual")
    elif s.subject_type == "vendor" and s.subject_id is not None:
        vendor_match.link(conn, s.company_id, s.subject_id, int(value))


def _take_back(conn: Connection, s) -> None:
    if s.subject_type == "invoice_line" and s.subject_id is not None:
        conn.execute(sa.update(invoice_line).where(invoice_line.c.id == s.subject_id, invoice_line.c.gl_account_id == int(s.value))
                     .values(gl_account_id=None))
    elif s.subject_type == "account_mapping":
        mapping.take_back(conn, s.integration_id, s.input_key, int(s.value))
    elif s.subject_type == "vendor" and s.subject_id is not None and "moved_invoices" in (s.input or {}):  # the export linked it
        vendor_match.take_back(conn, s.company_id, s.subject_id, int(s.value), s.input["moved_invoices"])


def give(conn: Connection, company_id: int, suggestion_id: int, verdict: str, *, correct_value: str | int | None = None,
         user_id: int | None = None) -> None:
    """Record and act on one verdict (see the module docstring)."""
    if verdict not in AI_VERDICTS:
        raise ValidationError(f"verdict must be one of {', '.join(AI_VERDICTS)}, not '{verdict}'")
    s = conn.execute(sa.select(ai_suggestion).where(ai_suggestion.c.id == suggestion_id, ai_suggestion.c.company_id == company_id)
                     .with_for_update()).first()
    if s is None:
        raise NotFoundError(f"no suggestion {suggestion_id}")
    if s.status != "open":
        raise ValidationError(f"suggestion {suggestion_id} was already {s.status}")
    right = None
    if verdict == "correct":
        if correct_value is None:
            raise ValidationError("a correction needs the right answer")
        right = str(_check_account(conn, s.integration_id, str(correct_value)) if s.task != "vendor_match" else correct_value)
        if right == s.value:
            verdict, right = "accept", s.value
    if verdict == "accept":
        right = s.value
        if s.action != "auto_applied":
            _apply(conn, s, s.value)
    elif verdict == "reject":
        if s.action == "auto_applied":
            _take_back(conn, s)
    else:
        if s.action == "auto_applied":
            _take_back(conn, s)
        _apply(conn, s, right)
    conn.execute(sa.update(ai_suggestion).where(ai_suggestion.c.id == s.id).values(status=_STATUS[verdict], decided_at=sa.func.now()))
    conn.execute(ai_feedback.insert().values(
        company_id=s.company_id, integration_id=s.integration_id, task=s.task, suggestion_id=s.id, input_key=s.input_key,
        input=s.input, verdict=verdict, suggested=s.value, correct_value=right, user_id=user_id))


def give_many(conn: Connection, company_id: int, suggestion_ids: Iterable[int], verdict: str, *, user_id: int | None = None) -> int:
    """The same verdict (accept or reject) on many suggestions; all or none. Returns how many."""
    if verdict == "correct":
        raise ValidationError("corrections are given one by one (each needs its right answer)")
    n = 0
    for suggestion_id in sorted(set(suggestion_ids)):
        give(conn, company_id, suggestion_id, verdict, user_id=user_id)
        n += 1
    return n


def open_suggestions(conn: Connection, company_id: int, task: str | None = None, limit: int = 200) -> list[dict]:
    """Undecided suggestions of the company, newest first (what the page lists)."""
    query = sa.select(ai_suggestion).where(ai_suggestion.c.company_id == company_id, ai_suggestion.c.status == "open")
    if task:
        query = query.where(ai_suggestion.c.task == task)
    return [dict(r) for r in conn.execute(query.order_by(ai_suggestion.c.id.desc()).limit(limit)).mappings()]
