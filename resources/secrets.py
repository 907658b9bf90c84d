"""The encryption keyring as a Dagster resource.

It has no config fields on purpose: keys are read from `HUB_SECRET_KEYS` in the process
that needs them, so they never pass through Dagster run config, the UI or event logs.
"""

import dagster as dg

from hub.crypto import Keyring


class SecretStore(dg.ConfigurableResource):
    """Decrypts integration config and credentials (see hub/crypto.py)."""

    def keyring(self) -> Keyring:
        return Keyring.from_env()
