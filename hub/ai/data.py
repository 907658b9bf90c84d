"""The training data of the AI assist: the integration's own ledger history, as the pull
imported it (hub/sync/invoices.py), plus what people told the assist since.

- Line coding: every line of the integration's payable invoices (QuickBooks `Bill`, Xero
  ACCPAY) that has a description and an account of this integration's chart
  (`invoice_line.gl_account_id`), with the invoice's vendor and the line's amount; deleted
  and voided bills are left out. Corrections (`ai_feedback` verdict `correct`) join as
  weighted examples, latest per input.
- Account mapping: the same lines that carry a hub category, counted per (category, account);
  measured on the categories whose account a person chose (`known_mappings`).
- Vendor matching (measured only, it learns nothing): the hub vendors people decided a
  suggestion about, and the ledger vendor each is (`vendor_verdicts`).

Only rows of the one integration are read: a model learns one company's ledger and no other.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection

from hub.ai.lines import CORRECTION_WEIGHT, Example, LineInput
from hub.schema import account_mapping, ai_feedback, gl_account, integration, invoice, invoice_line, vendor

# how many labelled items a held-out evaluation needs per task (fewer: too noisy to show)
EVALUATION_MIN = {"line_coding": 100,  # coded bill lines of the history
                  "account_mapping": 10,  # categories whose account a person chose
                  "vendor_match": 20}  # vendors people decided a match about

_CODED = (
    sa.select(invoice_line.c.id, invoice_line.c.description, invoice.c.vendor_id, invoice_line.c.amount,
              invoice_line.c.gl_account_id, invoice_line.c.category)
    .select_from(invoice_line.join(invoice, invoice.c.id == invoice_line.c.invoice_id)
                 .join(gl_account, gl_account.c.id == invoice_line.c.gl_account_id))
    .where(invoice.c.integration_id == sa.bindparam("integration_id"), invoice.c.kind == "payable",
           invoice.c.status.notin_(("deleted", "voided")), gl_account.c.integration_id == sa.bindparam("integration_id"),
           gl_account.c.is_active, sa.func.coalesce(sa.func.trim(invoice_line.c.description), "") != "")
)


def company_of(conn: Connection, integration_id: int) -> int:
    company_id = conn.scalar(sa.select(integration.c.company_id).where(integration.c.id == integration_id))
    if company_id is None:
        raise LookupError(f"no integration {integration_id}")
    return company_id


def line_input(description: str | None, vendor_id: int | None, amount) -> LineInput:
    return LineInput(description or "", "" if vendor_id is None else str(vendor_id), float(amount or 0))


def coding_examples(conn: Connection, integration_id: int) -> list[Example]:
    """The integration's coded payable lines plus people's corrections (see the module docstring)."""
    examples = [Example(line_input(r.description, r.vendor_id, r.amount), str(r.gl_account_id))
                for r in conn.execute(_CODED, {"integration_id": integration_id})]
    return examples + corrections(conn, integration_id, "line_coding")


def corrections(conn: Connection, integration_id: int, task: str) -> list[Example]:
    """The latest correction of each input (a later accept or correct replaces an earlier one)."""
    rows = conn.execute(
        sa.select(ai_feedback.c.input_key, ai_feedback.c.input, ai_feedback.c.correct_value)
        .where(ai_feedback.c.integration_id == integration_id, ai_feedback.c.task == task,
               ai_feedback.c.verdict.in_(("correct", "accept")), ai_feedback.c.correct_value.isnot(None))
        .ext(distinct_on(ai_feedback.c.input_key)).order_by(ai_feedback.c.input_key, ai_feedback.c.id.desc()))
    out = []
    for r in rows:
        data = r.input or {}
        out.append(Example(LineInput(data.get("description") or "", str(data.get("vendor") or ""), float(data.get("amount") or 0)),
                           r.correct_value, CORRECTION_WEIGHT, correction=True))
    return out


def rejected(conn: Connection, integration_id: int, task: str, input_keys: list[str]) -> set[tuple[str, str]]:
    """(input key, answer) pairs people rejected: never applied automatically again."""
    if not input_keys:
        return set()
    rows = conn.execute(sa.select(ai_feedback.c.input_key, ai_feedback.c.suggested)
                        .where(ai_feedback.c.integration_id == integration_id, ai_feedback.c.task == task,
                               ai_feedback.c.verdict == "reject", ai_feedback.c.input_key.in_(sorted(set(input_keys)))))
    return {(r.input_key, r.suggested) for r in rows}


def category_accounts(conn: Connection, integration_id: int) -> dict[str, Counter]:
    """How often each hub category's lines were coded to each account, in this integration's history."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in conn.execute(_CODED.where(invoice_line.c.category.isnot(None)), {"integration_id": integration_id}):
        counts[r.category][str(r.gl_account_id)] += 1
    return counts


def known_mappings(conn: Connection, integration_id: int) -> dict[str, str]:
    """category -> account (the hub's gl_account id, as text) that a person chose: the
    integration's mappings made by hand (or accepted and corrected suggestions, which are
    stored so), and verdicts on mapping suggestions whose mapping is gone since. Accounts of
    the integration's active chart only."""
    accounts = set(conn.scalars(sa.select(gl_account.c.id).where(gl_account.c.integration_id == integration_id, gl_account.c.is_active)))
    known = {r.input_key: r.correct_value for r in conn.execute(
        sa.select(ai_feedback.c.input_key, ai_feedback.c.correct_value)
        .where(ai_feedback.c.integration_id == integration_id, ai_feedback.c.task == "account_mapping",
               ai_feedback.c.verdict.in_(("accept", "correct")), ai_feedback.c.correct_value.isnot(None))
        .ext(distinct_on(ai_feedback.c.input_key)).order_by(ai_feedback.c.input_key, ai_feedback.c.id.desc()))}
    known.update({r.local_category: str(r.gl_account_id) for r in conn.execute(
        sa.select(account_mapping.c.local_category, account_mapping.c.gl_account_id)
        .where(account_mapping.c.integration_id == integration_id, account_mapping.c.source == "manual"))})
    return {c: a for c, a in known.items() if c.strip() and a.isdigit() and int(a) in accounts}


def vendor_verdicts(conn: Connection, integration_id: int) -> list[tuple[dict, str | None]]:
    """(hub vendor, the ledger vendor it is: that vendor row's id as text, or None) for each
    vendor of the company people decided a vendor-matching suggestion about: the newest
    accepted (or corrected) answer; None when they rejected every one (not one of those)."""
    company_id = company_of(conn, integration_id)
    verdicts: dict[int, str | None] = {}
    for r in conn.execute(sa.select(ai_feedback.c.input_key, ai_feedback.c.verdict, ai_feedback.c.correct_value)
                          .where(ai_feedback.c.integration_id == integration_id, ai_feedback.c.task == "vendor_match")
                          .order_by(ai_feedback.c.id)):
        key = r.input_key.removeprefix("vendor:")
        if not key.isdigit():
            continue
        if r.verdict in ("accept", "correct") and r.correct_value:
            verdicts[int(key)] = r.correct_value
        else:
            verdicts.setdefault(int(key), None)
    if not verdicts:
        return []
    rows = {r["id"]: dict(r) for r in conn.execute(
        sa.select(vendor.c.id, vendor.c.display_name, vendor.c.email, vendor.c.tax_id)
        .where(vendor.c.id.in_(sorted(verdicts)), vendor.c.company_id == company_id)).mappings()}
    return [(rows[i], verdicts[i]) for i in sorted(verdicts) if i in rows]
