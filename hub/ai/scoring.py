"""Scoring bill lines inside the import and export steps: `suggest_for_lines`, and the steps'
one hook, `code_lines` (the uncoded lines of the invoices a step handles).

Each line gets the integration's newest line-coding model's account and its calibrated
probability, and an action from the company's settings (hub/ai/settings.py): auto-applied at
or above the high threshold (the line's account is set, only if it has none), suggested
between low and high, nothing below low. Suggestion rows (`ai_suggestion`) are written in the
caller's transaction, so a page that rolls back leaves no suggestion behind, and usage is
metered the same way.

Lines left without an answer (below the low threshold, or no model yet) go to the company's
external model when it has one on (hub/ai/external_model.py): its answers are only ever
suggested (`source = external`), its calls metered and capped by their own budget. An input it
answered before is not asked again (an import re-reads a changed bill's lines): its open or
accepted answer is suggested again, and after a person's reject or correction it is not asked
at all (the hub's own model learns the verdict).

Whose data: the model is looked up by the integration *and its company*, and every line and
vendor passed must belong to that company: a line of an invoice of this integration or of
the company's own (not yet exported) invoices, a vendor of the company. Anything else is
refused before anything is scored: a model never scores another company's data, nor another
integration's lines (whose chart it does not know).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection

from hub.ai import data, external_model, external_settings, settings, storage, usage
from hub.ai.lines import LineInput, input_key
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.schema import ai_suggestion, gl_account, invoice, invoice_line, vendor

TASK = "line_coding"
DRY_RUN = "hub_ai_dry_run"  # execution option of a connection whose scoring will be rolled back (the export preview)
log = logging.getLogger(__name__)


def dry_run(conn: Connection) -> bool:
    """Whether `conn` scores for a preview: its transaction is rolled back, so what scoring
    writes is undone, and anything it would do outside the database (a paid call to an
    external model) must be left out."""
    return bool(conn.get_execution_options().get(DRY_RUN))


@dataclass(frozen=True)
class LineToCode:
    """A bill line to code. `line_id`: the invoice_line it is (its account is set when the
    suggestion is auto-applied); None for a line not stored yet."""

    description: str
    vendor_id: int | None = None
    amount: float | Decimal = 0
    line_id: int | None = None


@dataclass(frozen=True)
class Suggestion:
    line: LineToCode
    account_id: int | None
    account_name: str | None
    probability: float
    action: str  # auto_applied, suggested, none
    suggestion_id: int | None = None
    source: str = "local"  # local: the hub's own model; external: the company's external model


def _check_ownership(conn: Connection, integration_id: int, company_id: int, lines: Sequence[LineToCode]) -> None:
    line_ids = sorted({line.line_id for line in lines if line.line_id is not None})
    if line_ids:
        owned = set(conn.scalars(
            sa.select(invoice_line.c.id).select_from(invoice_line.join(invoice, invoice.c.id == invoice_line.c.invoice_id))
            .where(invoice_line.c.id.in_(line_ids), invoice.c.company_id == company_id,
                   sa.or_(invoice.c.integration_id == integration_id, invoice.c.integration_id.is_(None)))))
        if foreign := [i for i in line_ids if i not in owned]:
            raise ValidationError(f"invoice lines {foreign} are not lines of integration {integration_id} or its company's own "
                                  "invoices: they are not scored by its model")
    vendor_ids = sorted({line.vendor_id for line in lines if line.vendor_id is not None})
    if vendor_ids:
        owned = set(conn.scalars(sa.select(vendor.c.id).where(vendor.c.id.in_(vendor_ids), vendor.c.company_id == company_id)))
        if foreign := [i for i in vendor_ids if i not in owned]:
            raise ValidationError(f"vendors {foreign} are not vendors of integration {integration_id}'s company")


def _active_accounts(conn: Connection, integration_id: int, ids) -> dict[int, str]:
    """id -> name of those accounts still active in the integration's chart (an answer's
    account may have gone since the model was trained or the external model answered)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {r.id: r.name for r in conn.execute(
        sa.select(gl_account.c.id, gl_account.c.name)
        .where(gl_account.c.id.in_(wanted), gl_account.c.integration_id == integration_id, gl_account.c.is_active))}


def _suggestion_row(company_id: int, integration_id: int, line: LineToCode, inp: LineInput, key: str, account_id: int,
                    label: str, probability: float, action: str, *, model_id: int | None, source: str) -> dict:
    """One `ai_suggestion` row of line coding (the hub's own model's or the external one's)."""
    return {"company_id": company_id, "integration_id": integration_id, "task": TASK, "model_id": model_id,
            "subject_type": "invoice_line", "subject_id": line.line_id, "input_key": key,
            "input": {"description": inp.description, "vendor": inp.vendor, "amount": inp.amount},
            "value": str(account_id), "label": label, "probability": round(probability, 4), "action": action, "source": source}


def suggest_for_lines(conn: Connection, integration_id: int, lines: Sequence[LineToCode], *,
                      keyring: Keyring | None = None) -> list[Suggestion]:
    """Suggest an account for each line (see the module docstring); in the caller's transaction."""
    if not lines:
        return []
    company_id = data.company_of(conn, integration_id)
    _check_ownership(conn, integration_id, company_id, lines)
    company = settings.read(conn, company_id)
    task = company.task(TASK)
    nothing = [Suggestion(line, None, None, 0.0, "none") for line in lines]
    if not task.enabled or not company.covers(integration_id):
        return nothing
    keyring = keyring or Keyring.from_env()
    inputs = [data.line_input(line.description, line.vendor_id, line.amount) for line in lines]
    keys = [input_key(i) for i in inputs]
    try:
        stored = storage.latest(conn, keyring, integration_id, TASK, company_id=company_id)
    except storage.ModelRefused:
        stored = None  # an unverifiable model scores nothing; the next training replaces it
    if stored is None:
        return _external(conn, keyring, company_id, integration_id, nothing, inputs, keys)
    started = time.process_time()
    predictions = stored.model.predict(inputs)
    refused = data.rejected(conn, integration_id, TASK, keys)
    accounts = _active_accounts(conn, integration_id, (int(p.label) for p in predictions if p.label is not None))
    out: list[Suggestion] = []
    rows = []
    for line, inp, key, p in zip(lines, inputs, keys, predictions):
        account_id = int(p.label) if p.label is not None else None
        if account_id not in accounts:  # an account gone from the chart since training
            out.append(Suggestion(line, None, None, 0.0, "none"))
            continue
        action = task.action(p.probability, rejected_before=(key, str(account_id)) in refused)
        if action == "auto_applied" and line.line_id is not None:
            applied = conn.execute(sa.update(invoice_line).where(invoice_line.c.id == line.line_id, invoice_line.c.gl_account_id.is_(None))
                                   .values(gl_account_id=account_id)).rowcount
            if not applied:  # coded meanwhile (by a person or the ledger): only a suggestion
                action = "suggested"
        out.append(Suggestion(line, account_id, accounts[account_id], p.probability, action))
        if action != "none":
            rows.append(_suggestion_row(company_id, integration_id, line, inp, key, account_id, accounts[account_id], p.probability,
                                        action, model_id=stored.id, source="local"))
    if rows:
        ids = iter(conn.scalars(ai_suggestion.insert().returning(ai_suggestion.c.id, sort_by_parameter_order=True), rows).all())
        out = [Suggestion(s.line, s.account_id, s.account_name, s.probability, s.action, next(ids) if s.action != "none" else None)
               for s in out]
    usage.record(conn, company_id, TASK, predictions=len(lines), cpu_seconds=time.process_time() - started)
    return _external(conn, keyring, company_id, integration_id, out, inputs, keys)


def _external(conn: Connection, keyring: Keyring, company_id: int, integration_id: int, out: list[Suggestion],
              inputs: list[LineInput], keys: list[str]) -> list[Suggestion]:
    """The lines without an answer, to the external model (see the module docstring). Not in a
    dry run (the export preview): the call costs money and its budget is reserved in a
    transaction of its own, which the preview's rollback would not undo. The preview loses
    nothing by it: an external answer is only ever suggested, so the bill is held back either way."""
    unanswered = [i for i, s in enumerate(out) if s.action == "none"]
    if not unanswered or dry_run(conn) or not external_settings.read(conn, company_id).usable:
        return out
    s = ai_suggestion.c
    before = {r.input_key: r for r in conn.execute(
        sa.select(s.input_key, s.value, s.probability, s.status)
        .where(s.integration_id == integration_id, s.task == TASK, s.source == "external",
               s.input_key.in_(sorted({keys[i] for i in unanswered})))
        .ext(distinct_on(s.input_key)).order_by(s.input_key, s.id.desc()))}
    found: dict[int, tuple[int, float]] = {}
    to_ask: dict[str, list[int]] = {}  # input key -> the lines with it (asked once)
    for i in unanswered:
        seen = before.get(keys[i])
        if seen is None:
            to_ask.setdefault(keys[i], []).append(i)
        elif seen.status in ("open", "accepted") and seen.value:
            found[i] = (int(seen.value), float(seen.probability or 0))
    if to_ask:
        firsts = [same[0] for same in to_ask.values()]
        vendor_ids = sorted({out[i].line.vendor_id for i in firsts if out[i].line.vendor_id is not None})
        names = dict(conn.execute(sa.select(vendor.c.id, vendor.c.display_name).where(vendor.c.id.in_(vendor_ids))).all()) \
            if vendor_ids else {}
        asked = [external_model.LineToAsk(out[i].line.description, names.get(out[i].line.vendor_id), float(out[i].line.amount or 0))
                 for i in firsts]
        try:
            got = external_model.ask(conn, keyring, company_id, integration_id, asked)
        except Exception as e:  # noqa: BLE001 - a key that does not decrypt, a budget row locked too long: the local answers stay
            log.warning("external model skipped for %d lines of integration %s: %s", len(asked), integration_id, type(e).__name__)
            got = {}
        for n, answer in got.items():
            for i in to_ask[keys[firsts[n]]]:
                found[i] = (answer.account_id, answer.confidence)
    accounts = _active_accounts(conn, integration_id, (a for a, _ in found.values()))
    chosen = sorted(i for i, (account_id, _) in found.items() if account_id in accounts)
    if not chosen:
        return out
    rows = [_suggestion_row(company_id, integration_id, out[i].line, inputs[i], keys[i], found[i][0], accounts[found[i][0]],
                            found[i][1], "suggested", model_id=None, source="external") for i in chosen]
    ids = conn.scalars(ai_suggestion.insert().returning(ai_suggestion.c.id, sort_by_parameter_order=True), rows).all()
    out = list(out)
    for i, suggestion_id in zip(chosen, ids):
        account_id, confidence = found[i]
        out[i] = Suggestion(out[i].line, account_id, accounts[account_id], confidence, "suggested", suggestion_id, "external")
    return out


_UNCODED = sa.text("""
    SELECT l.id, l.description, l.amount, i.vendor_id FROM invoice_line l JOIN invoice i ON i.id = l.invoice_id
    WHERE l.invoice_id = ANY(:ids) AND l.gl_account_id IS NULL AND coalesce(l.category, '') = ''
      AND i.kind = 'payable' AND coalesce(btrim(l.description), '') <> ''
    ORDER BY l.id
""")


def code_lines(conn: Connection, integration_id: int, invoice_ids: Sequence[int], *, keyring: Keyring | None = None,
               step: str = "import") -> dict[int, Suggestion]:
    """The one hook of the import and export steps (hub/sync/invoices.py through
    `code_imported_lines`, hub/sync/export_invoices.py): suggest accounts for the uncoded
    lines of these payable invoices, in the caller's transaction. Returns {line id: its
    suggestion} for the lines that have one to show: scored now (auto-applied or suggested),
    or still open from an earlier run.

    Uncoded: no account and no category (a line with a category books through its mapping,
    the account-mapping task's business) and a description to read. A line is scored once:
    one with a suggestion already (open, or decided by a person: a rejected one waits for a
    person to code it) is not scored again, so an export run after run does not pile up
    suggestions, nor offer again what a person turned down.

    Scoring never fails the step: it runs in a savepoint, and any error (no model yet is not
    one) leaves the lines as they were and is logged without data."""
    rows = conn.execute(_UNCODED, {"ids": list(invoice_ids)}).all()
    if not rows:
        return {}
    earlier: dict[int, sa.Row] = {}
    for s in conn.execute(sa.select(ai_suggestion.c.subject_id, ai_suggestion.c.id, ai_suggestion.c.value, ai_suggestion.c.label,
                                    ai_suggestion.c.probability, ai_suggestion.c.action, ai_suggestion.c.status)
                          .where(ai_suggestion.c.integration_id == integration_id, ai_suggestion.c.task == TASK,
                                 ai_suggestion.c.subject_type == "invoice_line", ai_suggestion.c.subject_id.in_([r.id for r in rows]))
                          .order_by(ai_suggestion.c.id)):
        earlier[s.subject_id] = s  # the newest per line
    lines = {r.id: LineToCode(r.description, r.vendor_id, r.amount, r.id) for r in rows}
    out = {line_id: Suggestion(lines[line_id], int(s.value), s.label, float(s.probability or 0), "suggested", s.id)
           for line_id, s in earlier.items() if s.status == "open" and s.action == "suggested" and s.value is not None}
    todo = [line for line_id, line in lines.items() if line_id not in earlier]
    if not todo:
        return out
    try:
        with conn.begin_nested():
            made = suggest_for_lines(conn, integration_id, todo, keyring=keyring)
    except Exception as e:  # noqa: BLE001 - the step goes on without suggestions
        log.warning("line coding skipped for %d %s lines of integration %s: %s", len(todo), step, integration_id, type(e).__name__)
        return out
    return {**out, **{s.line.line_id: s for s in made if s.action != "none"}}


def code_imported_lines(conn: Connection, integration_id: int, invoice_ids: Sequence[int]) -> list[Suggestion]:
    """The import step's hook (hub/sync/invoices.py): `code_lines` for the page's payable
    lines that arrived without an account (QuickBooks item-based lines, Xero lines without a
    code), in the page's transaction. An auto-applied account then differs from the remote
    copy, so the next invoice export writes it to the ledger, as any local edit."""
    return list(code_lines(conn, integration_id, invoice_ids).values())
