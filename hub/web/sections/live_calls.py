"""The Procore and delivery sections' calls to a provider while a person waits: a client with
a short retry, and errors as words safe to show (hub/redact.py: a provider's message, never a
token or a URL's secret). The keyring is hub/web/sections/live.py's."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy.engine import Engine

from hub.errors import HubError
from hub.providers.connect import open_client
from hub.providers.errors import ProviderError
from hub.providers.transport import RetrySettings
from hub.redact import describe_error, redact
from hub.web.sections.live import keyring

# a person is waiting: two quick tries at most, no long back-off
PAGE_RETRY = RetrySettings(max_attempts=2, base_delay_s=0.2, max_delay_s=0.5, max_retry_after_s=2.0, timeout_s=8.0)


@contextmanager
def page_client(engine: Engine, integration_id: int) -> Iterator[Any]:
    """The integration's provider client with PAGE_RETRY, closed after the block."""
    client = open_client(engine, keyring(), integration_id, retry=PAGE_RETRY)
    try:
        yield client
    finally:
        client.transport.close()


def say(exc: BaseException) -> str:
    """An error as a sentence for the page: the provider's own words for a ProviderError, the
    hub's message for a HubError (written secret-free), the redacted first line otherwise."""
    if isinstance(exc, ProviderError):
        return redact(f"{exc.provider}: {exc.message}" + (f" (HTTP {exc.status})" if exc.status else ""))
    if isinstance(exc, HubError):
        return redact(str(exc))
    return describe_error(exc)
