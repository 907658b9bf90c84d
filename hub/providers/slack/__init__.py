"""Slack (communication).

What the hub does with it:
- posts notifications to channels (hub/notify/: routes of kind `slack`, sender.py);
- receives its events (scheme `slack`, signed with the app's signing secret; verified by
  inbound.py);
- authenticates with a static bot token sent as a bearer.

Here: client.py (Web API over the shared transport), inbound.py (request verification),
setup.py (the bot token and channel checks of `hub notify check` and add-route). Emulator:
emulators/slack.py. Tests: tests/providers/test_messaging_clients.py,
tests/emulators/test_messaging_emulators.py, tests/test_notify_*.py.
"""

from hub.providers.slack import client, inbound, oauth, setup
from hub.providers.spec import AuthSpec, ClientFactory, FieldSpec, InboundWebhook, MessagingSpec, OAuthConnect, ProviderSpec

SPEC = ProviderSpec(
    name="slack",
    display_name="Slack",
    category="communication",
    auth=AuthSpec("static_bearer", authorize_url="https://slack.com/oauth/v2/authorize",
                  token_url="https://slack.com/api/oauth.v2.access", scopes=("chat:write", "channels:read", "incoming-webhook"),
                  credential_fields=("bot_token",),
                  connect=OAuthConnect("team_id", "workspace", oauth.accounts, oauth.revoke, client_auth="form",
                                       scope_separator=",", app_credentials=("signing_secret",),
                                       config_from_token=oauth.config_from_token)),
    credentials=(
        FieldSpec("bot_token", "Bot token", secret=True, help="xoxb-..."),
        FieldSpec("signing_secret", "Signing secret", secret=True, help="verifies Slack's requests"),
    ),
    config=(FieldSpec("default_channel", "Default channel"),),
    account_field="default_channel",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.SlackClient, client.SlackDialect(), client.DEFAULT_BASE_URL),
    inbound=InboundWebhook("slack", "signing_secret", inbound.verify, tolerance_s=inbound.TOLERANCE_S,
                           envelope=inbound.check_envelope, handshake=inbound.handshake),
    capabilities=("messaging",),
    messaging=MessagingSpec(setup.check_setup, 200),
    emulator="emulators.slack",
    pages=("overview", "connection", "channels", "formatting"),
)
