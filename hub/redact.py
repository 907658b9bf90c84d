"""Turning exceptions into messages that are safe to store and show.

Exception text is not trusted: a database error carries its SQL parameters, an HTTP error
its URL (with tokens in the query) or headers. Everything the hub writes to `sync_log`,
`integration.error_message`, logs or Dagster metadata from an exception goes through
`describe_error`. `HubError` messages are written secret-free on purpose and pass as is.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import StatementError

from hub.errors import HubError

MAX_CHARS = 500

_PATTERNS = (
    # userinfo in URLs: scheme://user:password@host
    (re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.I), r"\g<scheme>***@"),
    # credentials in query strings or form bodies
    (re.compile(r"(?P<key>(?:access_|refresh_|id_)?token|password|secret|client_secret|api_key|apikey|code|signature|sig|key)=[^&\s'\"]+", re.I), r"\g<key>=***"),
    # authorization headers
    # (a credential has a digit or symbol somewhere, which tells it from an ordinary word)
    (re.compile(r"(?P<kind>Bearer|Basic)\s+(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}", re.I), r"\g<kind> ***"),
)

_ECHOED_VALUE = re.compile(r'(:\s*)"[^"]*"$')


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe_error(exc: BaseException) -> str:
    """`Type: first line of message`, redacted and capped; never SQL parameters."""
    if isinstance(exc, HubError):
        message = str(exc)
    elif isinstance(exc, StatementError):
        # the driver's message, without SQLAlchemy's "[SQL: ...] [parameters: ...]" tail
        message = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "database statement failed"
        # PostgreSQL echoes a rejected input value at the end: `...for type integer: "<value>"`
        message = _ECHOED_VALUE.sub(r'\1"***"', message)
    else:
        lines = str(exc).strip().splitlines()
        message = lines[0] if lines else ""
    message = redact(message)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
