"""Invoice export, bills and (`kind="receivable"`, `export_sales_invoices`) sales invoices alike.
A sales invoice goes to QuickBooks as an `Invoice` (CustomerRef and sales lines, which need no
account: QuickBooks books them through items) or to Xero as ACCREC (AccountCode lines, the
category mapped to a revenue account); its customer must be in the ledger (export customers
first), and it is its own entity (`sales_invoice`) in the ledger, conflicts and external_ref.
What follows says "bill" for both.

Invoice (bill) export: the company's payable invoices that are new to this ledger
(integration NULL) or changed since their last sync (header and lines against
`synced_values`, in the shape the invoice import writes: hub/sync/invoices.py), and not
deleted or voided, go to QuickBooks (a Bill with VendorRef and account-based expense lines)
or Xero (an ACCPAY invoice with Contact.ContactID and AccountCode lines).

Checks before anything is sent; a failed check BLOCKS that invoice only, with the reason in
`invoice.sync_error` and `sync_log.errors` (the others go on):
- no open sync conflict (the import found it changed on both sides: hub/sync/invoices.py);
  it waits until a person resolves them;
- its status can be sent (`status_problem` of the provider side): QuickBooks has no draft or
  approval state, so a `draft` or `submitted` bill is not posted there (Xero takes DRAFT and
  SUBMITTED); a bill marked `paid` in the hub but not in the ledger is not sent at all,
  because the hub does not send payments: sent as unpaid, the next import would set it back.
  The reason asks to record the payment in the ledger, whose paid status the import brings in;
- its vendor must already be in this ledger (export vendors first);
- every line's category must map to an account of this integration (`account_mapping`,
  hub/sync/account_mapping.py) that is still active, with the reference the provider needs
  (QuickBooks AccountRef = the account's remote id, Xero AccountCode = its code); a line
  without a category books to its own account;
- its number must not already belong to another bill of this ledger.

Writes follow the idempotency ledger (hub/sync/write_ledger.py); the run holds the export lock of
(integration, invoice) (hub/sync/export.py), so two runs never create the same bill twice.
A create whose outcome was lost is looked up (same number and vendor) before anything is
resent. Found: it is linked, and if the bill changed locally since that create was sent (its
payload hash differs), the merge base is taken from the REMOTE bill, so the change stays
pending and goes out as an update in the same run. Not found: resent with the same key if
the payload is the same, else the old write is superseded and a new create begins. An
update goes out only if the bill did not change at the provider since our last sync
(SyncToken / UpdatedDateUTC); otherwise it is refused with a reason: the import merges the
remote change in first (field by field, conflicts where both sides changed).
Pending writes of bills that have nothing left to send (the import found the bill as the hub
holds it) are settled at the start of a run.
On success: provenance, remote version, the lines' accounts, `synced_values`, external_ref.

Plan and apply (hub/sync/export.py): `_decide` makes a bill's `Decision` (every check above,
the payload, and for a lost create the look-up at the provider) reading only; `_apply`
carries it out. The export decides each bill right before applying it; `plan_invoices`, the
export preview's, decides them and applies nothing.

The AI assist's line coding (issue 14) runs first, on the bills about to be decided
(`_code_lines`, the same hook as the import's: hub/ai/scoring.py `code_lines`): a line with
neither category nor account gets the integration's model's account. Auto-applied (at or
above the company's high threshold), the line has an account and its bill goes out in the
same run (its decision notes it); suggested (between the thresholds), the bill is held back
with the suggestion named, to be accepted on the AI page; below the low threshold, the
reason is the one without the assist. The preview scores in a transaction it rolls back
(see `_code_lines`), so it shows the same, storing nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.ai.scoring import DRY_RUN, Suggestion, code_lines
from hub.ai.settings import PAGE as AI_PAGE, percent
from hub.crypto import Keyring
from hub.providers.protocols import AccountingClient
from hub.providers.errors import RecordProblem, StaleVersion
from hub.schema import account_mapping, customer, gl_account, invoice, invoice_line, sync_conflict, sync_write, vendor
from hub.sync import write_ledger
from hub.sync.export import Blocked, Change, Decision, ExportResult, ExportRun, ExportScope, describe, export_run
from hub.sync.invoices import ENTITIES, MERGED_FIELDS, changed_fields, comparable, remote_base, snapshots

BATCH = 1000
__all__ = ["export_invoices", "export_sales_invoices", "plan_invoices", "snapshots"]
# a bill names its vendor, a sales invoice its customer: (invoice column, party table, entity, as a person says it)
PARTY = {"payable": ("vendor_id", vendor, "vendor", "bill"), "receivable": ("customer_id", customer, "customer", "sales invoice")}


def export_invoices(
    engine: Engine, keyring: Keyring, integration_id: int, *, run_id: str | None = None, client: AccountingClient | None = None,
    lock_wait_s: float | None = None, kind: str = "payable",
) -> ExportResult:
    """Export the company's new and changed bills (`kind="receivable"`: sales invoices) to the
    integration; see the module docstring. Each bill is decided (`_decide`, the plan the
    preview shows) just before it is applied."""
    with export_run(engine, keyring, integration_id, ENTITIES[kind], run_id, client, lock_wait_s=lock_wait_s) as run:
        ids, conflicted, idle = _candidates(run, kind)
        _settle_idle(run, idle)
        coding = _code_lines(run, ids, kind, keyring, keep=True)
        for invoice_id in [*conflicted, *ids]:
            try:
                fields = conflicted.get(invoice_id)
                _apply(run, _conflict_hold(run, invoice_id, fields, kind) if fields else _decide(run, invoice_id, coding=coding))
            except Blocked as exc:
                run.blocked(invoice, invoice_id, exc.reason)
            except StaleVersion as exc:
                run.failed(invoice, invoice_id, exc, f"the {PARTY[kind][3]} changed in {run.side.label} since the last sync; "
                                                     "import invoices, then export again")
            except RecordProblem as exc:
                run.failed(invoice, invoice_id, exc)
    return run.result


def export_sales_invoices(engine: Engine, keyring: Keyring, integration_id: int, **kwargs: Any) -> ExportResult:
    """Export the company's new and changed sales invoices (receivables) as bills are: a
    QuickBooks `Invoice` (CustomerRef, sales lines), a Xero ACCREC invoice; their customer must
    be in the ledger first (export customers)."""
    return export_invoices(engine, keyring, integration_id, kind="receivable", **kwargs)


def plan_invoices(scope: ExportScope, vendors_ahead: Mapping[int, Decision] | None = None,
                  limit: int | None = None, kind: str = "payable", keyring: Keyring | None = None) -> tuple[list[Decision], int]:
    """What `export_invoices` would do with each bill now, by the same `_candidates` and
    `_decide`, writing nothing (hub/sync/export_preview.py). `vendors_ahead`: the vendor
    decisions of the same run ({vendor id: decision}); a bill whose vendor is not in the
    ledger yet but is created or linked first in that run is not held back for it (a sync
    run exports vendors before invoices). Returns (decisions, bills left undecided): `limit`
    caps the bills decided; those held back by conflicts are always listed. A look-up the
    provider refuses is a hold with its message (the export would count that bill as failed).
    The AI assist's line coding is shown as the export would do it, nothing stored
    (`_code_lines`; `keyring` verifies the stored model)."""
    ids, conflicted, _ = _candidates(scope, kind)
    decisions = [_conflict_hold(scope, invoice_id, fields, kind) for invoice_id, fields in conflicted.items()]
    left = max(0, len(ids) - limit) if limit is not None else 0
    coding = _code_lines(scope, ids[:len(ids) - left], kind, keyring, keep=False)
    for invoice_id in ids[:len(ids) - left]:
        try:
            decisions.append(_decide(scope, invoice_id, vendors_ahead or {}, coding=coding))
        except RecordProblem as exc:
            decisions.append(Decision(ENTITIES[kind], invoice_id, _number(scope, invoice_id), "hold", hold="refused",
                                      reason=f"{scope.side.label} refused a look-up of it: {describe(exc)}"))
    return decisions, left


def _candidates(scope: ExportScope, kind: str = "payable") -> tuple[list[int], dict[int, list[str]], list[int]]:
    """(bills to send, {bill: its open conflict fields} held back, pending writes to settle).
    New bills, then linked ones whose snapshot differs from `synced_values` (checked in
    batches: the lines digest is computed here, as the import computes it). Pending writes of
    linked bills with nothing to send are returned to be settled (`_settle_idle`): the import
    found the bill as the hub holds it, so their outcome no longer matters. Reads only."""
    iid, entity = scope.integration_id, ENTITIES[kind]
    exportable = (invoice.c.company_id == scope.integration.company_id, invoice.c.kind == kind,
                  invoice.c.status.not_in(("deleted", "voided")))
    with scope.engine.connect() as conn, scope.engine.connect() as lines_conn:
        ids = list(conn.execute(sa.select(invoice.c.id).where(*exportable, invoice.c.integration_id.is_(None))
                                .order_by(invoice.c.id)).scalars())
        linked = conn.execution_options(yield_per=BATCH).execute(
            sa.select(invoice.c.id, invoice.c.synced_values)
            .where(*exportable, invoice.c.integration_id == iid, invoice.c.synced_values.is_not(None))
            .order_by(invoice.c.id))
        for batch in linked.partitions():
            now = snapshots(lines_conn, [i for i, _ in batch])
            ids += [i for i, base in batch if changed_fields(now[i], base)]
        conflicted: dict[int, list[str]] = {}
        for local_id, name in conn.execute(
            sa.select(sync_conflict.c.local_id, sync_conflict.c.field)
            .where(sync_conflict.c.integration_id == iid, sync_conflict.c.entity_type == entity, sync_conflict.c.status == "open")
            .order_by(sync_conflict.c.local_id, sync_conflict.c.field)
        ):
            conflicted.setdefault(local_id, []).append(name)
        wanted = set(ids)
        waiting = conn.execute(sa.select(sync_write.c.id, sync_write.c.local_id).where(
            sync_write.c.integration_id == iid, sync_write.c.entity_type == entity, sync_write.c.status == "pending",
            sync_write.c.local_id.in_(sa.select(invoice.c.id).where(invoice.c.integration_id == iid, invoice.c.kind == kind)))).all()
    idle = [w.id for w in waiting if w.local_id not in wanted]
    return [i for i in ids if i not in conflicted], {i: f for i, f in conflicted.items() if i in wanted}, idle


def _code_lines(scope: ExportScope, invoice_ids: list[int], kind: str, keyring: Keyring | None, *,
                keep: bool) -> dict[int, Suggestion]:
    """The AI assist's coding of the uncoded lines of the bills about to be decided
    ({line id: suggestion}; hub/ai/scoring.py `code_lines`, the import's hook too), in
    transactions of `BATCH` bills.

    The export keeps it (`keep`): committed before its bills are decided, so a line whose
    account was auto-applied is sent in this run, and a suggested one is named in its bill's
    hold-back reason and waits on the AI page. The preview scores the same way in a
    transaction it rolls back: the suggestions and applied accounts it shows come from the
    same code and rules (model, thresholds, earlier rejections), and nothing stays: no
    suggestion, no account, no metering. Why not a scoring that writes nothing: a second copy
    of the rules, to keep in step with the first; the rollback guarantees that nothing stays,
    whatever scoring writes. Anything scoring would do outside the database must be left out
    then: the preview's connection says so (hub/ai/scoring.py `dry_run`)."""
    if kind != "payable" or not invoice_ids or not scope.side.line_accounts(kind):
        return {}
    out: dict[int, Suggestion] = {}
    with scope.engine.connect() as conn:
        if not keep:
            conn = conn.execution_options(**{DRY_RUN: True})
        for start in range(0, len(invoice_ids), BATCH):
            with conn.begin() as tx:
                out.update(code_lines(conn, scope.integration_id, invoice_ids[start:start + BATCH], keyring=keyring,
                                      step="export" if keep else "preview"))
                if not keep:
                    tx.rollback()
    return out


def _settle_idle(run: ExportRun, idle: list[int]) -> None:
    """Close the pending writes `_candidates` found idle (see there)."""
    if not idle:
        return
    with run.engine.begin() as conn:
        conn.execute(sa.update(sync_write).where(sync_write.c.id.in_(idle), sync_write.c.status == "pending").values(
            status="failed", updated_at=sa.func.now(),
            error=write_ledger.SUPERSEDED + f"nothing left to send: the bill is linked and matches {run.side.label} as last imported"))


def _number(scope: ExportScope, invoice_id: int) -> str:
    with scope.engine.connect() as conn:
        return conn.scalar(sa.select(invoice.c.number).where(invoice.c.id == invoice_id))


def _party_id(inv: Mapping[str, Any]) -> int | None:
    """The invoice's vendor (a bill) or customer (a sales invoice)."""
    return inv[PARTY[inv["kind"]][0]]


def _party_remote_id(conn: Connection, integration_id: int, kind: str, party_id: int) -> tuple[str | None, str]:
    """(the remote id of a bill's vendor / a sales invoice's customer in this ledger, if it is
    there; its name)."""
    _, table, entity, _ = PARTY[kind]
    row = conn.execute(sa.select(table.c.display_name, table.c.integration_id, table.c.remote_id)
                       .where(table.c.id == party_id)).one()
    if row.integration_id == integration_id and row.remote_id:
        return row.remote_id, row.display_name
    return write_ledger.remote_id_of(conn, integration_id, entity, party_id), row.display_name


def _accounts(conn: Connection, scope: ExportScope, inv: Mapping[str, Any], lines: list[Mapping[str, Any]],
              vendors_ahead: Mapping[int, Decision],
              coding: Mapping[int, Suggestion]) -> tuple[list[tuple[str, str]], list[str], dict[int, int], str | None]:
    """(every reason it cannot be sent as (kind, text), so one look tells what to fix; the
    provider's account reference per line; {line_no: gl_account id}; a note). A vendor not in
    the ledger is no reason when `vendors_ahead` creates or links it first (the note says so).
    `coding`: the AI assist's suggestions of uncoded lines (`_code_lines`): an auto-applied
    account books the line (the note says so; the export stored it already, the preview not),
    a suggested one is named in the line's reason."""
    iid, label, reasons, notes = scope.integration_id, scope.side.label, [], []
    kind, (_, _, party, _) = inv["kind"], PARTY[inv["kind"]]
    base_status = (inv["synced_values"] or {}).get("status") if inv["integration_id"] == iid else None
    if problem := scope.side.status_problem(inv["status"], base_status, kind=kind):
        reasons.append(("status", problem))
    mapped = {r.local_category: r for r in conn.execute(
        sa.select(account_mapping.c.local_category, *gl_account.c).join(gl_account, gl_account.c.id == account_mapping.c.gl_account_id)
        .where(account_mapping.c.integration_id == iid)
    ).all()}
    hints = {line["line_no"]: coding[line["id"]] for line in lines if line["id"] in coding}
    applied = {n: hint.account_id for n, hint in hints.items() if hint.action == "auto_applied"}
    direct = {r.id: r for r in conn.execute(sa.select(gl_account).where(
        gl_account.c.integration_id == iid,
        gl_account.c.id.in_([line["gl_account_id"] for line in lines if line["gl_account_id"]] + list(applied.values()))
    )).all()}
    if _party_id(inv) is None:
        reasons.append((party, f"it has no {party}"))
    else:
        remote_party, name = _party_remote_id(conn, iid, kind, _party_id(inv))
        first = vendors_ahead.get(_party_id(inv))
        if remote_party is None and first is not None and first.action in ("create", "link"):
            notes.append(f"its {party} '{name}' is sent first in the same run ({first.action})")
        elif remote_party is None:
            reasons.append((party, f"{party} '{name}' is not in {label} yet; export {party}s first"))
    if not lines:
        reasons.append(("lines", "it has no lines"))
    refs, ids = [], {}
    if not scope.side.line_accounts(kind):  # the ledger books these lines itself (QuickBooks sales lines: items)
        return reasons, [None] * len(lines), ids, "; ".join(notes) or None
    for line in lines:
        n, category, hint = line["line_no"], line["category"], hints.get(line["line_no"])
        account = mapped.get(category) if category else direct.get(line["gl_account_id"] or applied.get(n))
        if account is not None and not category and applied.get(n) == account.id:
            notes.append(f"line {n} coded by the AI assist: {hint.account_name} ({percent(hint.probability)})")
        if account is None:
            if hint is not None and hint.action == "suggested":
                reasons.append(("coding", f"line {n}: no category, so no account to book it to; suggested: {hint.account_name} "
                                          f"({percent(hint.probability)})"))
                continue
            reasons.append(("mapping", f"line {n}: category '{category}' has no account mapping for this integration" if category
                            else f"line {n}: no category, so no account to book it to"))
            continue
        ref = scope.side.account_value(account._mapping)
        if not account.is_active:
            reasons.append(("mapping", f"line {n}: account '{account.name}' (for category '{category}') is inactive in {label}"))
        elif not ref:
            reasons.append(("mapping", f"line {n}: account '{account.name}' has no {scope.side.account_field} in {label}"))
        refs.append(ref)
        ids[n] = account.id
    suggested = [i for i, (kind_of, _) in enumerate(reasons) if kind_of == "coding"]
    if suggested:  # where to decide, said once for the bill's suggested lines
        last = suggested[-1]
        them = "it" if len(suggested) == 1 else "them"
        reasons[last] = ("coding", f"{reasons[last][1]}, accept {them} on the AI page ({AI_PAGE}#feedback)")
    return reasons, refs, ids, "; ".join(notes) or None


# ---- the plan: one decision per bill, nothing written -------------------------------------------
def _conflict_hold(scope: ExportScope, invoice_id: int, fields: list[str], kind: str = "payable") -> Decision:
    return Decision(ENTITIES[kind], invoice_id, _number(scope, invoice_id), "hold", hold="conflict",
                    reason=f"it has open sync conflicts ({', '.join(fields)}): the {PARTY[kind][3]} changed here and in "
                           f"{scope.side.label}; resolve them (hub conflicts list / resolve) before it is sent")


def _lines_text(lines: list[Mapping[str, Any]]) -> str:
    return "; ".join(f"{line['category'] or line['description'] or 'line ' + str(line['line_no'])} {line['amount']}" for line in lines)


def _changes(inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_name: str | None) -> list[Change]:
    """Field by field, what goes out: every field of a new bill (old None), or the fields that
    differ from the merge base of a linked one (old = as last synced). `vendor_name`: the
    bill's vendor or the sales invoice's customer."""
    now, shown = comparable(inv["snapshot"]), {"vendor_id": "vendor", "customer_id": "customer"}
    if inv["integration_id"] is None:
        names = [f for f in MERGED_FIELDS if f != "kind" and (f == "lines" or now[f] is not None)]
        base = None
    else:
        names = [f for f in MERGED_FIELDS if f in changed_fields(inv["snapshot"], inv["synced_values"])]
        base = comparable(inv["synced_values"])
    out = []
    for name in names:
        new = _lines_text(lines) if name == "lines" else vendor_name if name in shown else now[name]
        old = None if base is None else "(as last synced)" if name == "lines" or name in shown else base[name]
        out.append(Change(shown.get(name, name), old, new))
    return out


def _decide(scope: ExportScope, invoice_id: int, vendors_ahead: Mapping[int, Decision] | None = None, *,
            coding: Mapping[int, Suggestion] | None = None) -> Decision:
    """What the export does with this bill now: hold back (every reason at once), link an
    earlier create that is found at the provider, create, or update. Reads the rows, the
    ledger and (for a pending create) the provider; writes nothing. `coding`: the AI
    assist's suggestions for its uncoded lines (`_code_lines`)."""
    iid, side = scope.integration_id, scope.side
    with scope.engine.connect() as conn:
        inv = {**conn.execute(sa.select(invoice).where(invoice.c.id == invoice_id)).mappings().one(),
               "snapshot": snapshots(conn, [invoice_id])[invoice_id]}
        kind = inv["kind"]
        entity, noun = ENTITIES[kind], PARTY[kind][3]
        lines = conn.execute(sa.select(invoice_line).where(invoice_line.c.invoice_id == invoice_id)
                             .order_by(invoice_line.c.line_no)).mappings().all()
        reasons, refs, account_ids, note = _accounts(conn, scope, inv, lines, vendors_ahead or {}, coding or {})
        vendor_remote_id, vendor_name = _party_remote_id(conn, iid, kind, _party_id(inv)) if _party_id(inv) else (None, None)
        pending = write_ledger.pending(conn, iid, entity, invoice_id)
        holder = None
        if inv["integration_id"] is None and not reasons:
            holder = conn.scalar(sa.select(invoice.c.id).where(
                invoice.c.company_id == inv["company_id"], invoice.c.integration_id == iid, invoice.c.kind == inv["kind"],
                invoice.c.number == inv["number"]))
    number = inv["number"]
    if reasons:
        return Decision(entity, invoice_id, number, "hold", hold=reasons[0][0], reason="; ".join(text for _, text in reasons))
    if holder is not None:
        return Decision(entity, invoice_id, number, "hold", hold="duplicate",
                        reason=f"invoice number {number} is already used by another {side.label} {noun} (local invoice {holder})")
    changes = _changes(inv, list(lines), vendor_name)
    if vendor_remote_id is None:  # its vendor goes first in the same run: the payload is made then
        return Decision(entity, invoice_id, number, "create", changes=changes, reason=note)
    payload = side.invoice_payload(inv, list(lines), vendor_remote_id, refs)
    data = {"inv": inv, "account_ids": account_ids, "payload": payload, "pending": pending, "coding": coding or {}}
    if inv["integration_id"] is not None:
        return Decision(entity, invoice_id, number, "update", changes=changes, remote_id=inv["remote_id"], reason=note, data=data)
    found = (side.find_invoice(number, vendor_remote_id, kind=kind) if pending is not None and pending.operation == "create"
             else None)
    if found is not None:
        same_payload = pending.payload_hash == write_ledger.payload_hash(payload)
        remote_id, _ = side.invoice_key(found)
        return Decision(entity, invoice_id, number, "link", remote_id=remote_id, changes=[] if same_payload else changes,
                        reason=f"an earlier create whose answer was lost is found in {side.label}"
                               + ("" if same_payload else "; what changed since goes out as an update"),
                        data={**data, "found": found, "same_payload": same_payload})
    return Decision(entity, invoice_id, number, "create", changes=changes, reason=note, data=data)


# ---- apply: carry a decision out ----------------------------------------------------------------
def _apply(run: ExportRun, decision: Decision) -> None:
    if decision.action == "hold":
        raise Blocked(decision.reason or "held back")
    data, side, invoice_id = decision.data, run.side, decision.local_id
    inv, payload, pending = data["inv"], data["payload"], data["pending"]
    kind, entity = inv["kind"], decision.entity_type
    done = lambda conn, record, old: _written(run, conn, inv, data["account_ids"], record)  # noqa: E731
    if decision.action == "link":  # the earlier create did happen: link it, and settle its ledger row
        with run.engine.begin() as conn:
            if data["same_payload"]:
                remote_id, version = _written(run, conn, inv, data["account_ids"], data["found"])
            else:
                remote_id, version = _adopt_older(run, conn, inv, data["found"])
            write_ledger.succeed(conn, pending, remote_id, version)
            run.sync.page(conn, processed=1)
        run.result.linked += 1
        if not data["same_payload"]:  # what changed since that create goes out now
            _apply(run, _decide(run, invoice_id, coding=data["coding"]))
    elif decision.action == "create":
        run.write(entity_type=entity, local_id=invoice_id, operation="create", payload=payload, pending=pending,
                  send=lambda key, resumed: side.create_invoice(payload, key, kind=kind), on_success=done)
        run.result.created += 1
    elif decision.action == "update":
        def send(key: str, resumed: bool) -> dict[str, Any]:
            if not resumed:  # a resumed update's own effect would look like a remote change
                side.check_invoice(inv["remote_id"], inv["remote_version"], kind=kind)
            return side.update_invoice(inv["remote_id"], inv["remote_version"], payload, key, kind=kind)

        run.write(entity_type=entity, local_id=invoice_id, operation="update", payload=payload, pending=pending,
                  send=send, on_success=done)
        run.result.updated += 1
    else:
        raise ValueError(f"unknown export action {decision.action!r}")


def _adopt_older(run: ExportRun, conn: Connection, inv: Mapping[str, Any], record: dict[str, Any]) -> tuple[str, str | None]:
    """Link a bill the provider made from an OLDER payload of this invoice (a lost create, the
    invoice edited since): the merge base is the remote bill as a pull would write it, so the
    local edits differ from it and stay pending; the local row keeps its values."""
    remote_id, version = run.side.invoice_key(record)
    conn.execute(sa.select(invoice.c.id).where(invoice.c.id == inv["id"]).with_for_update())
    base = remote_base(conn, run.side.invoice_stream(inv["kind"]), run.integration_id, record)
    conn.execute(sa.update(invoice).where(invoice.c.id == inv["id"]).values(
        integration_id=run.integration_id, remote_id=remote_id, remote_version=version, synced_at=sa.func.now(), sync_error=None,
        synced_values=base))
    write_ledger.link(conn, run.integration_id, ENTITIES[inv["kind"]], [(inv["id"], remote_id, version)])
    return remote_id, version


def _written(run: ExportRun, conn: Connection, inv: Mapping[str, Any], account_ids: dict[int, int],
             record: dict[str, Any]) -> tuple[str, str | None]:
    """The provider stored the bill as sent: provenance, the lines' accounts and the merge base,
    in the ledger's success transaction. If the invoice changed locally while it was being
    sent, the base stays the snapshot that was sent, so the change goes out next time."""
    remote_id, version = run.side.invoice_key(record)
    conn.execute(sa.select(invoice.c.id).where(invoice.c.id == inv["id"]).with_for_update())
    unchanged = not changed_fields(snapshots(conn, [inv["id"]])[inv["id"]], inv["snapshot"])
    if unchanged:
        for line_no, account_id in account_ids.items():
            conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == inv["id"], invoice_line.c.line_no == line_no)
                         .values(gl_account_id=account_id))
    conn.execute(sa.update(invoice).where(invoice.c.id == inv["id"]).values(
        integration_id=run.integration_id, remote_id=remote_id, remote_version=version, synced_at=sa.func.now(), sync_error=None,
        synced_values=snapshots(conn, [inv["id"]])[inv["id"]] if unchanged else inv["snapshot"],
    ))
    write_ledger.link(conn, run.integration_id, ENTITIES[inv["kind"]], [(inv["id"], remote_id, version)])
    return remote_id, version
