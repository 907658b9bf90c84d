"""QuickBooks Online (accounting).

What the hub does with it:
- pulls accounts, vendors, customers, bills (payables) and sales invoices (receivables,
  `Invoice`), with lines, into gl_account, vendor, customer and invoice (streams.py; assets
  quickbooks/accounts, /vendors, /customers, /invoices, /sales_invoices);
- exports vendors, customers, bills and sales invoices back (its side in export.py, run by
  hub/sync/export*.py; assets quickbooks/*_export), every vendor field both ways (customers:
  all but the tax id, which a QuickBooks Customer does not have);
- reconciles the local rows against a full read every night (hub/sync/reconcile.py);
- receives its webhooks (scheme `quickbooks`, verified by inbound.py with the webhook
  verifier token).

Here: client.py (Accounting API v3 over the shared transport), streams.py (mappings and the
CDC/query paging adapter), export.py (its side of an export: payloads, look-ups, SyncToken
updates; the vendor fields it syncs), inbound.py (webhook verification). Emulator:
emulators/quickbooks.py. Tests: tests/providers/test_quickbooks_client.py,
tests/emulators/test_quickbooks_emulator.py, tests/test_pull_sync.py,
tests/test_invoice_sync.py, tests/test_vendor_two_way.py, tests/test_invoice_export.py,
tests/test_reconcile.py.
"""

from hub.providers.quickbooks import client, export, inbound, oauth, streams
from hub.providers.spec import AccountingSpec, AuthSpec, ClientFactory, FieldSpec, InboundWebhook, OAuthConnect, ProviderSpec

SPEC = ProviderSpec(
    name="quickbooks",
    display_name="QuickBooks Online",
    category="accounting",
    auth=AuthSpec("oauth_refresh", authorize_url="https://appcenter.intuit.com/connect/oauth2",
                  token_url=client.DEFAULT_TOKEN_URL, scopes=("com.intuit.quickbooks.accounting",),
                  connect=OAuthConnect("realm_id", "company", oauth.accounts, oauth.revoke, revoke_url=oauth.REVOKE_URL)),
    credentials=(
        FieldSpec("client_id", "Client ID"),
        FieldSpec("client_secret", "Client secret", secret=True),
        FieldSpec("refresh_token", "Refresh token", secret=True, help="from the user's grant; rotated on each refresh"),
        FieldSpec("webhook_verifier_token", "Webhook verifier token", secret=True, required=False,
                  help="verifies the intuit-signature of inbound webhooks"),
    ),
    config=(FieldSpec("realm_id", "Company (realm) ID"),),
    account_field="realm_id",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.QuickBooksClient, client.QuickBooksDialect(), client.DEFAULT_BASE_URL),
    streams=streams.STREAMS,
    reconciles=True,
    inbound=InboundWebhook("quickbooks", "webhook_verifier_token", inbound.verify),
    capabilities=("accounting",),
    accounting=AccountingSpec(export.QuickBooksSide, export.VENDOR_FIELDS, customer_fields=export.CUSTOMER_FIELDS),
    emulator="emulators.quickbooks",
    pages=("overview", "connection", "mapping", "preferences", "sync", "history", "conflicts", "export-preview"),
)
