"""QuickBooks Online Accounting API v3 client (paths under /v3/company/{realmId}/).

Wire facts (shared/reference/providers.md section 1): query language with STARTPOSITION
(1-based) and MAXRESULTS (at most 1000), CDC for incremental reads (30-day look-back, at
most 1000 objects), `Fault` bodies whose `code` is a string, 429 throttling at 500
requests/minute per realm, and a 200 that may still carry a Fault.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

import httpx

from hub.providers.errors import (
    ConfigurationProblem,
    DuplicateRecord,
    NeedsReauthentication,
    ProviderError,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    StaleVersion,
    TransientProblem,
)
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, json_body, or_default, retry_after_seconds

NAME = "quickbooks"
DEFAULT_BASE_URL = "https://quickbooks.api.intuit.com"
DEFAULT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
LIMITS = (Limit(500, 60, "minute"),)
MAX_PAGE = 1000
NAME_LISTS = {"Vendor", "Customer", "Account", "Employee"}
MINOR_VERSION = "75"

# Fault codes that mean "this record", by the class that says what to do about it
_RECORD_CODES = {"5010": StaleVersion, "6240": DuplicateRecord, "610": RecordNotFound, "6140": DuplicateRecord}


class QuickBooksDialect:
    name = NAME

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if status == 429:
            return RateLimited(NAME, "throttled (500 requests/min or 10 concurrent per realm)", status=429,
                               retry_after=or_default(retry_after_seconds(response.headers.get("retry-after")), 60.0))
        if status >= 500:
            return TransientProblem(NAME, "QuickBooks is unavailable", status=status)
        if status == 401:
            return NeedsReauthentication(NAME, "authorization failed; reconnect QuickBooks", status=401)
        fault = _fault(response)
        if status < 400 and fault is None:
            return None
        if fault is None:
            return ConfigurationProblem(NAME, "request refused", status=status) if status == 403 else RecordProblem(NAME, "request failed", status=status)
        code = str(fault.get("code", ""))
        message, detail = fault.get("Message", "error"), fault.get("Detail")
        if code in _RECORD_CODES:
            return _RECORD_CODES[code](NAME, message, status=status, code=code, detail=detail)
        if code.isdigit() and int(code) < 500:  # 1-499: authentication and authorization
            return NeedsReauthentication(NAME, message, status=status, code=code, detail=detail)
        if status == 403 or code in {"6190"}:  # restricted URL, invalid company status
            return ConfigurationProblem(NAME, message, status=status, code=code, detail=detail)
        return RecordProblem(NAME, message, status=status, code=code, detail=detail)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """QuickBooks sends no limit headers; the client-side window does the counting."""


_NO_BODY = object()


def _body(response: httpx.Response) -> Any:
    """The response's JSON, parsed once: `classify` looks for a Fault in it and `_call` returns
    it (a page of 1000 bills is worth not decoding twice). `_NO_BODY` when it is not JSON."""
    body = getattr(response, "_hub_body", None)
    if body is None:
        try:
            body = json_body(response)
        except ValueError:
            body = _NO_BODY
        response._hub_body = body  # type: ignore[attr-defined]
    return body


def _fault(response: httpx.Response) -> dict[str, Any] | None:
    body = _body(response)
    if body is _NO_BODY:
        return None
    if not isinstance(body, dict) or "Fault" not in body:
        return None
    errors = body["Fault"].get("Error") or [{}]
    return errors[0]


def quote(value: str) -> str:
    """A string literal of the query language (a quote escaped with a backslash, as
    python-quickbooks' `build_where_clause` does)."""
    return "'" + str(value).replace("'", "\\'") + "'"


def _request_id(request_id: str | None) -> dict[str, str]:
    if request_id is not None and len(request_id) > 50:
        raise ValueError("a QuickBooks requestid has at most 50 characters")
    return {"requestid": request_id} if request_id else {}


def qbo_datetime(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class QuickBooksClient:
    def __init__(self, transport: Transport, realm_id: str):
        self.transport, self.realm_id = transport, realm_id
        self._prefix = f"/v3/company/{realm_id}"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        params = {"minorversion": MINOR_VERSION, **kwargs.pop("params", {})}
        response = self.transport.request(method, f"{self._prefix}{path}", params=params, **kwargs)
        body = getattr(response, "_hub_body", None)
        return response.json() if body is None or body is _NO_BODY else body

    # ---- reads -----------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Connection check: the company's own record."""
        info = self._call("GET", f"/companyinfo/{self.realm_id}")["CompanyInfo"]
        return {"company": info.get("CompanyName"), "country": info.get("Country"), "realm_id": self.realm_id}

    def query(self, statement: str) -> dict[str, Any]:
        """Run one query (POST text body, as Intuit's SDK does) and return its QueryResponse."""
        return self._call("POST", "/query", content=statement.encode(), headers={"Content-Type": "application/text"})["QueryResponse"]

    def count(self, entity: str, where: str | None = None) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {entity}" + (f" WHERE {where}" if where else "")).get("totalCount", 0))

    def iter_query(
        self, entity: str, where: str | None = None, page_size: int = MAX_PAGE, include_inactive: bool = True, start_position: int = 1
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of `entity` ordered by Id; memory stays one page whatever the total.

        Name lists (Vendor, Customer, Account) hide retired rows unless the query names
        `Active`, so a full pull asks for both: a retired vendor must reach the hub too."""
        page_size = min(page_size, MAX_PAGE)
        if include_inactive and entity in NAME_LISTS and "active" not in (where or "").lower():
            where = " AND ".join(filter(None, [where, "Active IN (true, false)"]))
        position = start_position
        while True:
            clause = f" WHERE {where}" if where else ""
            rows = self.query(f"SELECT * FROM {entity}{clause} ORDERBY Id STARTPOSITION {position} MAXRESULTS {page_size}").get(entity, [])
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            position += page_size

    def cdc(self, entities: list[str], changed_since: datetime) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """Changed objects per entity since `changed_since` (deleted ones carry status Deleted),
        and the response time to use as the next cursor."""
        body = self._call("GET", "/cdc", params={"entities": ",".join(entities), "changedSince": qbo_datetime(changed_since)})
        found: dict[str, list[dict[str, Any]]] = {entity: [] for entity in entities}
        for block in body.get("CDCResponse", [{}])[0].get("QueryResponse", []):
            for entity in entities:
                found[entity].extend(block.get(entity, []))
        return found, body.get("time")

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{entity.lower()}/{entity_id}")[entity]

    # ---- writes ----------------------------------------------------------------------
    # `request_id` is Intuit's `requestid` query parameter (at most 50 characters, unique per
    # company): QuickBooks answers a repeated id with the first response instead of writing
    # again, so a write whose answer was lost can be resent safely (hub/sync/write_ledger.py).
    def create(self, entity: str, fields: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/{entity.lower()}", json=fields, params=_request_id(request_id))[entity]

    def update(self, entity: str, fields: dict[str, Any], sparse: bool = True, request_id: str | None = None) -> dict[str, Any]:
        """Update with the caller's Id and SyncToken; a stale token raises StaleVersion."""
        if "Id" not in fields or "SyncToken" not in fields:
            raise ValueError("an update needs Id and SyncToken")
        return self._call("POST", f"/{entity.lower()}", json={**fields, "sparse": sparse}, params=_request_id(request_id))[entity]

    def delete(self, entity: str, entity_id: str, sync_token: str) -> dict[str, Any]:
        return self._call("POST", f"/{entity.lower()}", params={"operation": "delete"}, json={"Id": entity_id, "SyncToken": sync_token})

    def void(self, entity: str, entity_id: str, sync_token: str) -> dict[str, Any]:
        return self._call("POST", f"/{entity.lower()}", params={"operation": "void"}, json={"Id": entity_id, "SyncToken": sync_token})
