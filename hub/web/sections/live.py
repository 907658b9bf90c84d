"""Calls to a provider from a settings page: the integration's own client (hub/providers/
connect.py, the one every job uses), one attempt with a short timeout (a person is waiting;
a retry is a click), always closed, and any failure turned into a message safe to show.

Why a failure is a message and not an error page: the page around the call (the routing
table, the delivery log) is the hub's own data and stays useful while the provider is
down or refuses the credentials; the message says which, without a token or a URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from sqlalchemy.engine import Engine

from hub.crypto import Keyring
from hub.errors import HubError
from hub.providers.connect import open_client
from hub.providers.transport import RetrySettings
from hub.redact import describe_error, redact

__all__ = ["Live", "ask", "keyring", "problem", "PAGE_RETRY"]

T = TypeVar("T")
PAGE_RETRY = RetrySettings(max_attempts=1, timeout_s=10.0, max_retry_after_s=5.0)


@dataclass(frozen=True)
class Live(Generic[T]):
    """A provider's answer, or why there is none."""

    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def keyring() -> Keyring:
    """The process's keyring (HUB_SECRET_KEYS), as the jobs and the webhook receiver read it."""
    return Keyring.from_env()


def problem(exc: BaseException) -> str:
    """A provider's or the hub's own words (written secret-free, redacted again to be sure),
    or the type and first line of anything else, redacted."""
    if isinstance(exc, HubError):
        return redact(str(exc))[:500]
    return describe_error(exc)


def ask(engine: Engine, integration_id: int, call: Callable[[Any], T]) -> Live[T]:
    """`call(client)` on the integration's client; its answer, or the problem."""
    try:
        client = open_client(engine, keyring(), integration_id, retry=PAGE_RETRY)
    except Exception as exc:  # no client: credentials missing, config invalid, key not in the keyring
        return Live(error=f"cannot reach the provider: {problem(exc)}")
    try:
        return Live(value=call(client))
    except Exception as exc:
        return Live(error=problem(exc))
    finally:
        client.transport.close()
