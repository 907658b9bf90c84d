"""Invoice import (pull) for QuickBooks and Xero: the page writer behind the
`quickbooks/invoices` and `xero/invoices` streams, and the two record mappings.

Why a writer of its own (not the engine's plain upsert): an invoice is a header plus lines,
its vendor and line accounts are references to rows other streams import, and the benchmark
is 100,000 invoices of ~3 lines. So each page is a fixed handful of set-based statements,
whatever its size, all in the engine's page transaction:

1. tombstones (QuickBooks CDC `status: Deleted`): one UPDATE to status `deleted`; the row and
   its lines stay (history, and export must know the remote copy is gone);
2. one SELECT for invoice numbers already held by another invoice of the same ledger
   (company, integration, kind): remote systems allow duplicate numbers (Xero bills carry the
   supplier's number, QuickBooks can be told to allow them), the hub's unique key does not;
   such a number is stored as `<number> (<remote id>)` rather than failing the page forever;
3. one SELECT of the integration's accounts (a chart is small) with the local category mapped
   to each, when exactly one is: lines resolve `gl_account_id` (QuickBooks AccountRef ->
   gl_account.remote_id, Xero AccountCode -> gl_account.code) and `category` in Python, so
   each invoice's lines digest is known before anything is written;
4. one INSERT .. ON CONFLICT (integration_id, remote_id) DO UPDATE of the headers, resolving
   `vendor_id` by joining the vendor imported with the same (integration, remote id);
5. one DELETE of those invoices' lines, then one INSERT of all their lines.

Only rows with this integration are ever matched: an invoice made in the hub (integration
NULL) is linked later by export, and other integrations' rows are never touched.

`synced_values` (the merge base export uses) holds the header values exactly as written
here, `kind, number, vendor_id, issue_date, due_date, currency, subtotal, tax, total, status`,
plus `lines_digest`: `lines_digest()` of the lines as stored, so export can recompute it from
the local lines and see whether they changed since this pull.

A vendor or account not imported yet resolves to NULL; the next pull that reads the invoice
fills it in (run the vendors and accounts streams first).
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.providers.xero import parse_date
from hub.schema import invoice

if TYPE_CHECKING:  # streams.py imports this module to declare the streams
    from hub.sync.streams import PageCounts, ReadScope, StreamSpec

Row = dict[str, Any]
HEADER_FIELDS = ("kind", "number", "vendor_id", "issue_date", "due_date", "currency", "subtotal", "tax", "total", "status")
LINE_FIELDS = ("line_no", "description", "category", "quantity", "unit_amount", "amount", "gl_account_id")
CENTS, QUANTITY = Decimal("0.01"), Decimal("0.0001")  # the scales of the amount and quantity columns


def _dec(value: Any, default: Any = 0) -> Decimal:
    """Amounts as exact decimals (floats from JSON via their shortest text); absent or null ->
    `default`."""
    return Decimal(str(value if value not in (None, "") else default))


def _round(value: Decimal, scale: Decimal) -> Decimal:
    """Rounded here as PostgreSQL's numeric would (half away from zero), so what is digested is
    exactly what is stored."""
    return value.quantize(scale, ROUND_HALF_UP)


def lines_digest(lines: list[dict[str, Any]]) -> str:
    """A fingerprint of an invoice's lines (`LINE_FIELDS`, in line order), from the values written
    here or read back from invoice_line alike: the merge base of the lines as one field."""
    canon = [[str(line[f]) if line[f] is not None else None for f in LINE_FIELDS]
             for line in sorted(lines, key=lambda li: li["line_no"])]
    for row in canon:  # numbers at their column scale, whatever the source's notation
        row[3], row[4], row[5] = (str(_round(Decimal(v), s)) for v, s in zip(row[3:6], (QUANTITY, CENTS, CENTS)))
    return hashlib.sha256(json.dumps(canon).encode()).hexdigest()


# ---- record mappings (StreamSpec.to_row): header columns plus `vendor_remote_id` and `lines` ----
def _qbo_status(r: dict[str, Any]) -> str:
    """QuickBooks has no status field: a void keeps the invoice with zero amounts and
    PrivateNote "Voided"; paid is a zero balance on a non-zero invoice; there is no draft."""
    total = _dec(r.get("TotalAmt"))
    if total == 0 and str(r.get("PrivateNote") or "").startswith("Voided"):
        return "voided"
    if total > 0 and _dec(r.get("Balance"), total) == 0:
        return "paid"
    return "authorised"


def qbo_invoice(r: dict[str, Any]) -> Row:
    lines = []
    for line in r.get("Line") or []:
        detail_type = line.get("DetailType")
        if detail_type == "SubTotalLineDetail":  # a computed subtotal, not a line of the bill
            continue
        detail = line.get(detail_type) or {}
        amount = _dec(line.get("Amount"))
        lines.append({"description": line.get("Description"), "quantity": _dec(detail.get("Qty"), 1),
                      "unit_amount": _dec(detail.get("UnitPrice"), amount), "amount": amount,
                      "account_ref": (detail.get("AccountRef") or {}).get("value"), "account_code": None})
    vendor_ref = r.get("VendorRef")
    total, tax = _dec(r.get("TotalAmt")), _dec((r.get("TxnTaxDetail") or {}).get("TotalTax"))
    created = ((r.get("MetaData") or {}).get("CreateTime") or "")[:10] or None
    return {
        "kind": "payable" if vendor_ref else "receivable",
        "vendor_remote_id": (vendor_ref or {}).get("value"),
        "number": r.get("DocNumber") or str(r["Id"]),
        "issue_date": r.get("TxnDate") or created,
        "due_date": r.get("DueDate"),
        "currency": (r.get("CurrencyRef") or {}).get("value") or "USD",
        "subtotal": total - tax, "tax": tax, "total": total,
        "status": _qbo_status(r),
        "lines": lines,
    }


def _xero_day(value: str | None) -> str | None:
    when = parse_date(value)
    return when.date().isoformat() if when else None


def xero_invoice(r: dict[str, Any]) -> Row:
    payable = r.get("Type") != "ACCREC"  # ACCPAY is a bill; ACCREC a sales invoice
    lines = [{"description": li.get("Description"), "quantity": _dec(li.get("Quantity"), 1),
              "unit_amount": _dec(li.get("UnitAmount")), "amount": _dec(li.get("LineAmount")),
              "account_ref": None, "account_code": li.get("AccountCode")} for li in r.get("LineItems") or []]
    return {
        "kind": "payable" if payable else "receivable",
        # only bills name a vendor; a sales invoice's contact is a customer
        "vendor_remote_id": (r.get("Contact") or {}).get("ContactID") if payable else None,
        "number": r.get("InvoiceNumber") or r["InvoiceID"],  # drafts may have no number yet
        "issue_date": _xero_day(r.get("Date")),
        "due_date": _xero_day(r.get("DueDate")),
        "currency": r.get("CurrencyCode") or "USD",
        "subtotal": _dec(r.get("SubTotal")), "tax": _dec(r.get("TotalTax")), "total": _dec(r.get("Total")),
        "status": str(r.get("Status") or "DRAFT").lower(),  # the six Xero statuses are the hub's
        "lines": lines,
    }


# ---- the page writer ---------------------------------------------------------------------------
# who holds each number of the page in its ledger; the LATERAL .. LIMIT 1 on the whole unique
# key is an index probe per number even before the planner has statistics (a first bulk import)
_HOLDERS = sa.text("""
    SELECT p.kind, p.number, h.remote_id
    FROM jsonb_to_recordset(CAST(:keys AS jsonb)) AS p(kind text, number text)
    CROSS JOIN LATERAL (SELECT i.remote_id FROM invoice i WHERE i.company_id = :company_id AND i.integration_id = :integration_id
                        AND i.kind = p.kind AND i.number = p.number LIMIT 1) AS h
""")

_UPSERT = sa.text(f"""
    INSERT INTO invoice AS i (company_id, integration_id, remote_id, remote_version, synced_at, vendor_id, kind, number,
                              issue_date, due_date, currency, subtotal, tax, total, status, updated_at, synced_values, sync_error)
    SELECT :company_id, :integration_id, r.remote_id, r.remote_version, now(), v.id, r.kind, r.number,
           r.issue_date, r.due_date, r.currency, r.subtotal, r.tax, r.total, r.status, now(),
           jsonb_build_object('kind', r.kind, 'number', r.number, 'vendor_id', v.id, 'issue_date', r.issue_date,
                              'due_date', r.due_date, 'currency', r.currency, 'subtotal', r.subtotal, 'tax', r.tax,
                              'total', r.total, 'status', r.status, 'lines_digest', r.lines_digest),
           NULL
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(remote_id text, remote_version text, vendor_remote_id text, kind text,
         number text, issue_date date, due_date date, currency text, subtotal numeric, tax numeric, total numeric, status text,
         lines_digest text)
    LEFT JOIN vendor v ON v.integration_id = :integration_id AND v.remote_id = r.vendor_remote_id
    ON CONFLICT (integration_id, remote_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in ("remote_version", "synced_at", *HEADER_FIELDS, "synced_values"))},
        updated_at = now(), sync_error = NULL
    RETURNING i.id, i.remote_id, i.status, (i.xmax = 0) AS created
""")

_ACCOUNTS = sa.text("""
    SELECT g.id, g.remote_id, g.code, g.is_active, m.category
    FROM gl_account g
    LEFT JOIN (SELECT gl_account_id, min(local_category) AS category FROM account_mapping
               GROUP BY gl_account_id HAVING count(*) = 1) AS m ON m.gl_account_id = g.id
    WHERE g.integration_id = :integration_id
    ORDER BY g.is_active, g.id  -- a code reused after a delete: the active (then newest) account wins below
""")

_INSERT_LINES = sa.text("""
    INSERT INTO invoice_line (invoice_id, line_no, description, category, quantity, unit_amount, amount, gl_account_id)
    SELECT invoice_id, line_no, description, category, quantity, unit_amount, amount, gl_account_id
    FROM jsonb_to_recordset(CAST(:lines AS jsonb)) AS l(invoice_id bigint, line_no int, description text, category text,
         quantity numeric, unit_amount numeric, amount numeric, gl_account_id bigint)
""")


def _json(rows: list[Row]) -> str:
    """Decimals (already at their column's scale) as exact text; jsonb_to_recordset reads them as numeric."""
    return json.dumps(rows, default=str)


def upsert_invoices(conn: Connection, stream: "StreamSpec", scope: "ReadScope", records: list[dict[str, Any]]) -> "PageCounts":
    """Write one page of invoices; see the module docstring for the statements and why."""
    from hub.sync.streams import PageCounts

    live: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    for record in records:  # the last occurrence in a page wins (one row may be upserted once per statement)
        remote_id = stream.remote_id(record)
        if stream.is_deleted(record):
            gone.add(remote_id)
            live.pop(remote_id, None)
        else:
            live[remote_id] = record
            gone.discard(remote_id)
    counts = PageCounts()
    iid, company_id = scope.integration_id, scope.company_id
    if gone:
        counts.deleted += conn.execute(
            sa.update(invoice)
            .where(invoice.c.integration_id == iid, invoice.c.remote_id.in_(gone), invoice.c.status != "deleted")
            .values(status="deleted", synced_at=sa.func.now(), updated_at=sa.func.now(), sync_error=None,
                    synced_values=sa.func.coalesce(invoice.c.synced_values, sa.text("'{}'::jsonb")).op("||")(
                        sa.text("""'{"status": "deleted"}'::jsonb""")))
        ).rowcount
    if not live:
        return counts

    rows = {rid: {**stream.to_row(r), "remote_id": rid, "remote_version": stream.remote_version(r)} for rid, r in live.items()}
    keys = [{"kind": row["kind"], "number": row["number"]} for row in rows.values()]
    holders = {(k, n): rid for k, n, rid in conn.execute(_HOLDERS, {"keys": _json(keys), "company_id": company_id, "integration_id": iid})}
    for rid, row in rows.items():
        key = (row["kind"], row["number"])
        if holders.setdefault(key, rid) != rid:  # held by another invoice, stored or earlier in this page
            row["number"] = f"{row['number']} ({rid})"

    by_ref, by_code = {None: None}, {None: None}  # a line without a reference resolves to nothing
    for account in conn.execute(_ACCOUNTS, {"integration_id": iid}):  # later rows (active, newer) win a shared code
        by_ref[account.remote_id] = account
        if account.code is not None:
            by_code[account.code] = account
    for row in rows.values():
        lines = []
        for n, line in enumerate(row.pop("lines"), 1):
            account = by_ref.get(line["account_ref"]) or by_code.get(line["account_code"])
            lines.append({"line_no": n, "description": line["description"], "category": account and account.category,
                          "quantity": _round(line["quantity"], QUANTITY), "unit_amount": _round(line["unit_amount"], CENTS),
                          "amount": _round(line["amount"], CENTS), "gl_account_id": account and account.id})
        row.update(lines=lines, lines_digest=lines_digest(lines), **{f: _round(row[f], CENTS) for f in ("subtotal", "tax", "total")})

    headers = [{k: v for k, v in row.items() if k != "lines"} for row in rows.values()]
    written = conn.execute(_UPSERT, {"rows": _json(headers), "company_id": company_id, "integration_id": iid}).all()
    ids = {w.remote_id: w.id for w in written}
    for w in written:
        if w.created:
            counts.created += 1
        elif w.status == "deleted":
            counts.deleted += 1
        else:
            counts.updated += 1

    conn.execute(sa.text("DELETE FROM invoice_line WHERE invoice_id = ANY(:ids)"), {"ids": list(ids.values())})
    lines = [{**line, "invoice_id": ids[rid]} for rid, row in rows.items() for line in row["lines"]]
    if lines:
        conn.execute(_INSERT_LINES, {"lines": _json(lines)})
    return counts
