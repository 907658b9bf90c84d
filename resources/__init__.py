"""Dagster resources: thin ConfigurableResource wrappers over `hub/`."""

from resources.database import HubDatabase
from resources.provider_clients import ProviderClients
from resources.secrets import SecretStore

__all__ = ["HubDatabase", "ProviderClients", "SecretStore"]
