"""What can go wrong when talking to a provider, in four kinds a person can act on.

| kind | means | what to do |
|---|---|---|
| NeedsReauthentication | the provider refused our tokens or grant (401 after a refresh, invalid_grant) | reconnect the integration |
| ConfigurationProblem | wrong realm/tenant/company, app not connected, no permission (403), quota used up | fix the integration's settings or wait for the quota |
| TransientProblem | 429, 5xx, timeouts, dropped connections (retried before it is raised) | nothing: a later run retries |
| RecordProblem | the provider refused one record (validation, duplicate name, stale version, not found) | fix that record; the sync goes on |

Each error carries the provider's own code and message, never a token or secret.
"""

from __future__ import annotations

from hub.errors import HubError


class ProviderError(HubError):
    kind = "provider"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ):
        self.provider, self.status, self.code, self.detail, self.retry_after = provider, status, code, detail, retry_after
        self.message = message
        parts = [f"{provider}: {message}"]
        if code:
            parts.append(f"(code {code})")
        if status:
            parts.append(f"[HTTP {status}]")
        super().__init__(" ".join(parts))


class NeedsReauthentication(ProviderError):
    kind = "needs_reauthentication"


class ConfigurationProblem(ProviderError):
    kind = "configuration"


class QuotaExhausted(ConfigurationProblem):
    """A daily or hourly quota is used up: waiting inside a run would not help."""

    kind = "quota_exhausted"


class TransientProblem(ProviderError):
    kind = "transient"


class RateLimited(TransientProblem):
    kind = "rate_limited"


class RecordProblem(ProviderError):
    kind = "record"


class StaleVersion(RecordProblem):
    """The record changed remotely since we read it (QuickBooks SyncToken, 5010)."""

    kind = "stale_version"


class DuplicateRecord(RecordProblem):
    kind = "duplicate"


class RecordNotFound(RecordProblem):
    kind = "not_found"
