"""Data-quality checks on what the next export to an accounting provider would send.

Why here, declared as data: a bad invoice or vendor written to a ledger is expensive to undo
(voids, credit notes, a human in the provider's UI), so the export is guarded by checks that
run before it. Each check is one SQL query that selects, for ONE integration, the rows the
next export would send (new to that ledger, or changed locally since their last sync; never
the ledger's own data as imported, which is valid there by definition and which no person in
the hub can "fix"), plus the great-expectations expectations that every such row must meet.
A blocking check stops the export; a rule that flags what only *may* be wrong (similar
vendor names) is a separate, non-blocking check. The Dagster asset checks (pipelines/quality_checks.py) and the tests are generated from
`CHECKS`; the runner is hub/quality/expectations.py. No Dagster and no great-expectations import here:
this module is imported when the code location loads, GE costs seconds to import.

Queries return one row per record with a `record_id` column (what a person looks up) and
whatever the expectations and the reasons need. Where "what the export would send" or a
rule needs the sync's own Python functions (the invoice snapshot, the vendor name rules),
a check's `prepare` step narrows and annotates the rows after the query, calling those
functions from hub/sync, never re-implementing them here. Reasons are `str.format` templates over
the row's columns; they show business data (invoice numbers, vendor names, categories), never
credentials. When a row fails several expectations, it is reported once, with the reason of
the first one in the declared order: expectations go from the most basic to the most
specific, so "no account" is reported rather than "no account" and "account not in chart".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa

from hub.schema import invoice
from hub.sync.export_invoices import snapshots
from hub.sync.invoices import changed_fields
from hub.sync.vendors import name_key, normalize_name

# The invoices an export of integration :integration_id would send, as hub/sync/export_invoices.py
# `_candidates` selects them (mirrored here; keep the two in step): the company's payable
# invoices, not voided or deleted, that are either its own (integration_id NULL: not in any
# ledger yet, so the export creates them) or linked to this integration with a merge base
# (`synced_values`) -- those go out only when changed locally since, which `_changed_since_sync`
# decides with the export's own `snapshots` (a digest of the lines computed in Python, which
# SQL cannot reproduce). Linked invoices without a base, or unchanged, are the ledger's data
# as imported (e.g. a Xero bill with tax-inclusive lines) and are never sent: not checked.
# Sales invoices (receivables, kind 'receivable') are selected the same way by their own export.
def _bound_invoices(kind: str) -> str:
    return f"""
    target AS (SELECT id, company_id FROM integration WHERE id = :integration_id),
    bound AS (
        SELECT i.id, i.number, i.total, i.tax, i.integration_id IS NOT NULL AS linked
        FROM invoice i JOIN target t ON i.company_id = t.company_id
        WHERE i.kind = '{kind}' AND i.status NOT IN ('voided', 'deleted')
          AND (i.integration_id IS NULL OR (i.integration_id = t.id AND i.synced_values IS NOT NULL))
    )"""


_BOUND_INVOICES = _bound_invoices("payable")
_SNAPSHOT_BATCH = 1000


def _changed_since_sync(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the rows of new invoices and of linked ones whose snapshot (header and lines, as the
    export computes it) differs from `synced_values`: exactly the linked invoices the export sends."""
    linked = sorted({r["record_id"] for r in rows if r["linked"]})
    changed: set[int] = set()
    for start in range(0, len(linked), _SNAPSHOT_BATCH):
        batch = linked[start:start + _SNAPSHOT_BATCH]
        base = dict(conn.execute(sa.select(invoice.c.id, invoice.c.synced_values).where(invoice.c.id.in_(batch))).all())
        now = snapshots(conn, batch)
        changed |= {i for i in batch if changed_fields(now[i], base[i])}
    return [r for r in rows if not r["linked"] or r["record_id"] in changed]


# The vendors whose names meet in integration :integration_id's ledger: the unlinked active
# ones (`creates`: the export creates them, unless it finds them there; an unlinked inactive
# one is never created, hub/sync/export_vendors.py) and every vendor linked to this
# integration, inactive ones too (QuickBooks keeps their names reserved). Customers alike
# (`_ledger_parties("customer")`); `noun` names the kind in the reasons.
def _ledger_parties(table: str) -> str:
    return f"""
    WITH target AS (SELECT id, company_id FROM integration WHERE id = :integration_id)
    SELECT v.id AS record_id, '{table}' AS noun, v.display_name, v.integration_id IS NULL AS creates
    FROM {table} v JOIN target t ON v.company_id = t.company_id
    WHERE (v.integration_id IS NULL AND v.is_active) OR v.integration_id = t.id
    ORDER BY v.id"""


_LEDGER_VENDORS = _ledger_parties("vendor")


def _label(row: dict[str, Any]) -> str:
    where = "also to be created" if row["creates"] else "already in the ledger"
    return f"{row['noun']} {row['record_id']} {row['display_name']!r} ({where})"


def _same_name(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The vendors to be created, each with `name_key` (the ledger's uniqueness rule,
    `vendors.name_key`; None when empty) and `same_name_as`: another vendor to be created, or
    one already in the ledger, that the ledger would count as the same name (None if none)."""
    holders: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row["name_key"] = name_key(row["display_name"])
        if row["name_key"]:
            holders.setdefault(row["name_key"], []).append(row)
    creates = [r for r in rows if r["creates"]]
    for row in creates:
        other = next((h for h in holders.get(row["name_key"], []) if h is not row), None) if row["name_key"] else None
        row["same_name_as"] = _label(other) if other else None
    return creates


def _similar_name(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The vendors to be created, each with `similar_to`: a vendor (to be created, or in the
    ledger) whose name differs by the ledger's rule but is the same after
    `vendors.normalize_name` (case, accents, punctuation, legal suffixes). Exact clashes are
    `vendor_names_valid`'s; empty names too."""
    by_norm: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row["name_key"], row["normalized_name"] = name_key(row["display_name"]), normalize_name(row["display_name"]) or None
        if row["name_key"] and row["normalized_name"]:
            by_norm.setdefault(row["normalized_name"], []).append(row)
    creates = [r for r in rows if r["creates"]]
    for row in creates:
        similar = by_norm.get(row["normalized_name"], []) if row["name_key"] and row["normalized_name"] else []
        other = next((h for h in similar if h["name_key"] != row["name_key"]), None)
        row["similar_to"] = _label(other) if other else None
    return creates


@dataclass(frozen=True)
class Expectation:
    """One great-expectations expectation, by class name (`gx.expectations.<type>`) and
    keyword arguments, so it can be declared without importing GE; `code` and `reason`
    describe a row that fails it (in sync_log errors and the Dagster metadata)."""

    type: str
    kwargs: dict[str, Any]
    code: str
    reason: str

    def describe(self, row: dict[str, Any]) -> str:
        try:
            return self.reason.format(**row)
        except (KeyError, IndexError, ValueError, TypeError):  # a reason must never mask the failure itself
            return self.reason


@dataclass(frozen=True)
class QualityCheck:
    name: str  # asset check name; sync_log action is f"check_{name}"
    stream: str  # the asset it is attached to: <provider>/<stream>
    entity_type: str  # sync_log.entity_type
    description: str
    blocking: bool  # a failure stops the downstream export in the same Dagster run
    sql: str  # one bind parameter, :integration_id; must return a `record_id` column
    expectations: tuple[Expectation, ...] = field(default_factory=tuple)
    unit: str = "rows"  # what one row is, for messages ("3 of 40 invoices")
    # (connection, rows) -> the rows to validate, run after the query in its connection: for
    # rules that must be the very functions the sync uses (export_invoices.snapshots,
    # vendors.name_key / normalize_name); it may drop rows and add columns
    prepare: Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]] | None = None


def _totals_check(kind: str) -> QualityCheck:
    """The totals check on the invoices of one kind the next export would send: bills
    (`invoice_totals_match_lines` on `<provider>/invoices`) or sales invoices
    (`sales_invoice_totals_match_lines` on `<provider>/sales_invoices`)."""
    prefix, stream, entity, unit = ("", "invoices", "invoice", "invoices") if kind == "payable" else \
        ("sales_", "sales_invoices", "sales_invoice", "sales invoices")
    return QualityCheck(
        name=f"{prefix}invoice_totals_match_lines",
        stream=stream,
        entity_type=entity,
        unit=unit,
        blocking=True,
        description=(
            f"Every {unit[:-1]} the next export would send (new to this ledger, or changed locally since its last sync) has "
            "total = sum of its line amounts + tax, to the cent. Invoices as imported are the ledger's own data and are "
            "not checked (a Xero bill with tax-inclusive lines is valid there). "
            "Blocking: a ledger would book the wrong amount, or reject the invoice half-way through an export."
        ),
        # The difference is computed exactly in numeric and only then made a float, so a
        # one-cent error is 0.01 and never a rounding artefact of the comparison.
        sql=f"""
            WITH {_bound_invoices(kind)}
            SELECT b.id AS record_id, b.number, b.linked,
                   b.total::float8 AS total, b.tax::float8 AS tax,
                   coalesce(sum(l.amount), 0)::float8 AS lines_amount, count(l.id) AS line_count,
                   (b.total - b.tax - coalesce(sum(l.amount), 0))::float8 AS difference
            FROM bound b LEFT JOIN invoice_line l ON l.invoice_id = b.id
            GROUP BY b.id, b.number, b.linked, b.total, b.tax
            ORDER BY b.id""",
        prepare=_changed_since_sync,
        expectations=(
            Expectation(
                "ExpectColumnValuesToBeBetween", {"column": "difference", "min_value": -0.005, "max_value": 0.005},
                code="total_mismatch",
                reason="invoice {number}: total {total:.2f} != lines {lines_amount:.2f} + tax {tax:.2f} "
                       "(off by {difference:+.2f}, {line_count} lines)",
            ),
        ),
    )


def _names_valid_check(party: str) -> QualityCheck:
    """The names check on the vendors (or customers) the next export would create."""
    return QualityCheck(
        name=f"{party}_names_valid",
        stream=f"{party}s",
        entity_type=party,
        unit=f"{party}s to create",
        blocking=True,
        description=(
            f"Every {party} the next export would create (unlinked and active) has a non-empty display name that the "
            f"ledger would accept as new: no other {party} to be created, nor any {party} already linked to this "
            "integration (retired ones too), has the same name by the ledger's own rule (case and surrounding spaces "
            "ignored: QuickBooks DisplayName, error 6240; Xero contact Name). Names already in the ledger are not "
            "judged: they are the ledger's valid data. Blocking: the ledger refuses the duplicate."
        ),
        sql=_ledger_parties(party),
        prepare=_same_name,
        expectations=(
            Expectation(
                "ExpectColumnValuesToNotBeNull", {"column": "name_key"},
                code="empty_name", reason="{noun} {record_id}: display name is empty",
            ),
            Expectation(
                "ExpectColumnValuesToBeNull", {"column": "same_name_as"},
                code="duplicate_name",
                reason="{noun} {record_id}: display name {display_name!r} is the same name as {same_name_as} "
                       "(the ledger ignores case and surrounding spaces); rename one, or merge them",
            ),
        ),
    )


CHECKS: tuple[QualityCheck, ...] = (
    _totals_check("payable"),
    QualityCheck(
        name="invoice_lines_mapped",
        stream="invoices",
        entity_type="invoice",
        unit="invoice lines",
        blocking=False,
        description=(
            "Every line of the invoices the next export would send books to an active account of the chart "
            "imported from this integration: through the account mapping of its category, or, for a line "
            "without a category (as imported), through its own account. Not blocking: the export itself holds "
            "back each invoice with such a line, with the reason (hub/sync/export_invoices.py), so one unmapped "
            "category does not stop every other invoice; this check makes the gap visible in the UI."
        ),
        # The account a line books to: a line with a category goes through this integration's
        # mapping of it (the hub's own lines); a line without one keeps its own account (lines
        # imported from a provider carry the provider's account, and a category only when
        # exactly one category maps to it; hub/sync/invoices.py). The account must be one of
        # this integration's imported chart (another provider's account is no use here).
        sql=f"""
            WITH {_BOUND_INVOICES},
            line AS (
                SELECT b.id AS record_id, b.number, b.linked, l.line_no, nullif(btrim(l.category), '') AS category,
                       CASE WHEN nullif(btrim(l.category), '') IS NOT NULL THEN m.gl_account_id
                            ELSE l.gl_account_id END AS account_id
                FROM bound b
                JOIN invoice_line l ON l.invoice_id = b.id
                LEFT JOIN account_mapping m ON m.integration_id = :integration_id AND m.local_category = l.category
            )
            SELECT line.record_id, line.number, line.linked, line.line_no, line.category, line.account_id,
                   coalesce('category ''' || line.category || '''', 'no category') AS category_label,
                   a.id AS chart_account_id, a.is_active AS account_active,
                   concat_ws(' ', a.code, a.name) AS account_label
            FROM line
            LEFT JOIN gl_account a ON a.id = line.account_id AND a.integration_id = :integration_id
            ORDER BY line.record_id, line.line_no""",
        prepare=_changed_since_sync,
        expectations=(
            Expectation(
                "ExpectColumnValuesToNotBeNull", {"column": "account_id"},
                code="unmapped_category",
                reason="invoice {number} line {line_no} ({category_label}): no account mapping for this integration "
                       "(hub mapping set)",
            ),
            Expectation(
                "ExpectColumnValuesToNotBeNull", {"column": "chart_account_id"},
                code="account_not_in_chart",
                reason="invoice {number} line {line_no} ({category_label}): account {account_id} is not in the chart "
                       "imported from this integration",
            ),
            Expectation(
                "ExpectColumnValuesToBeInSet", {"column": "account_active", "value_set": [True]},
                code="account_inactive",
                reason="invoice {number} line {line_no} ({category_label}): account {account_label} is inactive",
            ),
        ),
    ),
    _names_valid_check("vendor"),
    _totals_check("receivable"),
    _names_valid_check("customer"),
    QualityCheck(
        name="vendor_names_distinct",
        stream="vendors",
        entity_type="vendor",
        unit="vendors to create",
        blocking=False,
        description=(
            "Every vendor the next export would create has a name that stays distinct from the other vendors to be "
            "created and from those already linked to this integration under the hub's matching rule "
            "(hub.sync.vendors.normalize_name: case, accents, punctuation and legal suffixes such as Inc ignored). "
            "Not blocking: \"Acme Supply Co\" and \"Acme Supply Inc\" may well be two vendors, and the ledger takes "
            "both; but the export matches by that rule before creating, so such a vendor may be linked to the other "
            "one (or held back as already linked) instead of created. A person should look."
        ),
        sql=_LEDGER_VENDORS,
        prepare=_similar_name,
        expectations=(
            Expectation(
                "ExpectColumnValuesToBeNull", {"column": "similar_to"},
                code="similar_name",
                reason="vendor {record_id}: display name {display_name!r} matches {similar_to} once case, accents, "
                       "punctuation and legal suffixes are ignored (as {normalized_name!r}); the export may link it "
                       "to that vendor instead of creating it",
            ),
        ),
    ),
    QualityCheck(
        name="no_orphan_external_refs",
        stream="vendors",
        entity_type="external_ref",
        unit="external refs",
        blocking=False,
        description=(
            "Every external_ref of this integration points to an existing local row of its entity type, in the "
            "integration's company. Not blocking: an orphan does not corrupt an export, but it hides a remote "
            "record from the hub (and its remote id cannot be linked again) until it is cleaned up."
        ),
        sql="""
            WITH target AS (SELECT id, company_id FROM integration WHERE id = :integration_id)
            SELECT r.id AS record_id, r.entity_type, r.local_id, r.remote_id,
                   CASE r.entity_type
                       WHEN 'vendor' THEN EXISTS (SELECT 1 FROM vendor x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       WHEN 'customer' THEN EXISTS (SELECT 1 FROM customer x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       WHEN 'invoice' THEN EXISTS (SELECT 1 FROM invoice x WHERE x.id = r.local_id AND x.company_id = t.company_id
                                                   AND x.kind = 'payable')
                       WHEN 'sales_invoice' THEN EXISTS (SELECT 1 FROM invoice x WHERE x.id = r.local_id
                                                         AND x.company_id = t.company_id AND x.kind = 'receivable')
                       WHEN 'project' THEN EXISTS (SELECT 1 FROM project x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       WHEN 'document' THEN EXISTS (SELECT 1 FROM document x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       ELSE false
                   END AS local_row_exists
            FROM external_ref r JOIN target t ON r.integration_id = t.id
            ORDER BY r.id""",
        expectations=(
            Expectation(
                "ExpectColumnValuesToBeInSet", {"column": "entity_type", "value_set": ["vendor", "customer", "invoice", "sales_invoice", "project", "document"]},
                code="unknown_entity_type", reason="external ref {record_id}: unknown entity type {entity_type!r}",
            ),
            Expectation(
                "ExpectColumnValuesToBeInSet", {"column": "local_row_exists", "value_set": [True]},
                code="orphan_ref",
                reason="external ref {record_id}: {entity_type} {local_id} (remote id {remote_id}) does not exist "
                       "in this integration's company",
            ),
        ),
    ),
)

BY_NAME: dict[str, QualityCheck] = {check.name: check for check in CHECKS}
