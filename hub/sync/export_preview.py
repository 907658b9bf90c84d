"""The export preview: what the next export of an accounting integration would do, record by
record, before anything is written to the books.

Why it can be trusted: it is the export's own plan. hub/sync/export_vendors.py and
export_invoices.py each decide a record (`_decide`: create, update field by field, link to a
record already at the provider, or hold back with the reason) before they apply it; the
preview runs the same candidates and decisions in a read-only scope (`plan_scope`: the
provider is only read, no sync_log row, no lock) and applies nothing. On top, the same
things that stop an export in a sync run:
- the sync preferences: a stream whose export is off is not planned (the export asset
  skips it the same way, pipelines/assets/exports.py);
- the blocking data-quality checks (hub/quality), evaluated with the checks' own runner
  but not recorded: a record a blocking check fails is shown held back with the check's
  reason, and the preview says that while one fails, the sync run stops before exporting.
- vendors go before invoices in a sync run, so a bill whose vendor is created or linked in
  the same run is not held back for it (`plan_invoices(vendors_ahead=...)`); customers go
  before sales invoices (receivables) the same way.
- the AI assist (issue 14): the bills' uncoded lines are scored as the export scores them, in
  a transaction rolled back (hub/sync/export_invoices.py `_code_lines`): an account the
  export would auto-apply books the line in the plan, a suggestion is named in the hold-back
  reason, and no suggestion is stored; a vendor the export would link to a ledger vendor
  it resembles, or hold back as a possible duplicate, is shown so (hub/sync/export_vendors.py).

How much it decides: at most `LIMIT` records per entity per preview (a new vendor costs up
to three look-ups at the provider, and the page is worked out while a person waits); how
many more the export would take is said (`undecided`). The export itself has no such cap.

What it cannot foresee: what the provider answers to a write (a refusal, a version that
moved meanwhile), and how one record's write changes the next one's decision within a run
(two new vendors that the provider will see as one). It writes nothing itself; the one
write a read may cause is the provider's token refresh, which every API call may need.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from hub.crypto import Keyring
from hub.providers.protocols import AccountingClient
from hub.providers.transport import RetrySettings
from hub.quality import CHECKS
from hub.quality.expectations import evaluate
from hub.sync import preferences
from hub.sync.export import ACTIONS, Decision, plan_scope
from hub.sync.export_invoices import plan_invoices
from hub.sync.export_vendors import plan_vendors

# (preference stream, entity), in export order: vendors before bills, customers before sales invoices
STREAMS = (("vendors", "vendor"), ("invoices", "invoice"), ("customers", "customer"), ("sales_invoices", "sales_invoice"))
LIMIT = 500  # records decided per entity in one preview


@dataclass(frozen=True)
class FailingCheck:
    name: str
    entity_type: str
    description: str
    failed: int  # records that fail it


@dataclass
class Preview:
    integration_id: int
    decisions: list[Decision] = field(default_factory=list)  # vendors, bills, customers, sales invoices (the export's order)
    skipped: dict[str, str] = field(default_factory=dict)  # entity -> why the preferences skip its export
    failing_checks: list[FailingCheck] = field(default_factory=list)  # blocking checks that fail now
    undecided: dict[str, int] = field(default_factory=dict)  # entity -> records past the limit, not worked out

    @property
    def counts(self) -> dict[str, int]:
        """Records per action, every action listed (0 when none)."""
        found = Counter(d.action for d in self.decisions)
        return {action: found[action] for action in ACTIONS}


def preview_export(engine: Engine, keyring: Keyring, integration_id: int, *, client: AccountingClient | None = None,
                   retry: RetrySettings | None = None, checks: bool = True, limit: int = LIMIT) -> Preview:
    """Plan the next export of vendors and bills, customers and sales invoices to the
    integration; see the module docstring."""
    with engine.connect() as conn:
        prefs = preferences.read(conn, keyring, integration_id)
    preview = Preview(integration_id)
    for stream, entity in STREAMS:
        if not prefs.runs(stream, "export"):
            pref = prefs.streams.get(stream)
            preview.skipped[entity] = (f"the {stream} stream is switched off" if pref is None or not pref.enabled
                                       else f"the {stream} stream is set to {pref.direction} only")
    with plan_scope(engine, keyring, integration_id, client, retry) as scope:
        vendors, left = plan_vendors(scope, limit=limit) if "vendor" not in preview.skipped else ([], 0)
        invoices, left_invoices = (plan_invoices(scope, {d.local_id: d for d in vendors}, limit=limit, keyring=keyring)
                                   if "invoice" not in preview.skipped else ([], 0))
        customers, left_customers = (plan_vendors(scope, limit=limit, entity="customer")
                                     if "customer" not in preview.skipped else ([], 0))
        sales, left_sales = (plan_invoices(scope, {d.local_id: d for d in customers}, limit=limit, kind="receivable")
                             if "sales_invoice" not in preview.skipped else ([], 0))
    preview.decisions = [*vendors, *invoices, *customers, *sales]
    preview.undecided = {entity: n for entity, n in (("vendor", left), ("invoice", left_invoices), ("customer", left_customers),
                                                     ("sales_invoice", left_sales)) if n}
    if checks:
        _hold_failing(engine, integration_id, preview)
    return preview


def _hold_failing(engine: Engine, integration_id: int, preview: Preview) -> None:
    """Evaluate the blocking checks (nothing recorded) and hold back what they fail."""
    planned = {(d.entity_type, d.local_id): d for d in preview.decisions}
    for check in CHECKS:
        if not check.blocking or check.entity_type in preview.skipped:
            continue
        outcome, errors = evaluate(engine, integration_id, check)
        if outcome.passed:
            continue
        preview.failing_checks.append(FailingCheck(check.name, check.entity_type, check.description, outcome.unexpected))
        for error in errors:
            decision = planned.get((check.entity_type, int(error["record_id"]))) if error["record_id"] else None
            if decision is not None and decision.action != "hold":
                decision.action, decision.hold = "hold", "check"
                decision.reason = f"failing quality check {check.name}: {error['message']}"
                decision.changes = []
