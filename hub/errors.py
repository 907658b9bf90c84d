"""Error types the hub raises on purpose.

Every `HubError` carries a message meant for a person: the CLI prints it as one line and
exits non-zero, the web app will turn it into a 4xx. Messages never include secret values.
"""


class HubError(Exception):
    """Base for errors with an actionable, secret-free message."""


class ConfigurationError(HubError):
    """The operator must change configuration (environment variable, key, URL)."""


class SecretKeyError(ConfigurationError):
    """The encryption keyring is missing, malformed or cannot decrypt a stored value."""


class ValidationError(HubError):
    """Input (CLI argument, JSON document, provider field) is invalid; nothing was written."""


class NotFoundError(HubError):
    """A named company, integration or other row does not exist."""
