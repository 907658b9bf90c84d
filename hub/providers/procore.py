"""Procore REST API client (`/rest/v1.0/`, `Procore-Company-Id` on every call).

Wire facts (shared/reference/providers.md section 3): `page`/`per_page` paging with `Link`,
`Total` and `Per-Page` headers, `filters[updated_at]=a...b` for incremental reads, 3600
requests/hour per token reported in `X-Rate-Limit-Remaining` / `X-Rate-Limit-Reset`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx

from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.errors import ConfigurationProblem, ProviderError
from hub.providers.status_errors import Wording, classify_status
from hub.providers.transport import Transport, retry_after_seconds

NAME = "procore"
DEFAULT_BASE_URL = "https://api.procore.com"
DEFAULT_TOKEN_URL = "https://login.procore.com/oauth/token"
LIMITS = (Limit(3600, 3600, "hour"),)
PER_PAGE = 1000


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ProcoreDialect:
    name = NAME
    wording = Wording(
        rate_limited="hourly request limit reached",
        unavailable="Procore is unavailable",
        unauthorized="access token refused; reconnect Procore",
        forbidden="the app is not connected to this company",
        default_retry_after_s=60.0,
    )

    def classify(self, response: httpx.Response) -> ProviderError | None:
        retry_after = None
        if response.status_code == 429:  # Retry-After, else the documented reset time
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            reset = response.headers.get("x-rate-limit-reset")
            if retry_after is None and reset and reset.isdigit():
                retry_after = max(0.0, int(reset) - time.time())
        return classify_status(NAME, response, self.wording, retry_after)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        remaining, reset = response.headers.get("x-rate-limit-remaining"), response.headers.get("x-rate-limit-reset")
        if remaining is not None and remaining.isdigit():
            budget.report_remaining("hour", int(remaining))
            if int(remaining) == 0 and reset and reset.isdigit():
                budget.block_for(int(reset) - time.time(), "hour")




class ProcoreClient:
    def __init__(self, transport: Transport, company_id: str | int):
        self.transport, self.company_id = transport, str(company_id)
        transport.headers.setdefault("Procore-Company-Id", self.company_id)

    def check(self) -> dict[str, Any]:
        companies = self.transport.request("GET", "/rest/v1.0/companies").json()
        match = [c for c in companies if str(c.get("id")) == self.company_id]
        if not match:
            raise ConfigurationProblem(NAME, f"company {self.company_id} is not among the companies this login can reach")
        return {"company": match[0].get("name"), "company_id": self.company_id}

    def iter_pages(self, path: str, params: dict[str, Any] | None = None, per_page: int = PER_PAGE) -> Iterator[list[dict[str, Any]]]:
        """Pages of a list endpoint, following `Link: rel="next"`."""
        response = self.transport.request("GET", path, params={**(params or {}), "page": 1, "per_page": per_page})
        while True:
            rows = response.json()
            if rows:
                yield rows
            next_link = response.links.get("next", {}).get("url")
            if not next_link or not rows:
                return
            if not next_link.startswith(self.transport.base_url + "/"):
                # the bearer token must never follow a link to another host
                raise ConfigurationProblem(NAME, "a paging link points outside the configured API host; refusing to follow it")
            response = self.transport.request("GET", next_link)

    def projects(self) -> Iterator[list[dict[str, Any]]]:
        return self.iter_pages("/rest/v1.0/projects", {"company_id": self.company_id})

    def _changed(self, path: str, updated_since: datetime | None, until: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Records updated in [updated_since, until], in id order: an order that edits made
        during the pull cannot shuffle (sorting by updated_at could skip a record)."""
        params: dict[str, Any] = {"sort": "id"}
        if updated_since is not None:
            params["filters[updated_at]"] = f"{iso(updated_since)}...{iso(until or datetime.now(timezone.utc))}"
        return self.iter_pages(path, params)

    def rfis(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None):
        return self._changed(f"/rest/v1.0/projects/{project_id}/rfis", updated_since, until)

    def submittals(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None):
        return self._changed(f"/rest/v1.1/projects/{project_id}/submittals", updated_since, until)
