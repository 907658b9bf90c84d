"""Export assets (push sync), declared once per (provider, entity): `<provider>/vendor_export`,
`<provider>/invoice_export`, `<provider>/customer_export`, `<provider>/sales_invoice_export`,
`procore/documents`. Each is partitioned like its provider's
imports and runs after the import assets it names in `after`, so the blocking data-quality
checks on those (pipelines/quality_checks.py) stop a bad export before anything reaches a ledger.

An export honours the integration's sync preferences: a stream that is off, or import only,
materializes as a no-op that says so.
"""

from dataclasses import dataclass
from typing import Any, Callable

import dagster as dg

from hub import integrations as store
from hub.providers import registry
from hub.providers.spec import ProviderSpec
from hub.sync.export_invoices import export_invoices, export_sales_invoices
from hub.sync.export_vendors import export_customers, export_vendors
from hub.sync.procore_documents import share_documents
from pipelines.assets.sync import skipped_by_preferences
from pipelines.partitions import PROVIDER_PARTITIONS
from resources import HubDatabase, ProviderClients, SecretStore


@dataclass(frozen=True)
class ExportSpec:
    provider: str
    name: str  # asset key <provider>/<name>
    stream: str  # the stream its preference is set on (hub sync set --stream)
    run: Callable[..., Any]  # (engine, keyring, integration_id, run_id=..., client=...) -> result with as_metadata()
    after: tuple[str, ...]  # assets of the same provider that must materialize (and pass their checks) first
    description: str


def _documents_metadata(result: Any) -> dict[str, Any]:
    return {"uploaded": len(result.uploaded), "found_remote": len(result.found_remote), "failed": len(result.failed),
            "sync_log_id": result.sync_log_id}


def _accounting_exports(provider: ProviderSpec) -> tuple[ExportSpec, ...]:
    """The vendor, bill, customer and sales invoice exports every accounting provider has."""
    return (
        ExportSpec(provider.name, "vendor_export", "vendors", export_vendors, ("vendors",),
                   f"New and changed local vendors to {provider.display_name}: matched before create, idempotent "
                   "writes, conflicts recorded (hub/sync/export_vendors.py)."),
        ExportSpec(provider.name, "invoice_export", "invoices", export_invoices, ("invoices", "vendor_export"),
                   f"Local bills to {provider.display_name}, lines on the accounts of `hub mapping`; an unmapped line "
                   "blocks its invoice with the reason (hub/sync/export_invoices.py)."),
        ExportSpec(provider.name, "customer_export", "customers", export_customers, ("customers",),
                   f"New and changed local customers to {provider.display_name}, as vendors are "
                   "(hub/sync/export_vendors.py)."),
        ExportSpec(provider.name, "sales_invoice_export", "sales_invoices", export_sales_invoices,
                   ("sales_invoices", "customer_export"),
                   f"Local sales invoices (receivables) to {provider.display_name}, as bills are; a customer not in "
                   "the ledger yet blocks its invoice with the reason (hub/sync/export_invoices.py)."),
    )


EXPORTS: tuple[ExportSpec, ...] = (
    *(export for name in registry.with_capability("accounting") for export in _accounting_exports(registry.get(name))),
    ExportSpec("procore", "documents", "documents", share_documents, (),
               "Documents of linked projects shared to Procore, each uploaded once (hub/sync/procore_documents.py)."),
)


def build_export_asset(spec: ExportSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=[spec.provider, spec.name],
        group_name=spec.provider,
        partitions_def=PROVIDER_PARTITIONS[spec.provider],
        deps=[dg.AssetKey([spec.provider, name]) for name in spec.after],
        kinds={spec.provider, "postgres"},
        pool=f"{spec.provider}_api",
        description=spec.description,
    )
    def _export(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore,
                provider_clients: ProviderClients) -> dg.MaterializeResult:
        engine, keyring = hub_db.get_engine(), secrets.keyring()
        integration_id = store.integration_id_from_partition(context.partition_key)
        if reason := skipped_by_preferences(engine, keyring, integration_id, spec.stream, "export"):
            context.log.info(reason)
            return dg.MaterializeResult(metadata={"skipped": reason})
        with provider_clients.open(integration_id) as client:
            result = spec.run(engine, keyring, integration_id, run_id=context.run.run_id, client=client)
        metadata = result.as_metadata() if hasattr(result, "as_metadata") else _documents_metadata(result)
        context.log.info(f"{spec.provider}/{spec.name}: {metadata}")
        return dg.MaterializeResult(metadata=metadata)

    return _export


EXPORT_ASSETS = [build_export_asset(spec) for spec in EXPORTS]
