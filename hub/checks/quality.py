"""Data-quality checks on what the next export to an accounting provider would send.

Why here, declared as data: a bad invoice or vendor written to a ledger is expensive to undo
(voids, credit notes, a human in the provider's UI), so the export is guarded by checks that
run before it. Each check is one SQL query that selects, for ONE integration, the rows the
next export would send (its company's rows that are the hub's own, i.e. not linked yet, or
linked to this integration), plus the great-expectations expectations that every such row
must meet. The Dagster asset checks (pipelines/checks.py) and the tests are generated from
`CHECKS`; the runner is hub/checks/ge.py. No Dagster and no great-expectations import here:
this module is imported when the code location loads, GE costs seconds to import.

Queries return one row per record with a `record_id` column (what a person looks up) and
whatever the expectations and the reasons need. Reasons are `str.format` templates over
the row's columns; they show business data (invoice numbers, vendor names, categories), never
credentials. When a row fails several expectations, it is reported once, with the reason of
the first one in the declared order: expectations go from the most basic to the most
specific, so "no account" is reported rather than "no account" and "account not in chart".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from hub.sync.vendors import normalize_name

# The invoices an export of integration :integration_id would send: the company's own
# (integration_id NULL: not exported anywhere yet) and those already linked to this
# integration. Voided and deleted invoices are left out: their lines are never sent again.
_BOUND_INVOICES = """
    target AS (SELECT id, company_id FROM integration WHERE id = :integration_id),
    bound AS (
        SELECT i.id, i.number, i.total, i.tax
        FROM invoice i JOIN target t ON i.company_id = t.company_id
        WHERE (i.integration_id IS NULL OR i.integration_id = t.id) AND i.status NOT IN ('voided', 'deleted')
    )"""


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
    # columns computed in Python after the query, {new column: (source column, function)}:
    # for rules that must be the very function the sync uses (e.g. vendors.normalize_name)
    derived: Mapping[str, tuple[str, Callable[[Any], Any]]] = field(default_factory=dict)


CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        name="invoice_totals_match_lines",
        stream="invoices",
        entity_type="invoice",
        unit="invoices",
        blocking=True,
        description=(
            "Every invoice the next export would send has total = sum of its line amounts + tax, to the cent. "
            "Blocking: a ledger would book the wrong amount, or reject the invoice half-way through an export."
        ),
        # The difference is computed exactly in numeric and only then made a float, so a
        # one-cent error is 0.01 and never a rounding artefact of the comparison.
        sql=f"""
            WITH {_BOUND_INVOICES}
            SELECT b.id AS record_id, b.number,
                   b.total::float8 AS total, b.tax::float8 AS tax,
                   coalesce(sum(l.amount), 0)::float8 AS lines_amount, count(l.id) AS line_count,
                   (b.total - b.tax - coalesce(sum(l.amount), 0))::float8 AS difference
            FROM bound b LEFT JOIN invoice_line l ON l.invoice_id = b.id
            GROUP BY b.id, b.number, b.total, b.tax
            ORDER BY b.id""",
        expectations=(
            Expectation(
                "ExpectColumnValuesToBeBetween", {"column": "difference", "min_value": -0.005, "max_value": 0.005},
                code="total_mismatch",
                reason="invoice {number}: total {total:.2f} != lines {lines_amount:.2f} + tax {tax:.2f} "
                       "(off by {difference:+.2f}, {line_count} lines)",
            ),
        ),
    ),
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
                SELECT b.id AS record_id, b.number, l.line_no, nullif(btrim(l.category), '') AS category,
                       CASE WHEN nullif(btrim(l.category), '') IS NOT NULL THEN m.gl_account_id
                            ELSE l.gl_account_id END AS account_id
                FROM bound b
                JOIN invoice_line l ON l.invoice_id = b.id
                LEFT JOIN account_mapping m ON m.integration_id = :integration_id AND m.local_category = l.category
            )
            SELECT line.record_id, line.number, line.line_no, line.category, line.account_id,
                   coalesce('category ''' || line.category || '''', 'no category') AS category_label,
                   a.id AS chart_account_id, a.is_active AS account_active,
                   concat_ws(' ', a.code, a.name) AS account_label
            FROM line
            LEFT JOIN gl_account a ON a.id = line.account_id AND a.integration_id = :integration_id
            ORDER BY line.record_id, line.line_no""",
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
    QualityCheck(
        name="vendor_names_valid",
        stream="vendors",
        entity_type="vendor",
        unit="vendors",
        blocking=True,
        description=(
            "Every vendor the next export would create, and every vendor already linked to this integration, has a "
            "non-empty display name, unique among them after normalization (the export's own matching rule, "
            "hub.sync.vendors.normalize_name: case, accents, punctuation and legal suffixes such as Inc ignored). "
            "Blocking: QuickBooks refuses a duplicate "
            "display name (error 6240), Xero merges contacts by name."
        ),
        # The names that meet in this integration's ledger: the unlinked active vendors (the
        # export creates those; an unlinked inactive one is never created, hub/sync/
        # export_vendors.py) and every vendor linked to this integration, inactive ones too
        # (QuickBooks keeps their names reserved). An empty name normalizes to NULL, so it
        # is reported as empty, not also as a duplicate of the other empty ones.
        sql="""
            WITH target AS (SELECT id, company_id FROM integration WHERE id = :integration_id)
            SELECT v.id AS record_id, v.display_name, v.is_active
            FROM vendor v JOIN target t ON v.company_id = t.company_id
            WHERE (v.integration_id IS NULL AND v.is_active) OR v.integration_id = t.id
            ORDER BY v.id""",
        derived={"normalized_name": ("display_name", lambda name: normalize_name(name) or None)},
        expectations=(
            Expectation(
                "ExpectColumnValuesToNotBeNull", {"column": "normalized_name"},
                code="empty_name", reason="vendor {record_id}: display name is empty",
            ),
            Expectation(
                "ExpectColumnValuesToBeUnique", {"column": "normalized_name"},
                code="duplicate_name",
                reason="vendor {record_id}: display name {display_name!r} is used by another vendor of the company "
                       "(compared as {normalized_name!r})",
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
                       WHEN 'invoice' THEN EXISTS (SELECT 1 FROM invoice x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       WHEN 'project' THEN EXISTS (SELECT 1 FROM project x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       WHEN 'document' THEN EXISTS (SELECT 1 FROM document x WHERE x.id = r.local_id AND x.company_id = t.company_id)
                       ELSE false
                   END AS local_row_exists
            FROM external_ref r JOIN target t ON r.integration_id = t.id
            ORDER BY r.id""",
        expectations=(
            Expectation(
                "ExpectColumnValuesToBeInSet", {"column": "entity_type", "value_set": ["vendor", "invoice", "project", "document"]},
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
