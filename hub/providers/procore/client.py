"""Procore REST API client (`/rest/v1.0/`, `Procore-Company-Id` on every call).

Wire facts (shared/reference/providers.md section 3): `page`/`per_page` paging with `Link`,
`Total` and `Per-Page` headers, `filters[updated_at]=a...b` for incremental reads, 3600
requests/hour per token reported in `X-Rate-Limit-Remaining` / `X-Rate-Limit-Reset`.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from typing import Any, Iterator

import httpx

from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.errors import ConfigurationProblem, ProviderError, RateLimited
from hub.providers.status_errors import Wording, classify_status
from hub.providers.transport import Transport, json_body, retry_after_seconds

NAME = "procore"
DEFAULT_BASE_URL = "https://api.procore.com"
DEFAULT_TOKEN_URL = "https://login.procore.com/oauth/token"
LIMITS = (Limit(3600, 3600, "hour"),)
PER_PAGE = 1000
MAX_PER_PAGE = 10_000  # Procore's documented maximum


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

    def iter_pages(self, path: str, params: dict[str, Any] | None = None, per_page: int = PER_PAGE,
                   start_page: int = 1) -> Iterator[list[dict[str, Any]]]:
        """Pages of a list endpoint from `start_page` on (a resumed read), following `Link: rel="next"`."""
        response = self.transport.request("GET", path, params={**(params or {}), "page": start_page, "per_page": per_page})
        while True:
            rows = json_body(response)
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

    def project(self, project_id: int | str) -> dict[str, Any]:
        """One project of the company (RecordNotFound when the id is not one)."""
        return self.transport.request("GET", f"/rest/v1.0/projects/{project_id}", params={"company_id": self.company_id}).json()

    def _changed(self, path: str, updated_since: datetime | None, until: datetime | None,
                 per_page: int = PER_PAGE, start_page: int = 1) -> Iterator[list[dict[str, Any]]]:
        """Records updated in [updated_since, until], in id order: an order that edits made
        during the pull cannot shuffle (sorting by updated_at could skip a record)."""
        params: dict[str, Any] = {"sort": "id"}
        if updated_since is not None:
            params["filters[updated_at]"] = f"{iso(updated_since)}...{iso(until or datetime.now(timezone.utc))}"
        return self.iter_pages(path, params, per_page, start_page)

    def rfis(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None,
             *, recycled: bool = False, per_page: int = PER_PAGE, start_page: int = 1):
        """Active RFIs, or with `recycled` the project's recycle bin (soft-deleted ones)."""
        path = f"/rest/v1.0/projects/{project_id}/rfis" + ("/recycle_bin" if recycled else "")
        return self._changed(path, updated_since, until, per_page, start_page)

    def submittals(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None,
                   *, recycled: bool = False, per_page: int = PER_PAGE, start_page: int = 1):
        path = f"/rest/v1.1/projects/{project_id}/submittals" + ("/recycle_bin" if recycled else "")
        return self._changed(path, updated_since, until, per_page, start_page)

    def daily_logs(self, project_id: int, log_type: str, start: date, end: date, per_page: int = PER_PAGE,
                   start_page: int = 1):
        """One type of daily log (`manpower_logs`, `notes_logs`, ...) dated start..end: the
        typed lists are paged, the umbrella `daily_logs` is not. Without dates Procore sends
        only today's logs, so the range is always given."""
        params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "sort": "id"}
        return self.iter_pages(f"/rest/v1.0/projects/{project_id}/{log_type}", params, per_page, start_page)

    def files(self, project_id: int | str) -> Iterator[list[dict[str, Any]]]:
        return self.iter_pages("/rest/v1.0/files", {"project_id": project_id})

    def upload_file(self, project_id: int | str, name: str, content: bytes, content_type: str | None) -> dict[str, Any]:
        """Create Project File (`POST /rest/v1.0/files?project_id=`, multipart `file[data]`).

        Sent once: the transport's retries would resend a POST whose first copy may have
        landed (a timeout or a dropped connection leaves the outcome unknown), so only a 429,
        which Procore answers before doing anything, is retried here. The caller looks an
        unknown outcome up (`files`) before uploading again."""
        files = {"file[data]": (name, content, content_type or "application/octet-stream")}
        params, data = {"project_id": project_id}, {"file[name]": name}
        attempts = self.transport.retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                # one send (auth, 401 refresh, rate budget, error mapping) without the retry loop;
                # after a 429 the rate budget holds the next send back for its Retry-After
                return self.transport._send_once("POST", "/rest/v1.0/files", params=params, data=data, files=files).json()
            except RateLimited:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")
