"""Xero (accounting).

What the hub does with it:
- pulls accounts, suppliers (vendors), customers (contacts with IsCustomer), bills (ACCPAY)
  and sales invoices (ACCREC), with lines, into gl_account, vendor, customer and invoice
  (streams.py; assets xero/accounts, /vendors, /customers, /invoices, /sales_invoices);
- exports vendors, customers, bills and sales invoices back (its side in export.py, run by
  hub/sync/export*.py; assets xero/*_export), every vendor (and customer) field but
  `legal_name`, which is taken from it once;
- reconciles the local rows against a full read every night (hub/sync/reconcile.py);
- receives its webhooks (scheme `xero`, verified by inbound.py with the webhook key; its
  intent-to-receive probe recognised there too).

Here: client.py (Accounting API over the shared transport, `/Date()/` parsing), streams.py
(mappings and the paged/If-Modified-Since adapter), export.py (its side of an export:
payloads, look-ups, version-checked updates; the vendor fields it syncs), inbound.py
(webhook verification and the intent-to-receive probe). Emulator: emulators/xero.py. Tests:
tests/providers/test_xero_client.py, tests/emulators/test_xero_emulator.py,
tests/test_pull_sync.py, tests/test_invoice_sync.py, tests/test_vendor_two_way.py,
tests/test_invoice_export.py, tests/test_reconcile.py.
"""

from hub.providers.spec import AccountingSpec, AuthSpec, ClientFactory, FieldSpec, InboundWebhook, OAuthConnect, ProviderSpec
from hub.providers.xero import client, export, inbound, oauth, streams

SPEC = ProviderSpec(
    name="xero",
    display_name="Xero",
    category="accounting",
    auth=AuthSpec("oauth_refresh", authorize_url="https://login.xero.com/identity/connect/authorize",
                  token_url=client.DEFAULT_TOKEN_URL,
                  scopes=("offline_access", "accounting.contacts", "accounting.transactions", "accounting.settings"),
                  connect=OAuthConnect("tenant_id", "organisation", oauth.accounts, oauth.revoke, pkce=True,
                                       revoke_url=oauth.REVOKE_URL)),
    credentials=(
        FieldSpec("client_id", "Client ID"),
        FieldSpec("client_secret", "Client secret", secret=True),
        FieldSpec("refresh_token", "Refresh token", secret=True, help="from the user's grant; rotated on each refresh"),
        FieldSpec("webhook_key", "Webhook key", secret=True, required=False,
                  help="verifies the x-xero-signature of inbound webhooks"),
    ),
    config=(FieldSpec("tenant_id", "Organisation (tenant) ID"),),
    account_field="tenant_id",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.XeroClient, client.XeroDialect(), client.DEFAULT_BASE_URL),
    streams=streams.STREAMS,
    reconciles=True,
    inbound=InboundWebhook("xero", "webhook_key", inbound.verify, handshake=inbound.handshake),
    capabilities=("accounting",),
    accounting=AccountingSpec(export.XeroSide, export.VENDOR_FIELDS, export.FIRST_CONTACT_FIELDS, customer_fields=export.VENDOR_FIELDS),
    emulator="emulators.xero",
    pages=("overview", "connection", "mapping", "preferences", "sync", "history", "conflicts", "export-preview"),
)
