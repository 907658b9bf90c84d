"""Xero Accounting API client (paths under /api.xro/2.0/, `xero-tenant-id` on every call).

Wire facts (shared/reference/providers.md section 2): `page`/`pageSize` paging with a
`pagination` object (an empty page ends it), `If-Modified-Since` for incremental reads,
`/Date(ms+0000)/` dates, `ValidationException` bodies, per-item results with
`summarizeErrors=false`, and limits of 60/minute, 5000/day and 5 concurrent per tenant
reported in `X-MinLimit-Remaining` / `X-DayLimit-Remaining`, with `X-Rate-Limit-Problem`
and `Retry-After` on a 429.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx

from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    TransientProblem,
)
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, json_body, or_default, retry_after_seconds

NAME = "xero"
DEFAULT_BASE_URL = "https://api.xero.com"
DEFAULT_TOKEN_URL = "https://identity.xero.com/connect/token"
LIMITS = (Limit(60, 60, "minute"), Limit(5000, 86400, "day"))
PAGE_SIZE = 100
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def parse_date(value: str | None) -> datetime | None:
    """`/Date(1439434356790+0000)/` (milliseconds since the epoch, UTC) to a datetime."""
    if not value:
        return None
    match = _MS_DATE.fullmatch(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc) if "T" in value else None


def validation_messages(item: dict[str, Any]) -> list[str]:
    return [e.get("Message", "") for e in item.get("ValidationErrors", []) or []]


class XeroDialect:
    name = NAME

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if status < 400:
            return None
        if status == 429:
            problem = response.headers.get("x-rate-limit-problem", "minute")
            retry_after = or_default(retry_after_seconds(response.headers.get("retry-after")), 60.0)
            if problem == "day":
                return QuotaExhausted(NAME, "the daily limit of 5000 calls is used up", status=429, code="day", retry_after=retry_after)
            return RateLimited(NAME, f"{problem} rate limit reached", status=429, code=problem, retry_after=retry_after)
        if status >= 500:
            return TransientProblem(NAME, "Xero is unavailable", status=status)
        if status == 401:
            return NeedsReauthentication(NAME, "authentication unsuccessful; reconnect Xero", status=401)
        if status == 403:
            return ConfigurationProblem(NAME, "this organisation (xero-tenant-id) is not connected to the app", status=403)
        if status == 404:
            return RecordNotFound(NAME, "not found", status=404)
        body = _json(response)
        messages = [m for element in body.get("Elements", []) for m in validation_messages(element)]
        return RecordProblem(NAME, "; ".join(messages) or body.get("Message", "request refused"), status=status,
                             code=body.get("Type") or str(body.get("ErrorNumber", "")) or None)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Remaining calls; at zero, hold further calls for the window. On a 429 the
        Retry-After header is the better answer and the transport uses that instead."""
        for header, name, window in (("x-minlimit-remaining", "minute", 60.0), ("x-daylimit-remaining", "day", 86400.0)):
            value = response.headers.get(header)
            if value is not None and value.isdigit():
                budget.report_remaining(name, int(value))
                if int(value) == 0 and response.status_code != 429:
                    budget.block_for(window, name)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class XeroClient:
    def __init__(self, transport: Transport, tenant_id: str):
        self.transport, self.tenant_id = transport, tenant_id
        transport.headers.setdefault("xero-tenant-id", tenant_id)

    def _get(self, resource: str, params: dict[str, Any] | None = None, modified_since: datetime | None = None) -> dict[str, Any]:
        headers = {}
        if modified_since is not None:
            headers["If-Modified-Since"] = modified_since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return json_body(self.transport.request("GET", f"/api.xro/2.0/{resource}", params=params or {}, headers=headers))

    def check(self) -> dict[str, Any]:
        organisation = self._get("Organisation")["Organisations"][0]
        return {"organisation": organisation.get("Name"), "country": organisation.get("CountryCode"), "tenant_id": self.tenant_id}

    def iter_pages(
        self,
        resource: str,
        params: dict[str, Any] | None = None,
        modified_since: datetime | None = None,
        page_size: int = PAGE_SIZE,
        start_page: int = 1,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a paged resource (Contacts, Invoices) in Xero's default order.

        Not ordered by UpdatedDateUTC on purpose: a record edited during the pull would move
        behind the read position and shift an unread one onto an already-read page, where
        it would be missed. The default (creation) order does not move; a sync takes its
        next If-Modified-Since from when the pull started, so edits made meanwhile come
        in the next pull."""
        page = start_page
        while True:
            query = {**(params or {}), "page": page, "pageSize": page_size}
            rows = self._get(resource, query, modified_since).get(resource, [])
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            page += 1

    def accounts(self, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        """The whole chart of accounts (Xero does not page it)."""
        return self._get("Accounts", modified_since=modified_since).get("Accounts", [])

    def read(self, resource: str, ident: str) -> dict[str, Any]:
        """One record by id (`GET /Contacts/{ContactID}`); RecordNotFound if there is none."""
        return self._get(f"{resource}/{ident}")[resource][0]

    def find(self, resource: str, where: str | None = None, **params: Any) -> list[dict[str, Any]]:
        """The first page of a filtered list (look-ups, not syncs: those use iter_pages)."""
        return self._get(resource, {**params, **({"where": where} if where else {})}).get(resource, [])

    def save(
        self, resource: str, items: list[dict[str, Any]], create_only: bool = False, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        """Create (PUT) or create-or-update (POST) in one batch with per-item results:
        items that failed carry `HasValidationErrors` and `ValidationErrors`.

        `idempotency_key` (at most 128 characters) is sent as `Idempotency-Key`: Xero answers
        a repeated key with the first response instead of writing again, so a write whose
        answer was lost can be resent safely (hub/sync/write_ledger.py)."""
        if idempotency_key is not None and len(idempotency_key) > 128:
            raise ValueError("a Xero Idempotency-Key has at most 128 characters")
        response = self.transport.request(
            "PUT" if create_only else "POST",
            f"/api.xro/2.0/{resource}",
            params={"summarizeErrors": "false"},
            json={resource: items},
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else {},
        )
        return response.json().get(resource, [])


def quote(value: str) -> str:
    """A string literal for a `where` clause (double-quoted, JSON escapes)."""
    return json.dumps(str(value))
