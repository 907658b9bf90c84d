"""Provider API clients as a Dagster resource: the one way assets open a client.

Built on hub.providers.connect.open_client (which client, base URL, auth, credentials and
rate budget go together stays there). Going through a resource gives tests a seam: a
subclass overriding `client` hands assets a fake client, with no HTTP server and no stored
credentials (tests/test_dagster.py shows it).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from hub.providers.connect import open_client
from hub.providers.transport import RetrySettings
from resources.database import HubDatabase
from resources.secrets import SecretStore

# The runs' retries: the transport's defaults, and giving up on an account for five minutes
# (the rest of a usual run) once one request used up its retries on a transient problem
# (hub/providers/transport.py): in a provider outage a sync run fails after one step's retries
# (~8 s, 6 calls) instead of every step's (~26 s, 24 calls for QuickBooks or Xero), and its run
# slot goes to the next integration sooner.
RUN_RETRY = RetrySettings(give_up_for_s=300.0)


class ProviderClients(dg.ConfigurableResource):
    """Opens the API client of a stored integration.

    Given the `hub_db` and `secrets` resources (nested: Dagster resources take no defaults
    for these), so the integration is read from the same database with the same keys as the
    assets' own queries: `ProviderClients(hub_db=hub_db, secrets=secrets)`.
    """

    hub_db: HubDatabase
    secrets: SecretStore

    def client(self, integration_id: int, retry: RetrySettings | None = None) -> Any:
        """An open client of the integration; the caller closes it (`client.transport.close()`).
        `retry`: instead of RUN_RETRY."""
        return open_client(self.hub_db.get_engine(), self.secrets.keyring(), integration_id, retry=retry or RUN_RETRY)

    @contextmanager
    def open(self, integration_id: int, retry: RetrySettings | None = None) -> Iterator[Any]:
        """The integration's client for the block; its transport is closed however the block ends."""
        client = self.client(integration_id, retry=retry)
        try:
            yield client
        finally:
            client.transport.close()
