"""Invoice import (pull) for QuickBooks and Xero: the page writer behind the
`<provider>/invoices` (bills) and `<provider>/sales_invoices` streams and the invoice's merge base
(`synced_values`) that export compares against. The record mappings (header columns plus
`vendor_remote_id`, `customer_remote_id` and `lines`) are the providers' (hub/providers/<name>/streams.py).

What is read: bills (payables: QuickBooks `Bill`, Xero ACCPAY; their vendor resolved to
`vendor_id`) and sales invoices (receivables: QuickBooks `Invoice`, Xero ACCREC; their customer
resolved to `customer_id`), each kind its own stream, entity type (`ENTITIES`: invoice,
sales_invoice) and rows (`StreamSpec.rows_where`): remote ids are unique per kind, since
QuickBooks numbers Bill and Invoice ids apart.

Why a writer of its own (not the engine's plain upsert): an invoice is a header plus lines,
its vendor and line accounts are references to rows other streams import, local edits must
survive a pull, and the benchmark is 100,000 invoices of ~3 lines. So each page is a fixed
handful of set-based statements, whatever its size, all in the engine's page transaction:

1. one SELECT (FOR UPDATE) of the local rows the page's remote ids already have, and, for
   those with a merge base, their snapshot (header and lines, `snapshots`) and open conflicts:
   a row changed locally since its last sync, or with an open conflict, is HELD: merged field
   by field below instead of overwritten;
2. tombstones (QuickBooks CDC `status: Deleted`) of rows not held: `pages.mark_deleted`
   (status `deleted`, the row and its lines stay: history, and export must know the remote
   copy is gone);
3. one SELECT for invoice numbers already held by another invoice of the same ledger
   (company, integration, kind): remote systems allow duplicate numbers (Xero bills carry the
   supplier's number, QuickBooks bill numbers are the vendor's), the hub's unique key does
   not; such a number is stored as `<number> (<remote id>)` rather than failing the page;
4. for remote ids new to the hub, one SELECT for the hub's own unlinked invoice with the same
   (company, kind, number, vendor): a bill the hub created whose answer was lost, or one entered
   on both sides. It is ADOPTED (linked) instead of imported a second time;
5. one SELECT of the integration's accounts (a chart is small) with the local category mapped
   to each, when exactly one is: lines resolve `gl_account_id` (QuickBooks AccountRef ->
   gl_account.remote_id, Xero AccountCode -> gl_account.code) and `category` in Python, so
   each invoice's lines digest is known before anything is written;
6. one INSERT .. ON CONFLICT (integration_id, remote_id) DO UPDATE of the other headers,
   resolving `vendor_id` by joining the vendor imported with the same (integration, remote id),
   then one DELETE of their lines and one INSERT of all their lines. Payable lines that came
   without an account get the AI assist's suggestion (hub/ai/scoring.py `code_imported_lines`,
   in a savepoint: it never fails the page).

Held and adopted rows (rare: local edits, lost creates) go one by one through `_merge_one`: a
three-way merge per field (hub/sync/merge.py, the integration's conflict policy) of the header
fields and of the lines as one field `lines` (their digest). A field only the remote changed
takes the remote value (a payment's `paid` status, a remote delete); a field only the hub
changed keeps the local value and stays pending for export; a field both changed differently
keeps the local value and opens a `sync_conflict` row (entity `invoice`, the field name or
`lines`), which holds the invoice's export back until resolved. The base becomes the remote
state, so what is left different locally is exactly what export must send. An adopted row
has no base: its lines first take the remote lines' accounts where that makes them equal (the
hub sets a line's account only when a bill is sent); then, if the hub's create of it is
pending in the ledger (`sync_write`), the remote is that create's result, the row keeps its
local values (edits made since go out as an update) and the ledger row is settled as
succeeded; otherwise (entered on both sides) differences are conflicts, as for a vendor
linked on first contact.

Only rows with this integration are ever matched by remote id: an invoice made in the hub
(integration NULL) is linked by export or adopted as above, other integrations' rows are
never touched.

`synced_values` (the merge base) holds the header values as written here, `kind, number,
vendor_id, issue_date, due_date, currency, subtotal, tax, total, status`, plus `lines_digest`:
`lines_digest()` of the lines as stored, so export can recompute it from the local lines and
see whether they changed since. Compare bases with `changed_fields` (amounts at their scale),
not dict equality.

A vendor or account not imported yet resolves to NULL; the next pull that reads the invoice
fills it in (run the vendors and accounts streams first).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Connection

from hub.ai.scoring import code_imported_lines
from hub.errors import NotFoundError, ValidationError
from hub.outbound.outbox import emit
from hub.schema import invoice, invoice_line, sync_conflict
from hub.sync import write_ledger
from hub.sync.merge import (
    Conflict,
    close_converged,
    merge,
    record_conflicts,
    with_open_conflicts,
)
from hub.sync.pages import mark_deleted, split_page
from hub.sync.stream_spec import PageCounts, ReadScope, StreamSpec

Row = dict[str, Any]
ENTITY = "invoice"  # bills (payables); the entity type of their ledger rows, conflicts and external_ref
SALES_ENTITY = "sales_invoice"  # sales invoices (receivables): their own entity, so a Bill and an Invoice with one Id do not collide
ENTITIES = {"payable": ENTITY, "receivable": SALES_ENTITY}  # invoice.kind -> entity type
HEADER_FIELDS = ("kind", "number", "vendor_id", "customer_id", "issue_date", "due_date", "currency", "subtotal", "tax", "total", "status")
LINE_FIELDS = ("line_no", "description", "category", "quantity", "unit_amount", "amount", "gl_account_id")
MERGED_FIELDS = (*HEADER_FIELDS, "lines")  # what the pull merges; `lines` is the lines as one field (their digest)
CENTS, QUANTITY = Decimal("0.01"), Decimal("0.0001")  # the scales of the amount and quantity columns
_AMOUNTS = ("subtotal", "tax", "total")
PARTY_FIELDS = ("vendor_id", "customer_id")  # a bill's vendor, a sales invoice's customer (resolved from remote ids)


def _round(value: Decimal, scale: Decimal) -> Decimal:
    """Rounded here as PostgreSQL's numeric would (half away from zero), so what is digested is
    exactly what is stored."""
    return value.quantize(scale, ROUND_HALF_UP)


def lines_digest(lines: list[Mapping[str, Any]]) -> str:
    """A fingerprint of an invoice's lines (`LINE_FIELDS`, in line order), from the values written
    here or read back from invoice_line alike: the merge base of the lines as one field."""
    canon = [[str(line[f]) if line[f] is not None else None for f in LINE_FIELDS]
             for line in sorted(lines, key=lambda li: li["line_no"])]
    for row in canon:  # numbers at their column scale, whatever the source's notation
        row[3], row[4], row[5] = (str(_round(Decimal(v), s)) for v, s in zip(row[3:6], (QUANTITY, CENTS, CENTS)))
    return hashlib.sha256(json.dumps(canon).encode()).hexdigest()


def _prepared_digest(lines: list[dict[str, Any]]) -> str:
    """`lines_digest` of lines as `_prepare` makes them (in line order, numbered, amounts already
    Decimals at their column scale, so re-rounding them is a no-op): the same value, cheaper."""
    canon = [[str(line["line_no"]), line["description"] if line["description"] is None else str(line["description"]),
              line["category"] if line["category"] is None else str(line["category"]),
              str(line["quantity"]), str(line["unit_amount"]), str(line["amount"]),
              line["gl_account_id"] if line["gl_account_id"] is None else str(line["gl_account_id"])]
             for line in lines]
    return hashlib.sha256(json.dumps(canon).encode()).hexdigest()


# ---- the local state in the shape of the merge base ------------------------------------------
# the header as this module writes it into `synced_values` (same SQL types, so equal values compare equal)
SNAPSHOT_HEADER = sa.func.jsonb_build_object(*[x for f in HEADER_FIELDS for x in (sa.literal(f), invoice.c[f])], type_=JSONB)


_ID_ARRAY = ARRAY(sa.BigInteger)  # one array parameter instead of a bind parameter per id


def local_lines(conn: Connection, invoice_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The stored lines (`LINE_FIELDS`) of these invoices, in line order."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in invoice_ids}
    if invoice_ids:
        for line in conn.execute(sa.select(invoice_line.c.invoice_id, *[invoice_line.c[f] for f in LINE_FIELDS])
                                 .where(invoice_line.c.invoice_id == sa.any_(sa.bindparam("ids", list(invoice_ids), type_=_ID_ARRAY)))
                                 .order_by(invoice_line.c.invoice_id, invoice_line.c.line_no)).mappings():
            out[line["invoice_id"]].append({f: line[f] for f in LINE_FIELDS})
    return out


def snapshots(conn: Connection, invoice_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What `synced_values` would be if these invoices were synced as they are now: header
    values plus `lines_digest` of their lines."""
    if not invoice_ids:
        return {}
    headers = {i: h for i, h in conn.execute(sa.select(invoice.c.id, SNAPSHOT_HEADER)
                                             .where(invoice.c.id == sa.any_(sa.bindparam("ids", list(invoice_ids), type_=_ID_ARRAY))))}
    lines = local_lines(conn, list(headers))
    return {i: {**header, "lines_digest": lines_digest(lines[i])} for i, header in headers.items()}


def comparable(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """A base-shaped dict (`synced_values`, a snapshot) as {MERGED_FIELDS: comparable value}:
    amounts as text at cent scale, dates as ISO text. JSON turns 75.00 into 75.0 and a Python
    base may hold Decimals, so bases are compared through this, never as dicts."""
    values = values or {}
    out: dict[str, Any] = {}
    for name in HEADER_FIELDS:
        value = values.get(name)
        if value is None or value == "":
            value = None
        elif name in _AMOUNTS:
            value = str(_round(Decimal(str(value)), CENTS))
        elif name in PARTY_FIELDS:
            value = int(value)
        else:
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        out[name] = value
    out["lines"] = values.get("lines_digest")
    return out


def changed_fields(now: Mapping[str, Any] | None, base: Mapping[str, Any] | None) -> set[str]:
    """The MERGED_FIELDS where `now` differs from `base` (both base-shaped)."""
    a, b = comparable(now), comparable(base)
    return {name for name in MERGED_FIELDS if a[name] != b[name]}


# ---- SQL ---------------------------------------------------------------------------------------
# who holds each number of the page in its ledger; the LATERAL .. LIMIT 1 on the whole unique
# key is an index probe per number even before the planner has statistics (a first bulk import)
_HOLDERS = sa.text("""
    SELECT p.kind, p.number, h.remote_id
    FROM jsonb_to_recordset(CAST(:keys AS jsonb)) AS p(kind text, number text)
    CROSS JOIN LATERAL (SELECT i.remote_id FROM invoice i WHERE i.company_id = :company_id AND i.integration_id = :integration_id
                        AND i.kind = p.kind AND i.number = p.number LIMIT 1) AS h
""")

# the hub's own unlinked invoice (integration NULL) each new remote invoice may be: same company,
# kind, number and vendor (an index probe on the unique key, as above)
# whether the company has any such invoice at all (a prefix probe of the same unique key): a
# first import into a company whose invoices all came from integrations skips the lookup
_ANY_UNLINKED = sa.text("SELECT EXISTS (SELECT 1 FROM invoice WHERE company_id = :company_id AND integration_id IS NULL "
                        "AND status <> 'deleted')")

_UNLINKED_TWINS = sa.text("""
    SELECT p.remote_id, t.id
    FROM jsonb_to_recordset(CAST(:keys AS jsonb)) AS p(remote_id text, kind text, number text, vendor_remote_id text,
                                                       customer_remote_id text)
    LEFT JOIN vendor v ON v.integration_id = :integration_id AND v.remote_id = p.vendor_remote_id
    LEFT JOIN customer c ON c.integration_id = :integration_id AND c.remote_id = p.customer_remote_id
    CROSS JOIN LATERAL (SELECT i.id FROM invoice i WHERE i.company_id = :company_id AND i.integration_id IS NULL
                        AND i.kind = p.kind AND i.number = p.number AND i.status <> 'deleted'
                        AND (i.vendor_id = v.id OR i.customer_id = c.id)
                        ORDER BY i.id LIMIT 1) AS t
""")

# the page's headers as typed columns, their vendor (bills) or customer (sales invoices) resolved, and the merge base built from them:
# one definition, so the base a held row gets is exactly the one the bulk upsert writes
_RECORDS = """jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(remote_id text, remote_version text, vendor_remote_id text,
         customer_remote_id text, kind text, number text, issue_date date, due_date date, currency text, subtotal numeric,
         tax numeric, total numeric, status text, lines_digest text)
    LEFT JOIN vendor v ON v.integration_id = :integration_id AND v.remote_id = r.vendor_remote_id
    LEFT JOIN customer c ON c.integration_id = :integration_id AND c.remote_id = r.customer_remote_id"""
_BASE = """jsonb_build_object('kind', r.kind, 'number', r.number, 'vendor_id', v.id, 'customer_id', c.id, 'issue_date', r.issue_date,
                              'due_date', r.due_date, 'currency', r.currency, 'subtotal', r.subtotal, 'tax', r.tax,
                              'total', r.total, 'status', r.status, 'lines_digest', r.lines_digest)"""

_UPSERT = sa.text(f"""
    INSERT INTO invoice AS i (company_id, integration_id, remote_id, remote_version, synced_at, vendor_id, customer_id, kind,
                              number, issue_date, due_date, currency, subtotal, tax, total, status, updated_at, synced_values,
                              sync_error)
    SELECT :company_id, :integration_id, r.remote_id, r.remote_version, now(), v.id, c.id, r.kind, r.number,
           r.issue_date, r.due_date, r.currency, r.subtotal, r.tax, r.total, r.status, now(), {_BASE}, NULL
    FROM {_RECORDS}
    ON CONFLICT (integration_id, kind, remote_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in ("remote_version", "synced_at", *HEADER_FIELDS, "synced_values"))},
        updated_at = now(), sync_error = NULL
    RETURNING i.id, i.remote_id, i.status, (i.xmax = 0) AS created
""")

# the page's rows already here, locked against a concurrent export's write (one array parameter)
_EXISTING = sa.text("SELECT id, remote_id, status, synced_values FROM invoice WHERE integration_id = :integration_id "
                    "AND kind = :kind AND remote_id = ANY(:ids) FOR UPDATE")

_BASES = sa.text(f"SELECT r.remote_id, v.id AS vendor_id, c.id AS customer_id, {_BASE} AS base FROM {_RECORDS}")

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


def _json(rows: Any) -> str:
    """Decimals (already at their column's scale) as exact text; jsonb_to_recordset reads them as numeric."""
    try:
        return orjson.dumps(rows, default=str).decode()
    except (TypeError, ValueError):  # what orjson refuses (huge ints, lone surrogates): json's text
        return json.dumps(rows, default=str)


def _jsonable(value: Any) -> Any:
    """A value for a sync_conflict JSONB column: amounts as numbers, dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ---- remote records into rows ------------------------------------------------------------------
@dataclass(frozen=True)
class Chart:
    """The integration's accounts as line references resolve them: QuickBooks AccountRef ->
    `by_ref`, Xero AccountCode -> `by_code`; `key` tells two reads of the chart apart."""

    by_ref: dict[Any, Any]
    by_code: dict[Any, Any]
    key: tuple

    @classmethod
    def read(cls, conn: Connection, integration_id: int) -> "Chart":
        by_ref, by_code = {None: None}, {None: None}  # a line without a reference resolves to nothing
        accounts = conn.execute(_ACCOUNTS, {"integration_id": integration_id}).all()
        for account in accounts:  # later rows (active, newer) win a shared code
            by_ref[account.remote_id] = account
            if account.code is not None:
                by_code[account.code] = account
        return cls(by_ref, by_code, tuple(tuple(a) for a in accounts))


def _prepared_row(stream: StreamSpec, record: dict[str, Any], chart: Chart) -> Row:
    """One remote record as the header row the page writer writes: `stream.to_row`, lines
    resolved against `chart` with their digest, amounts at column scale.
    Pure Python, so the engine's reader thread can do it ahead (`premap_invoices`)."""
    row = {**stream.to_row(record), "remote_id": stream.remote_id(record), "remote_version": stream.remote_version(record)}
    lines = []
    for n, line in enumerate(row.pop("lines"), 1):
        account = chart.by_ref.get(line["account_ref"]) or chart.by_code.get(line["account_code"])
        lines.append({"line_no": n, "description": line["description"], "category": account and account.category,
                      "quantity": line["quantity"].quantize(QUANTITY, ROUND_HALF_UP),
                      "unit_amount": line["unit_amount"].quantize(CENTS, ROUND_HALF_UP),
                      "amount": line["amount"].quantize(CENTS, ROUND_HALF_UP), "gl_account_id": account and account.id})
    row.update(lines=lines, lines_digest=_prepared_digest(lines),
               subtotal=row["subtotal"].quantize(CENTS, ROUND_HALF_UP), tax=row["tax"].quantize(CENTS, ROUND_HALF_UP),
               total=row["total"].quantize(CENTS, ROUND_HALF_UP))
    return row


def _prepare(conn: Connection, stream: StreamSpec, integration_id: int, records: dict[str, dict[str, Any]],
             premapped: Any = None) -> dict[str, Row]:
    """Remote records (by remote id) as the rows the page writer (or `remote_base`) writes for
    them. Rows the reader thread prepared (`premapped`, a `PreparedPage`) are taken when the
    chart they were resolved against is the one this transaction reads; else (the chart
    changed in between, or a record the reader could not map) they are prepared here."""
    chart = Chart.read(conn, integration_id)
    ready = premapped.rows if isinstance(premapped, PreparedPage) and premapped.chart_key == chart.key else {}
    return {rid: ready.get(id(r)) or _prepared_row(stream, r, chart) for rid, r in records.items()}


def _headers(rows: dict[str, Row]) -> str:
    return _json([{k: v for k, v in row.items() if k != "lines"} for row in rows.values()])


def _bases(conn: Connection, integration_id: int, rows: dict[str, Row]) -> dict[str, tuple[dict[str, Any], dict[str, int | None]]]:
    """{remote id: (merge base, {vendor_id, customer_id} resolved)} for prepared rows, built by
    the same SQL as the bulk upsert's `synced_values`."""
    if not rows:
        return {}
    return {r.remote_id: (r.base, {"vendor_id": r.vendor_id, "customer_id": r.customer_id})
            for r in conn.execute(_BASES, {"rows": _headers(rows), "integration_id": integration_id})}


def remote_base(conn: Connection, stream: StreamSpec, integration_id: int, record: dict[str, Any]) -> dict[str, Any]:
    """The merge base a remote record stands for (what a pull of it would write as
    `synced_values`). Export takes the base from here when an answer is about an older payload
    than the one it holds (a lost create found later): what differs locally then stays pending."""
    rid = stream.remote_id(record)
    rows = _prepare(conn, stream, integration_id, {rid: record})
    return _bases(conn, integration_id, rows)[rid][0]


# ---- the page writer ---------------------------------------------------------------------------
@dataclass
class _Held:
    """A local row merged one by one (see the module docstring)."""

    local_id: int
    remote_id: str
    base: dict[str, Any] | None  # None: adopted, no base yet
    remote: Row | None  # prepared remote row; None: deleted at the provider
    remote_version: str | None = None
    trust_local: bool = False  # adopted for a pending create: the remote is the hub's own write


def upsert_invoices(conn: Connection, stream: StreamSpec, scope: ReadScope, records: list[dict[str, Any]]) -> PageCounts:
    """Write one page of invoices; see the module docstring for the statements and why."""

    live, gone = split_page(stream, records)
    counts = PageCounts()
    iid, company_id = scope.integration_id, scope.company_id

    entity, kind = stream.entity_type, stream.rows_where["kind"]
    existing = {r.remote_id: r for r in conn.execute(_EXISTING, {"integration_id": iid, "kind": kind, "ids": [*live, *gone]})}
    based = [r.id for r in existing.values() if r.synced_values is not None]
    now, conflicted = snapshots(conn, based), with_open_conflicts(conn, iid, entity, based)
    held = {rid for rid, r in existing.items()
            if r.synced_values is not None and (r.id in conflicted or changed_fields(now[r.id], r.synced_values))}
    merges = [_Held(existing[rid].id, rid, existing[rid].synced_values, None) for rid in gone if rid in held]
    counts.deleted += mark_deleted(conn, stream, scope, [rid for rid in gone if rid not in held])

    if live:
        rows = _prepare(conn, stream, iid, live, records)
        keys = [{"kind": row["kind"], "number": row["number"]} for row in rows.values()]
        holders = {(k, n): rid for k, n, rid in conn.execute(_HOLDERS, {"keys": _json(keys), "company_id": company_id, "integration_id": iid})}
        numbered = set()
        for rid, row in rows.items():
            key = (row["kind"], row["number"])
            if holders.setdefault(key, rid) != rid:  # held by another invoice, stored or earlier in this page
                row["number"] = f"{row['number']} ({rid})"
            else:
                numbered.add(rid)
        new = [rid for rid in rows if rid not in existing and rid in numbered
               and (rows[rid]["vendor_remote_id"] or rows[rid]["customer_remote_id"])]
        twins: dict[str, int] = {}
        lost: dict[int, write_ledger.Write] = {}
        if new and conn.scalar(_ANY_UNLINKED, {"company_id": company_id}):
            keys = [{"remote_id": rid, "kind": rows[rid]["kind"], "number": rows[rid]["number"],
                     "vendor_remote_id": rows[rid]["vendor_remote_id"], "customer_remote_id": rows[rid]["customer_remote_id"]}
                    for rid in new]
            taken: set[int] = set()
            for rid, local_id in conn.execute(_UNLINKED_TWINS, {"keys": _json(keys), "company_id": company_id, "integration_id": iid}):
                if local_id not in taken:  # two remote bills alike: the first adopts, the other is imported
                    taken.add(local_id)
                    twins[rid] = local_id
        if twins:
            lost = write_ledger.pending_many(conn, iid, entity, list(twins.values()), "create")
        for rid, row in rows.items():
            if rid in held:
                merges.append(_Held(existing[rid].id, rid, existing[rid].synced_values, row, row["remote_version"]))
            elif rid in twins:
                merges.append(_Held(twins[rid], rid, None, row, row["remote_version"], trust_local=twins[rid] in lost))
        bulk = {rid: row for rid, row in rows.items() if rid not in held and rid not in twins}
        if bulk:
            written = conn.execute(_UPSERT, {"rows": _headers(bulk), "company_id": company_id, "integration_id": iid}).all()
            ids = {w.remote_id: w.id for w in written}
            for w in written:
                if w.created:
                    counts.created += 1
                elif w.status == "deleted":
                    counts.deleted += 1
                else:
                    counts.updated += 1
            replaced = [w.id for w in written if not w.created]  # an invoice created just now has no lines yet
            if replaced:
                conn.execute(sa.text("DELETE FROM invoice_line WHERE invoice_id = ANY(:ids)"), {"ids": replaced})
            lines = []
            for rid, row in bulk.items():  # the page's own line dicts, not used after this
                invoice_id = ids[rid]
                for line in row["lines"]:
                    line["invoice_id"] = invoice_id
                    lines.append(line)
            if lines:
                conn.execute(_INSERT_LINES, {"lines": _json(lines)})
                uncoded = sorted({line["invoice_id"] for line in lines if line["gl_account_id"] is None})
                if uncoded:  # the AI assist suggests their accounts in this page's transaction
                    code_imported_lines(conn, iid, uncoded)

    if merges:
        bases = _bases(conn, iid, {m.remote_id: m.remote for m in merges if m.remote is not None})
        for item in merges:
            deleted, conflicts = _merge_one(conn, scope, entity, item, bases.get(item.remote_id))
            counts.conflicts += conflicts
            if deleted:
                counts.deleted += 1
            else:
                counts.updated += 1
    _announce_status_changes(conn, stream, company_id, existing)
    return counts


_STATUSES = sa.text("SELECT id, remote_id, number, status FROM invoice WHERE id = ANY(:ids)")


def _announce_status_changes(conn: Connection, stream: StreamSpec, company_id: int, before: dict[str, Any]) -> None:
    """`invoice.status_changed` (with its `kind`: a bill is payable, a sales invoice receivable)
    for every invoice of the page whose status the page changed
    (paid, voided, deleted, ...), in the page's transaction: whatever path wrote it (bulk,
    delete, merge), the comparison is of the committed-to-be row with its state before."""
    if not before:
        return
    old = {r.id: r.status for r in before.values()}
    for row in conn.execute(_STATUSES, {"ids": list(old)}):
        if row.status != old[row.id]:
            emit(conn, company_id, "invoice.status_changed", {
                "invoice_id": row.id, "kind": stream.rows_where["kind"], "provider": stream.provider,
                "remote_id": row.remote_id, "number": row.number, "status": row.status, "previous_status": old[row.id]})


class PreparedPage(list):
    """A page of remote records plus their prepared rows by id(record) (`_prepared_row`), made
    ahead by the engine's reader thread while the previous page is written, and the key of the
    chart they were resolved against (the writer uses them only if its own read agrees)."""

    rows: dict[int, Row]
    chart_key: tuple


def premap_invoices(stream: StreamSpec, records: list[dict[str, Any]], scope: ReadScope) -> list[dict[str, Any]]:
    """The page as a `PreparedPage`: one read of the chart (a small table), then pure Python.
    A record whose mapping fails is left out, so the page writer maps it again and fails where
    it always did."""
    page = PreparedPage(records)
    with scope.engine.connect() as conn:
        chart = Chart.read(conn, scope.integration_id)
    page.rows, page.chart_key = {}, chart.key
    for record in records:
        if stream.is_deleted(record):
            continue
        try:
            page.rows[id(record)] = _prepared_row(stream, record, chart)
        except Exception:  # noqa: BLE001 - raised again by the page writer
            pass
    return page


upsert_invoices.premap = premap_invoices  # type: ignore[attr-defined]  # hub/sync/engine.py `_Prefetch`


def _typed(name: str, value: Any) -> Any:
    """A remote header value as its column takes it (dates arrive as ISO text)."""
    if name in ("issue_date", "due_date") and isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _merge_one(conn: Connection, scope: ReadScope, entity: str, item: _Held,
               remote: tuple[dict[str, Any], dict[str, int | None]] | None) -> tuple[bool, int]:
    """Merge one remote state into one local row (see the module docstring); returns (the row
    ended deleted by the remote, conflicts recorded)."""
    iid, local_id = scope.integration_id, item.local_id
    row = conn.execute(sa.select(invoice).where(invoice.c.id == local_id).with_for_update()).mappings().one()
    lines_now = local_lines(conn, [local_id])[local_id]
    local = {**{f: row[f] for f in HEADER_FIELDS}, "lines_digest": lines_digest(lines_now)}
    if item.remote is None:  # a tombstone says only that the status is now `deleted`
        new_base, remote_values, version = {**item.base, "status": "deleted"}, {"status": "deleted"}, row["remote_version"]
    else:
        new_base, parties = remote
        remote_values = {**{f: _typed(f, item.remote[f]) for f in HEADER_FIELDS if f not in PARTY_FIELDS}, **parties}
        version = item.remote_version
    local_c, remote_c = comparable(local), comparable(new_base)
    if item.base is None and item.remote is not None and local_c["lines"] != remote_c["lines"]:
        # adopted: the hub's lines never got their accounts (export sets them on success); take
        # the remote's where that makes the lines the same, so only real differences remain
        by_no = {line["line_no"]: line for line in item.remote["lines"]}
        filled = [{**line, "gl_account_id": line["gl_account_id"] or (by_no.get(line["line_no"]) or {}).get("gl_account_id")}
                  for line in lines_now]
        if lines_digest(filled) == remote_c["lines"]:
            for line in filled:
                conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == local_id, invoice_line.c.line_no == line["line_no"])
                             .values(gl_account_id=line["gl_account_id"]))
            lines_now, local["lines_digest"] = filled, remote_c["lines"]
            local_c["lines"] = remote_c["lines"]
    if item.trust_local:
        take, conflicts = set(), []
    else:
        merged = merge(None if item.base is None else comparable(item.base), local_c, remote_c, scope.conflict_policy)
        take, conflicts = merged.changed, merged.conflicts
    values = {f: remote_values[f] for f in take if f in HEADER_FIELDS}
    if "lines" in take:  # only the remote changed the lines: they are replaced
        conn.execute(sa.delete(invoice_line).where(invoice_line.c.invoice_id == local_id))
        conn.execute(_INSERT_LINES, {"lines": _json([{**line, "invoice_id": local_id} for line in item.remote["lines"]])})
    conn.execute(sa.update(invoice).where(invoice.c.id == local_id).values(
        **values, integration_id=iid, remote_id=item.remote_id, remote_version=version, synced_at=sa.func.now(),
        synced_values=new_base, sync_error=None, **({"updated_at": sa.func.now()} if values or take else {})))
    readable = []
    for c in conflicts:  # the lines conflict shows both sides' lines, not digests
        if c.field == "lines":
            readable.append(Conflict("lines", c.base, _jsonable(lines_now), _jsonable(item.remote["lines"])))
        else:
            readable.append(Conflict(c.field, (item.base or {}).get(c.field), _jsonable(local[c.field]), _jsonable(remote_values[c.field])))
    record_conflicts(conn, company_id=row["company_id"], integration_id=iid, entity_type=entity, local_id=local_id,
                     remote_id=item.remote_id, conflicts=readable)
    final = {**local_c, **{f: remote_c[f] for f in take}}
    close_converged(conn, iid, entity, local_id, [f for f in MERGED_FIELDS if final[f] == remote_c[f]])
    write_ledger.link(conn, iid, entity, [(local_id, item.remote_id, version)])
    if item.base is None:  # adopted: a create of it whose answer was lost is settled by what it made
        for write in write_ledger.pending_many(conn, iid, entity, [local_id], "create").values():
            write_ledger.succeed(conn, write, item.remote_id, version)
    return {**row, **values}["status"] == "deleted", len(readable)


# ---- conflicts on the lines --------------------------------------------------------------------
def resolve_lines_conflict(conn: Connection, conflict_id: int, keep: str) -> sa.Row:
    """Settle an open `lines` conflict of an invoice, which hub/sync/conflicts.py's
    `resolve_conflict` cannot write (`lines` is not a column): `keep="remote"` replaces the
    invoice's lines with the remote ones recorded in the conflict and takes their digest as
    the base (both sides agree again); `keep="local"` leaves the local lines, which differ from
    the base and so go out with the next export."""
    if keep not in ("local", "remote"):
        raise ValidationError(f"--keep must be local or remote, not '{keep}'")
    row = conn.execute(sa.select(sync_conflict).where(sync_conflict.c.id == conflict_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no conflict {conflict_id}")
    if row.status != "open" or row.entity_type not in ENTITIES.values() or row.field != "lines":
        raise ValidationError(f"conflict {conflict_id} is not an open invoice lines conflict")
    if keep == "remote":
        lines = [{f: line.get(f) for f in LINE_FIELDS} for line in row.remote_value or []]
        conn.execute(sa.delete(invoice_line).where(invoice_line.c.invoice_id == row.local_id))
        if lines:
            conn.execute(_INSERT_LINES, {"lines": _json([{**line, "invoice_id": row.local_id} for line in lines])})
        digest = lines_digest(local_lines(conn, [row.local_id])[row.local_id])
        base = sa.func.coalesce(invoice.c.synced_values, sa.text("'{}'::jsonb"))
        conn.execute(sa.update(invoice).where(invoice.c.id == row.local_id).values(
            updated_at=sa.func.now(), synced_values=base.op("||")(sa.func.jsonb_build_object("lines_digest", digest))))
    conn.execute(sa.update(sync_conflict).where(sync_conflict.c.id == conflict_id).values(
        status="resolved", resolution="took_remote" if keep == "remote" else "kept_local", resolved_at=sa.func.now()))
    return conn.execute(sa.select(sync_conflict).where(sync_conflict.c.id == conflict_id)).one()
