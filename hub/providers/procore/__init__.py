"""Procore (project management).

What the hub does with it:
- pulls RFIs, submittals and daily logs of the projects linked to the integration
  (streams.py; assets procore/rfis, procore/submittals, procore/daily_logs; linking in
  hub/sync/procore_link.py, reading and writing in hub/sync/project_records.py), announcing RFI and
  submittal changes to the outbox (hub/sync/procore_events.py);
- shares documents to linked projects (hub/sync/procore_documents.py, asset
  procore/export_documents);
- receives its webhooks (scheme `procore`: a static token in a header, checked by
  hub/inbound/verify.py's shared verifier).

Here: client.py (REST v1.0 over the shared transport), streams.py (mappings). Emulator:
emulators/procore.py. Tests: tests/providers/test_procore_client.py,
tests/emulators/test_procore_emulator.py, tests/test_procore_sync.py,
tests/test_procore_events.py.
"""

from hub.inbound.verify import verify_static_credential
from hub.providers.procore import client, oauth, streams
from hub.providers.spec import AuthSpec, ClientFactory, FieldSpec, InboundWebhook, OAuthConnect, ProviderSpec

SPEC = ProviderSpec(
    name="procore",
    display_name="Procore",
    category="project_management",
    auth=AuthSpec("oauth_refresh", authorize_url="https://login.procore.com/oauth/authorize",
                  token_url=client.DEFAULT_TOKEN_URL,
                  connect=OAuthConnect("company_id", "company", oauth.accounts, oauth.revoke, client_auth="form",
                                       revoke_url=oauth.REVOKE_URL)),
    credentials=(
        FieldSpec("client_id", "Client ID"),
        FieldSpec("client_secret", "Client secret", secret=True),
        FieldSpec("refresh_token", "Refresh token", secret=True, help="from the user's grant; rotated on each refresh"),
        FieldSpec("webhook_token", "Webhook token", secret=True, required=False,
                  help="the static token Procore sends in a header of each webhook"),
    ),
    config=(FieldSpec("company_id", "Company ID"),),
    account_field="company_id",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.ProcoreClient, client.ProcoreDialect(), client.DEFAULT_BASE_URL),
    streams=streams.STREAMS,
    inbound=InboundWebhook("procore", "webhook_token", verify_static_credential, static_header=True),
    capabilities=("project",),
    emulator="emulators.procore",
    pages=("overview", "connection", "projects", "records", "documents"),
)
