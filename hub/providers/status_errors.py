"""The usual HTTP-status-to-error mapping, shared by providers whose errors carry no codes of
their own (Procore, Uber Eats, DoorDash). Each provider supplies only its wording."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    ProviderError,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    TransientProblem,
)
from hub.providers.transport import or_default, retry_after_seconds


@dataclass(frozen=True)
class Wording:
    rate_limited: str
    unavailable: str
    unauthorized: str
    forbidden: str
    not_found: str = "not found"
    default_retry_after_s: float = 5.0


def body_message(response: httpx.Response) -> str:
    """The provider's own message: `errors`, `message`, `error` or `reason` of a JSON body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        value = body.get("errors") or body.get("message") or body.get("error") or body.get("reason") or ""
        return value if isinstance(value, str) else str(value)[:200]
    return ""


def classify_status(provider: str, response: httpx.Response, wording: Wording, retry_after: float | None = None) -> ProviderError | None:
    status = response.status_code
    if status < 400:
        return None
    message = body_message(response)
    if status == 429:
        if retry_after is None:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return RateLimited(provider, wording.rate_limited, status=429, retry_after=or_default(retry_after, wording.default_retry_after_s))
    if status >= 500:
        return TransientProblem(provider, wording.unavailable, status=status)
    if status == 401:
        return NeedsReauthentication(provider, wording.unauthorized, status=401)
    if status == 403:
        return ConfigurationProblem(provider, message or wording.forbidden, status=403)
    if status == 404:
        return RecordNotFound(provider, message or wording.not_found, status=404)
    return RecordProblem(provider, message or "request refused", status=status)
