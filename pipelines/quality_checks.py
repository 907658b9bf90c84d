"""Dagster asset checks generated from the data-quality checks in hub/quality/checks.py, for
each accounting provider: the invoice checks on `<provider>/invoices` (and
`<provider>/sales_invoices`), the vendor checks on `<provider>/vendors` (and
`<provider>/customers`).

Why asset checks: they run in the same run as the sync assets (the provider's sync job
selects the asset group, which brings the checks of its assets along), show their result and
metadata on the asset in the Dagster UI, and a failing *blocking* check (ERROR severity)
fails its step, so assets downstream of the checked asset (the exports) do not run in that
run. Every evaluation is also a `sync_log` row, for the hub's own sync history views.

Partitions: the checked assets are partitioned by integration, the checks are not (a
partitioned check is a preview feature in Dagster 1.13). An unpartitioned check executed in
a partitioned run still sees the run's partition: `context.partition_key` comes from the
run's `dagster/partition` tag (checked against 1.13.27). So a check checks exactly the
integration of its run. Executed without a partition (the "Execute" button on a check), it
checks every active integration of its provider. A partition of another provider passes
with metadata "skipped", as the sync assets do.
"""

from typing import Any

import dagster as dg

from hub.quality import CHECKS, CheckOutcome, QualityCheck, run_check
from hub.quality.targets import active_integration_ids
from hub.integrations import integration_id_from_partition
from hub.providers.registry import with_capability
from resources import HubDatabase

CHECK_PROVIDERS = with_capability("accounting")  # their gl_account/vendor/invoice streams are checked
PARTITION_TAG = "dagster/partition"


def _partition_keys(context: dg.AssetCheckExecutionContext) -> list[str]:
    """The integration partitions this check execution is about ([] when none)."""
    if context.has_partition_key:
        return [context.partition_key]
    if context.has_partition_key_range:
        return list(context.partition_keys)
    tag = context.run.tags.get(PARTITION_TAG)
    return [tag] if tag else []


def _sample_markdown(outcomes: list[CheckOutcome]) -> str:
    lines = ["| integration | record | code | reason |", "|---|---|---|---|"]
    for outcome in outcomes:
        for item in outcome.sample:
            reason = str(item["message"]).replace("|", "\\|")
            lines.append(f"| {outcome.integration_id} | {item['record_id']} | {item['code']} | {reason} |")
    return "\n".join(lines)


def check_result(check: QualityCheck, outcomes: list[CheckOutcome], partitions: list[str]) -> dg.AssetCheckResult:
    """One AssetCheckResult for the outcomes of one or more integrations."""
    passed = all(o.passed for o in outcomes)
    unexpected = sum(o.unexpected for o in outcomes)
    rows = sum(o.rows_checked for o in outcomes)
    metadata: dict[str, Any] = {
        "rows_checked": dg.MetadataValue.int(rows),
        "unexpected": dg.MetadataValue.int(unexpected),
        "ge_seconds": dg.MetadataValue.float(round(sum(o.ge_seconds for o in outcomes), 3)),
        "integrations": dg.MetadataValue.text(", ".join(str(o.integration_id) for o in outcomes) or "none"),
    }
    if partitions:
        metadata["partition"] = dg.MetadataValue.text(", ".join(partitions))
    log_ids = [o.sync_log_id for o in outcomes if o.sync_log_id is not None]
    if len(log_ids) == 1:
        metadata["sync_log_id"] = dg.MetadataValue.int(log_ids[0])
    elif log_ids:
        metadata["sync_log_ids"] = dg.MetadataValue.json(log_ids)
    if not passed:
        metadata["failed_expectations"] = dg.MetadataValue.json(sorted({t for o in outcomes for t in o.failed_expectations}))
        metadata["sample"] = dg.MetadataValue.md(_sample_markdown(outcomes))
    if passed:
        description = f"{rows} {check.unit} checked, all passed"
    else:
        description = f"{unexpected} of {rows} {check.unit} failed; see the sample and sync_log"
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=description,
    )


def build_quality_check(provider: str, check: QualityCheck) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([provider, check.stream]),
        name=check.name,
        blocking=check.blocking,
        description=check.description,
        metadata={"entity_type": check.entity_type, "sync_log_action": f"check_{check.name}"},
    )
    def _check(context: dg.AssetCheckExecutionContext, hub_db: HubDatabase) -> dg.AssetCheckResult:
        # only the database is needed: the checks read local rows, never decrypt credentials
        engine = hub_db.get_engine()
        partitions = _partition_keys(context)
        if partitions:
            mine = [key for key in partitions if key.rsplit("-", 1)[0] == provider]
            if not mine:
                reason = f"{', '.join(partitions)} is not a {provider} integration"
                return dg.AssetCheckResult(passed=True, metadata={"skipped": reason, "partition": ", ".join(partitions)})
            integration_ids = [integration_id_from_partition(key) for key in mine]
        else:
            integration_ids = active_integration_ids(engine, provider)
        outcomes = []
        for integration_id in integration_ids:
            outcome = run_check(engine, integration_id, check, run_id=context.run.run_id)
            context.log.info(f"integration {integration_id}: {outcome.summary} (sync_log {outcome.sync_log_id}, "
                             f"GE {outcome.ge_seconds:.2f} s of which import {outcome.ge_import_seconds:.2f} s)")
            outcomes.append(outcome)
        return check_result(check, outcomes, partitions)

    return _check


QUALITY_CHECKS: list[dg.AssetChecksDefinition] = [
    build_quality_check(provider, check) for provider in CHECK_PROVIDERS for check in CHECKS
]
"""Every generated asset check; `dg.Definitions(asset_checks=QUALITY_CHECKS)`."""

# the declarative list, by provider: handy for the web views and the tests
CHECK_KEYS: dict[str, list[dg.AssetCheckKey]] = {
    provider: [dg.AssetCheckKey(dg.AssetKey([provider, c.stream]), c.name) for c in CHECKS] for provider in CHECK_PROVIDERS
}

__all__ = ["CHECK_KEYS", "CHECK_PROVIDERS", "QUALITY_CHECKS", "build_quality_check", "check_result"]
