"""QuickBooks Online Accounting API v3 emulator: the ground truth of every QuickBooks sync test.

It speaks the real wire protocol (`/v3/company/{realmId}/...`, `QueryResponse` and `CDCResponse`
envelopes, `Fault` bodies with string codes, OAuth at Intuit's paths), so the hub's client or
python-quickbooks can talk to it unchanged. Facts: `shared/reference/providers.md` section 1.
The framework (`emulators.core`) supplies clock, OAuth server, faults, statistics, admin API.

Generated rows are pure functions of (seed, entity, index), built only when read, so 100,000
bills cost nothing up front; memory grows only with rows written since (by the API or by a
"QuickBooks user" through `QuickBooksState.mutate` / POST `/_emulator/mutate`: op create, update,
deactivate, delete, void (Invoice), or pay {"Amount"} for an Invoice or a Bill). Deleted
transactions are remembered for CDC.

Two transaction entities, as in QuickBooks (reference 1.4): `Bill`, the payables (a vendor's
request for payment: `VendorRef`, lines of `AccountBasedExpenseLineDetail.AccountRef` or
`ItemBasedExpenseLineDetail.ItemRef`), and `Invoice`, the sales form (`CustomerRef` required,
lines of `SalesItemLineDetail` and the other sales detail types). `create_emulator(bills=)` sizes
the generated bills, `invoices=` the generated customer invoices; without `bills=` as many bills
as invoices are generated, because `invoices=` sized the generated vendor bills before `Bill`
existed and callers that set only it keep their bill volume.

Choices where the reference is UNCONFIRMED (or silent):
- Paging: MAXRESULTS defaults to 100 and is clamped to 1000; STARTPOSITION/MAXRESULTS < 1 is a
  parse error; they come in that order. Without ORDERBY rows come in ascending numeric Id.
- Inactive Vendor/Customer/Account rows are left out of a query unless its WHERE names `Active`
  (`WHERE Active IN (true, false)`); reads by Id and CDC return them.
- Comparison: `=`, `IN`, `LIKE` ignore case; digit strings (Id, DocNumber) compare as numbers,
  ISO dates chronologically; `MetaData.LastUpdatedTime` uses the exact change time (rendered to
  the second). Times are rendered at a fixed -08:00; a value without offset is read in it.
- Query errors: 400 Fault "4000" (QueryParserError) for syntax, "4001" (QueryValidationError)
  for an unknown entity (names are case-sensitive) or property.
- CDC: `changedSince` older than 30 days -> 400 Fault "6000"; rows changed at or after it count;
  past 1000 changes the 1000 oldest are returned (continue from the last LastUpdatedTime). One
  block per requested entity, `{}` if unchanged. Deleted rows: `{"Id", "status": "Deleted",
  "domain": "QBO", "MetaData": {"LastUpdatedTime"}}`. Bad entity or date -> Fault "2010".
- 401: Intuit's lower-case `{"fault": {"error": [{"message", "detail", "code": "3200"}], "type":
  "AUTHENTICATION"}}` and `WWW-Authenticate`. Unknown realm, or a token granted for another
  realm -> 403 Fault "120" (AuthorizationFault).
- 429 (rate, concurrency, injected): Fault "003001" (`message=ThrottleExceeded; errorCode=003001;
  statusCode=429`, type SystemFault) with `Retry-After` seconds until the minute window frees a
  slot (1 for concurrency). Keyed by realm; rejected calls do not count. 5xx: Fault "10000".
- Writes: an Id without SyncToken -> 2020. Sparse update replaces whole top-level fields (a sent
  `BillAddr` or `Line` replaces the old one); unknown fields are stored as sent (the SDK sends
  many). No DisplayName nor name parts -> 6080. Inactive names stay taken; Account names are
  unique too (6240). A Bill without `VendorRef`, or an Invoice without `CustomerRef` -> 2020
  (element names the missing reference); the other party's reference on it (an Invoice with
  `VendorRef`, a Bill with `CustomerRef`) or a line detail type of the other entity (an
  expense line on an Invoice, a sales line on a Bill) -> 6000 Business Validation Error;
  an unknown detail type -> 2170. Vendor, Customer and Account references are checked: unknown
  -> 2500, inactive -> 610. Items are not emulated: an `ItemRef` is stored as sent (required on
  an `ItemBasedExpenseLineDetail` line, 2020). TotalAmt is computed from the lines and Balance
  keeps what was paid. An Invoice without DocNumber is numbered 1000 + Id (QuickBooks' automatic
  invoice numbers); a Bill keeps what was sent (bill numbers are the vendor's, optional).
  Void (Invoice only; a Bill -> "500") keeps the invoice with zero amounts and PrivateNote
  "Voided"; delete (both) answers `{"<Entity>": {"status": "Deleted", "domain": "QBO", "Id"}}`;
  pay records a Payment (Invoice) or a BillPayment (Bill): Balance drops and `LinkedTxn` gains
  `{"TxnId", "TxnType"}`. Deleting a Vendor/Account, unknown paths or methods -> Fault "500";
  bad JSON -> "2010".
- Three customers are generated (for DisplayName uniqueness). CompanyInfo has Id "1" and is read
  at `/companyinfo/{realmId}` (or `/companyinfo/1`).
- OpenID discovery: Intuit serves it on developer.intuit.com; here GET
  `/.well-known/openid_configuration/` (and `openid_sandbox_configuration/`) lists this host's
  endpoints, so intuit-oauth's `AuthClient`, given that URL as its `environment`, finds the token
  endpoint. Authorize (a consent page for an app registered with redirect URIs, see
  emulators/oauth.py: the emulated user approves the one company, whose realmId comes back on
  the redirect), token and revoke (`POST /v2/oauth2/tokens/revoke`, JSON or form `{"token"}`
  with the app's Basic auth: the whole grant of that refresh or access token ends; 200 with an
  empty body, as Intuit answers, an unknown token too; a wrong client 401) are served.

Added here, not in the framework: `_Gateway` (per-realm limits around the injected latency, so a
slow response holds its slot; `realmId` added to the authorize redirect).

Idempotency (Intuit, "Request ID update for QuickBooks Online integration", 2015): a POST with
`?requestid=` that repeats an earlier one for the same realm gets the first response again
(success or Fault) and writes nothing; a repeat that arrives while the first is still being
answered waits for it. How long Intuit keeps request ids is not published: kept here for the
emulator's life. `write_delay_ms` (set on the emulator object) delays the answer to every
entity write *after* it is stored, so a client that times out leaves a write whose outcome it
does not know: the case the hub's idempotency ledger is for.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import json
import math
import random as _random
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.core import EmulatorCore
from emulators import bill_lines
from emulators.datagen import DataGen
from emulators.oauth import Consent, Grant, OAuthServer, RefreshPolicy, client_credentials
from emulators.ratelimit import ConcurrencyGate, SlidingWindow

TZ = timezone(timedelta(hours=-8))
TOKEN_PATH, AUTHORIZE_PATH, REVOKE_PATH = "/oauth2/v1/tokens/bearer", "/connect/oauth2", "/v2/oauth2/tokens/revoke"
DISCOVERY_PATHS = ("openid_configuration", "openid_sandbox_configuration")  # intuit-oauth's AuthClient reads one on start
ACCESS_TTL, REFRESH_TTL = 3600, 100 * 86400
PER_MINUTE, CONCURRENT = 500, 10
DEFAULT_RESULTS, MAX_RESULTS = 100, 1000
CDC_WINDOW, CDC_MAX = 30 * 86400, 1000
CUSTOMERS = 3
USD = {"value": "USD", "name": "United States Dollar"}
WRITABLE = ("Vendor", "Customer", "Account", "Invoice", "Bill")
NAME_LISTS = ("Vendor", "Customer", "Account")
TRANSACTIONS = ("Invoice", "Bill")
SYSTEM = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse"})
COMPUTED = {"Vendor": {"Balance"}, "Customer": {"Balance"}, "Invoice": {"TotalAmt", "Balance"}, "Bill": {"TotalAmt", "Balance"},
            "Account": {"FullyQualifiedName", "Classification", "CurrentBalance", "CurrentBalanceWithSubAccounts"}}
DEFAULTS = {"Vendor": {"Active": True, "Vendor1099": False, "CurrencyRef": USD}, "Customer": {"Active": True, "CurrencyRef": USD},
            "Account": {"Active": True, "SubAccount": False, "CurrencyRef": USD}, "Invoice": {"CurrencyRef": USD},
            "Bill": {"CurrencyRef": USD}}
_NAMES = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
_PARTY = ("DisplayName", *_NAMES, "CompanyName", "PrintOnCheckName", "Active", "Balance", "BillAddr",
          "PrimaryPhone", "Mobile", "Fax", "PrimaryEmailAddr", "WebAddr", "CurrencyRef", "Notes")
FIELDS = {e: {f.casefold() for f in ("Id", "SyncToken", "MetaData", "domain", "sparse", *fs)} for e, fs in {
    "Vendor": (*_PARTY, "AcctNum", "Vendor1099", "TaxIdentifier", "TermRef"),
    "Customer": (*_PARTY, "ShipAddr", "Taxable"),
    "Account": ("Name", "FullyQualifiedName", "SubAccount", "ParentRef", "Active", "Classification", "AccountType",
                "AccountSubType", "AcctNum", "Description", "CurrentBalance", "CurrentBalanceWithSubAccounts", "CurrencyRef"),
    "Invoice": ("DocNumber", "TxnDate", "DueDate", "ShipDate", "CustomerRef", "Line", "TotalAmt", "Balance",
                "Deposit", "CurrencyRef", "ExchangeRate", "BillEmail", "BillAddr", "ShipAddr", "EmailStatus", "PrintStatus",
                "LinkedTxn", "TxnTaxDetail", "CustomField", "PrivateNote", "CustomerMemo", "SalesTermRef"),
    "Bill": ("DocNumber", "TxnDate", "DueDate", "VendorRef", "APAccountRef", "Line", "TotalAmt", "Balance", "CurrencyRef",
             "ExchangeRate", "LinkedTxn", "TxnTaxDetail", "PrivateNote", "SalesTermRef", "DepartmentRef", "VendorAddr",
             "GlobalTaxCalculation"),
    "CompanyInfo": ("CompanyName", "LegalName", "CompanyAddr", "Country", "Email", "PrimaryPhone", "FiscalYearStartMonth",
                    "SupportedLanguages", "CompanyStartDate", "NameValue"),
}.items()}
_CHART = (("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"), ("Checking", "Bank", "Checking"),
          ("Job Materials", "Cost of Goods Sold", "SuppliesMaterialsCogs"), ("Subcontractors", "Cost of Goods Sold", "CostOfLaborCos"),
          ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"), ("Rent or Lease", "Expense", "RentOrLeaseOfBuildings"),
          ("Utilities", "Expense", "Utilities"), ("Equipment Rental", "Expense", "EquipmentRental"),
          ("Repair & Maintenance", "Expense", "RepairMaintenance"), ("Services", "Income", "ServiceFeeIncome"),
          ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"), ("Sales of Product Income", "Income", "SalesOfProductIncome"),
          # a contractor's fuller chart (bill lines prefer these where the chart is large enough; emulators/bill_lines.py)
          ("Permits & Licenses", "Expense", "TaxesPaid"), ("Fuel", "Expense", "Auto"),
          ("Small Tools & Equipment", "Expense", "SuppliesMaterials"), ("Dump & Disposal Fees", "Expense", "OtherMiscellaneousServiceCost"),
          ("Freight & Delivery", "Cost of Goods Sold", "ShippingFreightDeliveryCos"), ("Insurance", "Expense", "Insurance"),
          ("Lumber & Framing", "Cost of Goods Sold", "SuppliesMaterialsCogs"), ("Concrete & Aggregates", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
          ("Safety Supplies", "Expense", "SuppliesMaterials"), ("Electrical Materials", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
          ("Plumbing Materials", "Cost of Goods Sold", "SuppliesMaterialsCogs"))
_CLASSIFICATION = {"Bank": "Asset", "Accounts Receivable": "Asset", "Other Current Asset": "Asset", "Fixed Asset": "Asset",
                   "Other Asset": "Asset", "Accounts Payable": "Liability", "Credit Card": "Liability",
                   "Other Current Liability": "Liability", "Long Term Liability": "Liability", "Equity": "Equity",
                   "Income": "Revenue", "Other Income": "Revenue", "Expense": "Expense", "Other Expense": "Expense",
                   "Cost of Goods Sold": "Expense"}
# the line detail types of each transaction entity (python-quickbooks objects/invoice.py, bill.py)
_LINE_TYPES = {"Invoice": {"SalesItemLineDetail", "SubTotalLineDetail", "DiscountLineDetail", "DescriptionOnly", "GroupLineDetail"},
               "Bill": {"AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail"}}
_DETAIL_TYPES = _LINE_TYPES["Invoice"] | _LINE_TYPES["Bill"]
# (the party reference a transaction requires, its entity), (the reference it must not carry)
_PARTY_REFS = {"Invoice": (("CustomerRef", "Customer"), "VendorRef"), "Bill": (("VendorRef", "Vendor"), "CustomerRef")}
_PAYMENT_TYPE = {"Invoice": "Payment", "Bill": "BillPayment"}
SERVICES_ITEM = {"value": "1", "name": "Services"}  # the item QuickBooks companies start with
_STREETS = ("Main St", "Oak Ave", "Pine Rd", "Market St", "Harbor Blvd", "Mill Ln")
_CITIES = (("Austin", "TX", "78701"), ("Denver", "CO", "80202"), ("Atlanta", "GA", "30303"), ("Portland", "OR", "97201"))
_WORK = ("Materials", "Labor", "Equipment rental", "Delivery", "Consulting", "Permits")
_BASE_DATE = date(2024, 1, 1)


# ---- time and hashing ------------------------------------------------------------------------
def _stamp(epoch: float, ms: bool = False) -> str:
    return datetime.fromtimestamp(epoch, TZ).isoformat(timespec="milliseconds" if ms else "seconds")


def _epoch(text: str) -> float:
    """ISO date or datetime -> epoch seconds; without an offset it is company time. ValueError if neither."""
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text.strip()).replace("Z", "+00:00")  # '+' arrives as ' ' in URLs
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=TZ)).timestamp()


_M64 = (1 << 64) - 1


def _h(seed: int, *parts: int) -> int:
    """splitmix64 over the parts: a row's random values without storing anything for it."""
    z = seed & _M64
    for p in parts:
        z = (z + 0x9E3779B97F4A7C15 + p * 0xD1B54A32D192ED03) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
    return z


# ---- faults ----------------------------------------------------------------------------------
class QboFault(Exception):
    """An error as QuickBooks reports it; rendered as a `Fault` document."""

    def __init__(self, code: str, message: str, detail: str = "", element: str = "", status: int = 400, kind: str = "ValidationFault"):
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail, self.element, self.status, self.kind = code, message, detail or message, element, status, kind

    def body(self, now: float) -> dict:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}
        return {"Fault": {"Error": [error], "type": self.kind}, "time": _stamp(now, ms=True)}


def _missing(name: str) -> QboFault:
    return QboFault("2020", "Required Param Missing", f"Required Parameter {name} is missing in the request", name)


def _not_found(entity: str, ident: Any) -> QboFault:
    return QboFault("610", "Object Not Found", f"Object Not Found : Something you're trying to use has been made inactive. "
                    f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {ident})")


def _invalid(detail: str, element: str = "") -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property", detail, element)


def _unsupported(what: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", f"Operation {what} is not supported.")


def _bad_query(detail: str, code: str = "4000") -> QboFault:
    kind = "QueryParserError" if code == "4000" else "QueryValidationError"
    return QboFault(code, "Error parsing query" if code == "4000" else "Invalid query", f"{kind}: {detail}")


# ---- the query language ----------------------------------------------------------------------
_STR = r"'(?:[^'\\]|\\.|'')*'"
_VALUE = rf"{_STR}|-?\d+(?:\.\d+)?|true\b|false\b"
_QUERY = re.compile(r"\s*SELECT\s+(?P<what>\*|COUNT\s*\(\s*\*\s*\))\s+FROM\s+(?P<entity>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                    r"(?:\s+ORDERBY\s+(?P<order>[A-Za-z_][\w.]*)(?:\s+(?P<dir>ASC|DESC))?)?"
                    r"(?:\s+STARTPOSITION\s+(?P<start>-?\d+))?(?:\s+MAXRESULTS\s+(?P<max>-?\d+))?\s*", re.I | re.S)
_COND = re.compile(rf"(?P<field>[A-Za-z_][\w.]*)\s*(?:(?P<op><=|>=|=|<|>)\s*(?P<value>{_VALUE})"
                   rf"|IN\s*\((?P<list>\s*(?:{_VALUE})(?:\s*,\s*(?:{_VALUE}))*)\s*\)|LIKE\s*(?P<like>{_STR}))"
                   r"\s*(?P<more>\bAND\s+)?", re.I | re.S)


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[tuple[tuple[str, ...], str, Any]] = field(default_factory=list)  # (path, op, literal)
    order: tuple[tuple[str, ...], bool] | None = None  # (path, descending)
    start: int = 1
    max: int = DEFAULT_RESULTS


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'").replace("\\'", "'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return float(text) if "." in text else int(text)


def parse_query(text: str) -> Query:
    """`SELECT * | count(*) FROM Entity [WHERE f op v [AND ...]] [ORDERBY f [ASC|DESC]]
    [STARTPOSITION n] [MAXRESULTS n]`; anything else raises the 4000 Fault."""
    m = _QUERY.fullmatch(text)
    if not m:
        raise _bad_query("expected SELECT * | count(*) FROM Entity [WHERE ...] [ORDERBY f [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]")
    path = lambda name: tuple(part.casefold() for part in name.split("."))  # noqa: E731
    query = Query(m["entity"], m["what"] != "*", order=(path(m["order"]), (m["dir"] or "").upper() == "DESC") if m["order"] else None)
    where, pos, more = m["where"] or "", 0, bool(m["where"])
    while more:
        cond = _COND.match(where, pos)
        if not cond:
            raise _bad_query(f"Encountered unexpected input in WHERE: {where[pos:pos + 40]!r}")
        if cond["op"]:
            query.where.append((path(cond["field"]), cond["op"], _literal(cond["value"])))
        elif cond["list"] is not None:
            query.where.append((path(cond["field"]), "IN", [_literal(v) for v in re.findall(_VALUE, cond["list"], re.I)]))
        else:
            query.where.append((path(cond["field"]), "LIKE", _literal(cond["like"])))
        pos, more = cond.end(), bool(cond["more"])
        if more == (pos >= len(where)):
            raise _bad_query(f"Encountered unexpected input in WHERE: {where[pos:pos + 40] or 'AND at the end'!r}")
    for name in ("start", "max"):
        if m[name] is not None:
            if int(m[name]) < 1:
                raise _bad_query(f"{'STARTPOSITION' if name == 'start' else 'MAXRESULTS'} must be at least 1")
            setattr(query, name, int(m[name]) if name == "start" else min(int(m[name]), MAX_RESULTS))
    return query


class _Instant(float):
    """An exact change time (epoch seconds), compared chronologically."""


_DIGITS, _DATE_LIKE = re.compile(r"-?\d+$"), re.compile(r"\d{4}-\d{2}-\d{2}")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _norm(value: Any) -> tuple[int, Any] | None:
    """A comparable key: (0 bool | 1 number | 2 time | 3 casefolded text, value); None if absent."""
    if isinstance(value, dict) and "value" in value:  # CustomerRef = '3' compares the reference
        value = value["value"]
    if isinstance(value, _Instant):
        return (2, float(value))
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        if _DIGITS.match(value):
            return (1, int(value))
        if _DATE_LIKE.match(value):
            try:
                return (2, _epoch(value))
            except ValueError:
                pass
        return (3, value.casefold())
    return None


def _test(op: str, literal: Any) -> Callable[[Any], bool]:
    if op == "LIKE":
        pattern = re.compile("".join(".*" if c == "%" else re.escape(c) for c in literal), re.I | re.S)
        return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None
    if op == "IN":
        wanted = {_norm(x) for x in literal}
        return lambda v: _norm(v) in wanted
    want, compare = _norm(literal), _OPS[op]

    def test(v: Any) -> bool:
        key = _norm(v)
        return key is not None and want is not None and key[0] == want[0] and compare(key[1], want[1])

    return test


def _dig(row: Any, path: tuple[str, ...]) -> Any:
    for segment in path:
        if not isinstance(row, dict):
            return None
        row = next((v for k, v in row.items() if k.casefold() == segment), None)
    return row


# ---- data ------------------------------------------------------------------------------------
class _Table:
    """One entity's rows. Generated row i (1..n) is computed by `make(i)` on demand and was last
    updated `n - i + 1` seconds before the emulator was built; rows written since are in `rows`."""

    def __init__(self, n: int, make: Callable[[int], dict], born: float):
        self.n, self.make, self.born = n, make, born
        self.rows: dict[int, dict] = {}
        self.mtimes: dict[int, float] = {}
        self.deleted: dict[int, float] = {}  # id -> deletion time, for CDC
        self.next_id = n + 1

    def exists(self, i: int) -> bool:
        return 1 <= i < self.next_id and i not in self.deleted

    def ids(self) -> Iterator[int]:
        deleted = self.deleted
        return (i for i in range(1, self.next_id) if i not in deleted)

    def count(self) -> int:
        return self.next_id - 1 - len(self.deleted)

    def mtime(self, i: int) -> float:
        return self.mtimes.get(i, self.born - (self.n - i + 1))

    def get(self, i: int) -> dict:
        """The row (never mutated in place: writes replace it)."""
        row = self.rows.get(i)
        if row is not None:
            return row
        stamp = _stamp(self.mtime(i))
        return {"Id": str(i), "SyncToken": "0", "domain": "QBO", "sparse": False,
                "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}, **self.make(i)}


class QuickBooksState:
    """One company's data and every change a client or a QuickBooks user can make to it.
    Methods raise `QboFault`; all are thread-safe (one re-entrant lock)."""

    def __init__(self, clock: Any, realm_id: str, *, vendors: int, invoices: int, accounts: int, seed: int, bills: int | None = None,
                 trade: str = "construction"):
        bills = invoices if bills is None else bills  # see the module docstring
        if trade not in bill_lines.TRADES:
            raise ValueError(f"trade must be one of {bill_lines.TRADES}")
        self.trade = trade
        if min(vendors, invoices, accounts, bills) < 0:
            raise ValueError("record counts must be >= 0")
        if bills and not vendors:
            raise ValueError("generated bills need vendors to name: pass vendors > 0, or bills=0")
        self.clock, self.realm_id, self.seed = clock, realm_id, seed
        self.dg = DataGen(seed)
        self.lock = threading.RLock()
        self.payments = 0  # TxnIds of the payments recorded through `pay`
        self.writes = 0  # records written (created, updated, voided, paid, deleted): what a test proves a dry run left alone
        born = float(math.floor(clock.time()))
        self._vendors = vendors
        self.tables = {
            "Vendor": _Table(vendors, lambda i: self._gen_party("Vendor", i), born),
            "Customer": _Table(CUSTOMERS, lambda i: self._gen_party("Customer", i), born),
            "Account": _Table(accounts, self._gen_account, born),
            "Invoice": _Table(invoices, self._gen_invoice, born),
            "Bill": _Table(bills, self._gen_bill, born),
            "CompanyInfo": _Table(1, self._gen_company, born),
        }
        self.names = {self._gen_name(e, i).casefold(): (e, i) for e in ("Vendor", "Customer") for i in range(1, self.tables[e].n + 1)}
        self.account_names = {self._chart(i)[0].casefold(): ("Account", i) for i in range(1, accounts + 1)}
        self.expense_ids = [i for i in range(1, accounts + 1) if _CLASSIFICATION[self._chart(i)[1]] == "Expense"]
        self.expense_names = {self._chart(i)[0].casefold(): i for i in self.expense_ids}

    # ---- generation (pure functions of seed and index) ----
    def _gen_name(self, entity: str, i: int) -> str:
        return self.dg.company_name(i - 1 if entity == "Vendor" else self._vendors + i - 1)

    def _chart(self, i: int) -> tuple[str, str, str]:
        name, kind, sub = _CHART[(i - 1) % len(_CHART)]
        lap = (i - 1) // len(_CHART)
        return (f"{name} {lap + 1}" if lap else name), kind, sub

    def _gen_party(self, entity: str, i: int) -> dict:
        name, h = self._gen_name(entity, i), _h(self.seed, 1 if entity == "Vendor" else 2, i)
        city, region, postal = _CITIES[(h >> 8) % len(_CITIES)]
        row = {"DisplayName": name, "CompanyName": name, "PrintOnCheckName": name, "Active": True, "Balance": 0,
               "BillAddr": {"Line1": f"{1 + (h >> 40) % 9999} {_STREETS[h % len(_STREETS)]}", "City": city,
                            "CountrySubDivisionCode": region, "PostalCode": postal, "Country": "US"},
               "PrimaryPhone": {"FreeFormNumber": f"+1-555-{100 + (h >> 12) % 900}-{1000 + (h >> 32) % 9000}"},
               "PrimaryEmailAddr": {"Address": self.dg.email(name)}, "CurrencyRef": dict(USD)}
        if entity == "Vendor":
            row.update(AcctNum=f"V{i:05d}", Vendor1099=h % 5 == 0, TaxIdentifier=f"{10 + (h >> 16) % 90}-{1000000 + (h >> 24) % 9000000}")
        else:
            row["Taxable"] = False
        return row

    def _gen_account(self, i: int) -> dict:
        name, kind, sub = self._chart(i)
        return {"Name": name, "FullyQualifiedName": name, "SubAccount": False, "Active": True, "Classification": _CLASSIFICATION[kind],
                "AccountType": kind, "AccountSubType": sub, "CurrentBalance": 0, "CurrentBalanceWithSubAccounts": 0, "CurrencyRef": dict(USD)}

    def _gen_bill(self, i: int) -> dict:
        """A vendor bill: 1-3 expense lines in the vendor's own words, coded to the chart's
        expense accounts as the company's history has them (emulators/bill_lines.py; item-based
        lines on the Services item when the chart has none), 30% of them paid."""
        h = _h(self.seed, 4, i)
        ref = 1 + h % self.tables["Vendor"].n
        txn = _BASE_DATE + timedelta(days=(h >> 20) % 540)
        lines, cents = [], 0
        for k in range(1 + (h >> 34) % 3):
            lh = _h(self.seed, 5, i, k)
            made = bill_lines.bill_line(self.trade, ref, _random.Random(lh))
            cents += (amount := round(made.amount * 100))
            line: dict[str, Any] = {"Id": str(k + 1), "LineNum": k + 1, "Description": made.description, "Amount": amount / 100}
            if self.expense_ids:
                account = bill_lines.resolve_account(made, self.expense_names, self.expense_ids)
                line.update(DetailType="AccountBasedExpenseLineDetail",
                            AccountBasedExpenseLineDetail={"AccountRef": {"value": str(account), "name": self._name("Account", account)}})
            else:
                line.update(DetailType="ItemBasedExpenseLineDetail",
                            ItemBasedExpenseLineDetail={"ItemRef": dict(SERVICES_ITEM), "Qty": 1, "UnitPrice": amount / 100})
            lines.append(line)
        total = cents / 100
        return {"DocNumber": str(1000 + i), "TxnDate": txn.isoformat(),
                "DueDate": (txn + timedelta(days=(15, 30, 45, 60)[(h >> 30) % 4])).isoformat(),
                "VendorRef": {"value": str(ref), "name": self._name("Vendor", ref)}, "Line": lines,
                "TotalAmt": total, "Balance": 0 if (h >> 44) % 10 < 3 else total, "CurrencyRef": dict(USD)}

    def _gen_invoice(self, i: int) -> dict:
        """A customer (sales) invoice: 1-3 lines on the Services item, 30% of them paid."""
        h = _h(self.seed, 6, i)
        ref = 1 + h % CUSTOMERS
        txn = _BASE_DATE + timedelta(days=(h >> 20) % 540)
        lines, cents = [], 0
        for k in range(1 + (h >> 34) % 3):
            lh = _h(self.seed, 7, i, k)
            qty, unit = 1 + lh % 8, 2500 + (lh >> 8) % 40000
            cents += qty * unit
            lines.append({"Id": str(k + 1), "LineNum": k + 1, "Description": _WORK[(lh >> 40) % len(_WORK)], "Amount": qty * unit / 100,
                          "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {"ItemRef": dict(SERVICES_ITEM), "Qty": qty, "UnitPrice": unit / 100}})
        total = cents / 100
        return {"DocNumber": str(1000 + i), "TxnDate": txn.isoformat(),
                "DueDate": (txn + timedelta(days=30)).isoformat(),
                "CustomerRef": {"value": str(ref), "name": self._name("Customer", ref)}, "Line": lines,
                "TotalAmt": total, "Balance": 0 if (h >> 44) % 10 < 3 else total, "CurrencyRef": dict(USD)}

    def _gen_company(self, i: int) -> dict:
        addr = {"Line1": "2700 Coast Ave", "City": "Mountain View", "CountrySubDivisionCode": "CA", "PostalCode": "94043", "Country": "US"}
        return {"CompanyName": "Hub Demo Construction", "LegalName": "Hub Demo Construction LLC", "CompanyAddr": addr, "Country": "US",
                "Email": {"Address": "books@hubdemo.example.com"}, "FiscalYearStartMonth": "January", "SupportedLanguages": "en",
                "CompanyStartDate": "2020-01-01", "NameValue": [{"Name": "IndustryType", "Value": "Construction"}]}

    def _name(self, entity: str, i: int) -> str:
        row = self.tables[entity].rows.get(i)
        if row is not None:
            return row.get("DisplayName") or row.get("Name") or ""
        return self._chart(i)[0] if entity == "Account" else self._gen_name(entity, i)

    # ---- reads ----
    def _table(self, entity: str) -> _Table:
        if entity not in self.tables:
            raise _unsupported(f"on entity {entity}")
        return self.tables[entity]

    def _existing(self, entity: str, ident: Any) -> tuple[int, dict]:
        table, text = self._table(entity), str(ident).strip()
        if not text.isdigit() or not table.exists(int(text)):
            raise _not_found(entity, ident)
        return int(text), table.get(int(text))

    def read(self, entity: str, ident: Any) -> dict:
        with self.lock:
            return self._existing(entity, ident)[1]

    def count(self, entity: str) -> int:
        """Live rows, active or not."""
        return self._table(entity).count()

    def query(self, text: str) -> dict:
        """The `QueryResponse` object for one SELECT."""
        q = parse_query(text)
        if q.entity not in FIELDS:
            raise _bad_query(f"Entity {q.entity!r} is not queryable (names are case-sensitive)", "4001")
        for path in [p for p, _, _ in q.where] + ([q.order[0]] if q.order else []):
            if path[0] not in FIELDS[q.entity]:
                raise _bad_query(f"property '{'.'.join(path)}' is not queryable", "4001")
        conds = [(path, _test(op, lit)) for path, op, lit in q.where]
        if q.entity in NAME_LISTS and not any(path[0] == "active" for path, _, _ in q.where):
            conds.append((("active",), lambda v: v is not False))
        with self.lock:
            table = self.tables[q.entity]
            by_id = not q.order or q.order[0] == ("id",)  # ids come in Id order already
            if not conds and by_id and not q.count and not (q.order and q.order[1]) and not table.deleted:
                # a plain page in Id order with nothing deleted: ids are 1..next_id-1, so the page is a range
                # (a full pull's every page; listing every id first made the emulator's cost grow with the table)
                page = [table.get(i) for i in range(q.start, min(q.start + q.max, table.next_id))]
                return {q.entity: page, "startPosition": q.start, "maxResults": len(page)} if page else {}
            ids = self._select(q.entity, table, conds, None if q.count or by_id else q.order[0])
            if q.count:
                return {"totalCount": len(ids)}
            if not by_id:
                ids = [i for _, i in sorted(ids, key=lambda pair: pair[0], reverse=q.order[1])]
            elif q.order and q.order[1]:
                ids.reverse()
            page = [table.get(i) for i in ids[q.start - 1: q.start - 1 + q.max]]
        return {q.entity: page, "startPosition": q.start, "maxResults": len(page)} if page else {}

    def _value(self, entity: str, table: _Table, i: int, path: tuple[str, ...], cache: list) -> Any:
        """A field of row i; ids, change times and generated Active flags without building the row."""
        if path == ("id",):
            return str(i)
        if path == ("metadata", "lastupdatedtime"):
            return _Instant(table.mtime(i))
        if i not in table.rows:
            if path == ("metadata", "createtime"):
                return _Instant(table.mtime(i))
            if path == ("active",) and entity in NAME_LISTS:
                return True
        if not cache:
            cache.append(table.get(i))
        return _dig(cache[0], path)

    def _select(self, entity: str, table: _Table, conds: list, order: tuple[str, ...] | None) -> list:
        """Matching ids in Id order; (sort key, id) pairs when ordering (each row built at most once)."""
        if not conds and not order:
            return list(table.ids())
        out: list = []
        for i in table.ids():
            cache: list = []
            if all(test(self._value(entity, table, i, path, cache)) for path, test in conds):
                out.append((_norm(self._value(entity, table, i, order, cache)) or (9, 0), i) if order else i)
        return out

    def cdc(self, entities: list[str], since: float) -> list[tuple[str, list[dict]]]:
        """Rows of `entities` changed (or transactions deleted) at or after `since`, the oldest
        CDC_MAX of them in total, grouped per entity in the order asked."""
        if since < self.clock.time() - CDC_WINDOW:
            raise QboFault("6000", "Business Validation Error", "changedSince must be within the last 30 days", "changedSince")
        with self.lock:
            changes = []
            for order, entity in enumerate(entities):
                table = self._table(entity)
                changes += [(m, order, i) for i in table.ids() if (m := table.mtime(i)) >= since]
                changes += [(m, order, -i) for i, m in table.deleted.items() if m >= since]
            blocks: dict[str, list[dict]] = {e: [] for e in entities}
            for m, order, i in heapq.nsmallest(CDC_MAX, changes):
                entity = entities[order]
                blocks[entity].append(self.tables[entity].get(i) if i > 0 else
                                      {"Id": str(-i), "status": "Deleted", "domain": "QBO", "MetaData": {"LastUpdatedTime": _stamp(m)}})
        return [(e, blocks[e]) for e in entities]

    # ---- writes ----
    def _writable(self, entity: str) -> _Table:
        if entity not in WRITABLE:
            raise _unsupported(f"write on {entity}")
        return self.tables[entity]

    def create(self, entity: str, fields: dict) -> dict:
        table = self._writable(entity)
        with self.lock:
            row = copy.deepcopy({**DEFAULTS[entity], **{k: v for k, v in fields.items() if k not in SYSTEM | COMPUTED[entity]}})
            row = self._finish(entity, table.next_id, row, None)
            table.next_id += 1
            return self._store(entity, table.next_id - 1, row, None)

    def update(self, entity: str, ident: Any, fields: dict, *, sparse: bool = True, sync_token: Any = None) -> dict:
        """Sparse (merge top-level fields) or full (omitted writable fields cleared) update;
        `sync_token` is checked when given (API calls), not for a user's own edit."""
        self._writable(entity)
        with self.lock:
            i, old = self._existing(entity, ident)
            self._check_token(old, sync_token)
            base = {k: v for k, v in old.items() if k not in SYSTEM} if sparse else DEFAULTS[entity]
            row = copy.deepcopy({**base, **{k: v for k, v in fields.items() if k not in SYSTEM | COMPUTED[entity]}})
            return self._store(entity, i, self._finish(entity, i, row, old), old)

    def deactivate(self, entity: str, ident: Any) -> dict:
        if entity not in NAME_LISTS:
            raise _unsupported(f"deactivate on {entity}")
        return self.update(entity, ident, {"Active": False})

    def delete(self, entity: str, ident: Any, sync_token: Any = None) -> dict:
        """Invoices and bills only (name lists are retired with Active=false); remembered for CDC."""
        with self.lock:
            i, old = self._transaction("delete", entity, ident, sync_token)
            table = self.tables[entity]
            table.deleted[i] = round(self.clock.time(), 3)
            self.writes += 1
            table.rows.pop(i, None), table.mtimes.pop(i, None)
            return {"status": "Deleted", "domain": "QBO", "Id": str(i)}

    def void(self, entity: str, ident: Any, sync_token: Any = None) -> dict:
        """The invoice stays, with zero amounts and balance."""
        with self.lock:
            i, old = self._transaction("void", entity, ident, sync_token)
            row = copy.deepcopy({k: v for k, v in old.items() if k not in SYSTEM})
            for line in row.get("Line", []):
                line["Amount"] = 0
            row.update(TotalAmt=0, Balance=0, PrivateNote="Voided")
            return self._store(entity, i, row, old)

    def pay(self, entity: str, ident: Any, amount: Any = None) -> dict:
        """A payment a QuickBooks user records against an invoice (a Payment) or a bill (a
        BillPayment), all that is open by default: Balance drops and the transaction links the
        payment in `LinkedTxn`, as QuickBooks shows it; the payment itself is not kept (the hub
        never reads payments)."""
        with self.lock:
            i, old = self._transaction("pay", entity, ident, None)
            amount = old["Balance"] if amount is None else round(float(amount), 2)
            if not 0 < amount <= old["Balance"]:
                raise QboFault("6000", "Business Validation Error", "The payment must be positive and at most the open balance")
            self.payments += 1
            row = copy.deepcopy({k: v for k, v in old.items() if k not in SYSTEM})
            row.update(Balance=round(old["Balance"] - amount, 2),
                       LinkedTxn=[*row.get("LinkedTxn", []), {"TxnId": str(self.payments), "TxnType": _PAYMENT_TYPE[entity]}])
            return self._store(entity, i, row, old)

    def _transaction(self, op: str, entity: str, ident: Any, sync_token: Any) -> tuple[int, dict]:
        if entity not in TRANSACTIONS or (op == "void" and entity != "Invoice"):  # python-quickbooks: Bill has no VoidMixin
            raise _unsupported(f"{op} on {entity}")
        i, old = self._existing(entity, ident)
        self._check_token(old, sync_token)
        return i, old

    def mutate(self, op: str, entity: str, ident: Any = None, fields: dict | None = None) -> dict:
        """A change as a QuickBooks user makes it in the UI (no SyncToken needed)."""
        if op == "create":
            return self.create(entity, fields or {})
        if op == "update":
            return self.update(entity, ident, fields or {})
        if op in ("deactivate", "delete", "void"):
            return getattr(self, op)(entity, ident)
        if op == "pay":
            return self.pay(entity, ident, (fields or {}).get("Amount"))
        raise _unsupported(f"mutation {op!r}")

    @staticmethod
    def _check_token(old: dict, token: Any) -> None:
        if token is not None and str(token) != old["SyncToken"]:
            raise QboFault("5010", "Stale Object Error", "Stale Object Error : You and another user were working on this at the "
                           "same time. The object has been changed since you read it; refresh and try again.", "SyncToken")

    def _store(self, entity: str, i: int, row: dict, old: dict | None) -> dict:
        now = round(self.clock.time(), 3)
        meta = {"CreateTime": old["MetaData"]["CreateTime"] if old else _stamp(now), "LastUpdatedTime": _stamp(now)}
        row = {"Id": str(i), "SyncToken": str(int(old["SyncToken"]) + 1 if old else 0), "domain": "QBO", "sparse": False, "MetaData": meta, **row}
        table = self.tables[entity]
        table.rows[i], table.mtimes[i] = row, now
        self.writes += 1
        index, key = (self.account_names, "Name") if entity == "Account" else (self.names, "DisplayName")
        if entity in NAME_LISTS:
            if old and index.get(old[key].strip().casefold()) == (entity, i):
                del index[old[key].strip().casefold()]
            index[row[key].strip().casefold()] = (entity, i)
        return row

    def _finish(self, entity: str, i: int, row: dict, old: dict | None) -> dict:
        """Validate a row about to be written and fill its derived fields."""
        if entity in ("Vendor", "Customer"):
            name = str(row.get("DisplayName") or "").strip() or " ".join(str(row[k]).strip() for k in _NAMES if row.get(k))
            if not name:
                raise QboFault("6080", "No Name Provided", "A DisplayName or one of Title, GivenName, MiddleName, FamilyName, Suffix is required", "DisplayName")
            self._unique(self.names, name, entity, i, "Another customer, vendor or employee is already using this name.")
            row.update(DisplayName=name, Balance=old.get("Balance", 0) if old else 0)
            row.setdefault("PrintOnCheckName", name)
        elif entity == "Account":
            name, kind = str(row.get("Name") or "").strip(), row.get("AccountType")
            if not name or not kind:
                raise _missing("Name" if not name else "AccountType")
            if kind not in _CLASSIFICATION:
                raise QboFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", "AccountType")
            self._unique(self.account_names, name, entity, i, "Another account is already using this name.")
            balance = old.get("CurrentBalance", 0) if old else 0
            row.update(Name=name, FullyQualifiedName=name, Classification=_CLASSIFICATION[kind], CurrentBalance=balance,
                       CurrentBalanceWithSubAccounts=balance, AccountSubType=row.get("AccountSubType") or kind.replace(" ", ""))
        elif entity in TRANSACTIONS:
            (key, target), foreign = _PARTY_REFS[entity]
            if not row.get(key):
                raise _missing(key)
            if row.get(foreign):
                raise QboFault("6000", "Business Validation Error", f"{entity} names its party in {key}, not {foreign}: "
                               + ("vendor bills are the Bill entity" if entity == "Invoice" else "sales to customers are the Invoice entity"), foreign)
            row[key] = self._ref(target, row[key])
            lines = row.get("Line")
            if not isinstance(lines, list) or not lines:
                raise _missing("Line")
            total = 0.0
            for n, line in enumerate(lines, 1):
                amount, kind = (line.get("Amount"), line.get("DetailType")) if isinstance(line, dict) else (None, None)
                if not isinstance(amount, (int, float)) or isinstance(amount, bool):
                    raise _missing("Line.Amount")
                if kind not in _DETAIL_TYPES:
                    raise QboFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", "Line.DetailType")
                if kind not in _LINE_TYPES[entity]:
                    raise QboFault("6000", "Business Validation Error", f"Line {n}: {kind} is not a line type of {entity}", "Line.DetailType")
                detail = line.get(kind) if isinstance(line.get(kind), dict) else {}
                if kind == "AccountBasedExpenseLineDetail":
                    if not detail.get("AccountRef"):
                        raise _missing("AccountRef")
                    line[kind] = {**detail, "AccountRef": self._ref("Account", detail["AccountRef"])}
                elif kind == "ItemBasedExpenseLineDetail" and not detail.get("ItemRef"):
                    raise _missing("ItemRef")
                line.setdefault("Id", str(n))
                line["LineNum"] = n
                total += amount if kind != "SubTotalLineDetail" else 0
            paid = (old["TotalAmt"] - old["Balance"]) if old else 0
            row.update(TotalAmt=round(total, 2), Balance=round(max(0.0, total - paid), 2))
            if entity == "Invoice":
                row["DocNumber"] = row.get("DocNumber") or str(1000 + i)
            try:
                txn = date.fromisoformat(row.get("TxnDate") or datetime.fromtimestamp(self.clock.time(), TZ).date().isoformat())
                row.update(TxnDate=txn.isoformat(), DueDate=date.fromisoformat(row.get("DueDate") or str(txn + timedelta(days=30))).isoformat())
            except (TypeError, ValueError):
                raise _invalid("TxnDate and DueDate are YYYY-MM-DD") from None
        return row

    @staticmethod
    def _unique(index: dict, name: str, entity: str, i: int, why: str) -> None:
        owner = index.get(name.casefold())
        if owner is not None and owner != (entity, i):
            raise QboFault("6240", "Duplicate Name Exists Error", f"The name supplied already exists. : {why}")

    def _ref(self, entity: str, ref: Any) -> dict:
        value = str(ref.get("value", "")) if isinstance(ref, dict) else str(ref)
        if not value.isdigit() or not self.tables[entity].exists(int(value)):
            raise QboFault("2500", "Invalid Reference Id", f"Invalid Reference Id : {entity} {value!r} does not exist")
        row = self.tables[entity].get(int(value))
        if row.get("Active") is False:
            raise _not_found(entity, value)
        return {"value": value, "name": row.get("DisplayName") or row.get("Name")}


# ---- HTTP ------------------------------------------------------------------------------------
_ENTITY_PATHS = {e.lower(): e for e in WRITABLE}
_CDC_ENTITIES = {e.lower(): e for e in (*WRITABLE, "CompanyInfo")}


class QuickBooksEmulator:
    """The ASGI app (`.app`), its framework core (`.core`) and data (`.state`)."""

    def __init__(self, core: EmulatorCore, state: QuickBooksState):
        self.core, self.state, self.realm_id = core, state, state.realm_id
        self.minute_window = SlidingWindow(core.clock, PER_MINUTE, 60, "requests per minute per realm")
        self.concurrency = ConcurrencyGate(CONCURRENT)
        self.write_delay_ms = 0
        self._replies: dict[tuple[str, str], Any] = {}  # (realm, requestid) -> first response, or a future while it is made
        inner = core.build_app(
            api_routes=[Route("/v3/{rest:path}", self._api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
                        *(Route(f"/.well-known/{name}/", self._discovery) for name in DISCOVERY_PATHS),
                        Route(REVOKE_PATH, self._revoke, methods=["POST"])],
            oauth_token_path=TOKEN_PATH, oauth_authorize_path=AUTHORIZE_PATH,
            is_api_path=lambda path: path.startswith("/v3/"),
            unauthorized_response=self._unauthorized, throttle_response=self.throttle_response, error_response=self.error_response,
            admin_routes=[Route("/_emulator/mutate", self._mutate, methods=["POST"]), Route("/_emulator/info", self._info)],
        )
        self.app: ASGIApp = _Gateway(inner, self)
        core.oauth.consent = Consent("QuickBooks Online", "company", self._companies, subject_key="realmId", redirect_param="realmId")

    def _companies(self) -> list[tuple[str, str]]:
        return [(self.realm_id, str(self.state.read("CompanyInfo", 1).get("CompanyName") or self.realm_id))]

    async def _revoke(self, request: Request) -> Response:
        """Intuit's revoke endpoint: `{"token": <refresh or access token>}` as JSON (or a form)."""
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}") if "json" in request.headers.get("content-type", "") else dict(await request.form())
        except ValueError:
            body = None
        client_id, secret = client_credentials(request, body if isinstance(body, dict) else {})
        if client_id not in self.core.oauth.clients or self.core.oauth.clients[client_id] != (secret or ""):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if not isinstance(body, dict) or not body.get("token"):
            return JSONResponse({"error": "invalid_request", "error_description": "token is required"}, status_code=400)
        self.core.oauth.revoke_grant(str(body["token"]))
        return Response(status_code=200)

    # ---- provider-shaped responses ----
    def _ok(self, payload: dict) -> Response:
        return JSONResponse({**payload, "time": _stamp(self.core.clock.time(), ms=True)})

    def _fault(self, fault: QboFault, headers: dict | None = None) -> Response:
        return JSONResponse(fault.body(self.core.clock.time()), status_code=fault.status, headers=headers)

    def _unauthorized(self, reason: str) -> Response:
        error = {"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401", "detail": f"Authentication failed: {reason}", "code": "3200"}
        return JSONResponse({"fault": {"error": [error], "type": "AUTHENTICATION"}, "time": _stamp(self.core.clock.time(), ms=True)},
                            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})

    def throttle_response(self, retry_after: str) -> Response:
        fault = QboFault("003001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                         "ThrottleExceeded: too many requests for this company; retry later", status=429, kind="SystemFault")
        return self._fault(fault, {"Retry-After": retry_after})

    def error_response(self, status: int) -> Response:
        fault = QboFault("10000", "An application error has occurred while processing your request",
                         f"System Failure Error: HTTP {status}", status=status, kind="SystemFault")
        return self._fault(fault)

    # ---- API ----
    async def _api(self, request: Request) -> Response:
        grant = self.core.oauth.authenticate(request)  # Unauthorized -> the framework renders _unauthorized
        request_id = request.query_params.get("requestid") if request.method == "POST" else None
        if not request_id:
            response = await self._answer(request, grant)
        else:
            slot = (request.path_params["rest"].split("/")[1:2] or [""])[0], request_id
            first = self._replies.get(slot)
            if first is None:  # the first request with this id: answer it, remember the answer
                self._replies[slot] = future = asyncio.get_running_loop().create_future()
                try:
                    response = await self._answer(request, grant)
                except BaseException:
                    del self._replies[slot]  # no answer was given: the id stays unused
                    future.cancel()
                    raise
                first = self._replies[slot] = (response.status_code, bytes(response.body))
                future.set_result(first)
            elif isinstance(first, asyncio.Future):
                first = await first
            response = Response(first[1], status_code=first[0], media_type="application/json")
        parts = request.path_params["rest"].split("/")
        if self.write_delay_ms and request.method == "POST" and len(parts) == 3 and parts[2].lower() in _ENTITY_PATHS:
            await asyncio.sleep(self.write_delay_ms / 1000)
        return response

    async def _answer(self, request: Request, grant: Grant) -> Response:
        try:
            return await self._route(request, grant)
        except QboFault as fault:
            return self._fault(fault)

    async def _route(self, request: Request, grant: Grant) -> Response:
        parts = [p for p in request.path_params["rest"].split("/") if p]
        method, params, state = request.method, request.query_params, self.state
        if len(parts) < 3 or parts[0] != "company":
            raise _unsupported(f"{method} {request.url.path}")
        realm, resource, rest = parts[1], parts[2].lower(), parts[3:]
        if realm != self.realm_id or str(grant.subject.get("realmId", realm)) != realm:
            raise QboFault("120", "Authorization Failure", f"The token is not authorized for company {realm}", status=403, kind="AuthorizationFault")
        if resource == "query" and not rest and method in ("GET", "POST"):
            text = params.get("query") or ""
            if method == "POST":
                text = (await request.body()).decode("utf-8", "replace") or text
            if not text.strip():
                raise _bad_query("the query is empty")
            return self._ok({"QueryResponse": state.query(text)})
        if resource == "cdc" and not rest and method == "GET":
            return self._ok(self._cdc(params.get("entities") or "", params.get("changedSince") or ""))
        if resource == "companyinfo" and len(rest) == 1 and method == "GET":
            if rest[0] not in (realm, "1"):
                raise _not_found("CompanyInfo", rest[0])
            return self._ok({"CompanyInfo": state.read("CompanyInfo", 1)})
        entity = _ENTITY_PATHS.get(resource)
        if entity and len(rest) == 1 and method == "GET":
            return self._ok({entity: state.read(entity, rest[0])})
        if entity and not rest and method == "POST":
            body = await self._body(request, entity)
            operation = (params.get("operation") or "update").lower()
            if operation in ("delete", "void"):
                for name in ("Id", "SyncToken"):
                    if body.get(name) in (None, ""):
                        raise _missing(name)
                return self._ok({entity: getattr(state, operation)(entity, body["Id"], body["SyncToken"])})
            if operation not in ("update", "create"):
                raise _unsupported(f"{operation} on {entity}")
            if body.get("Id") in (None, ""):
                return self._ok({entity: state.create(entity, body)})
            if body.get("SyncToken") in (None, ""):
                raise _missing("SyncToken")
            sparse = body.get("sparse") in (True, "true")
            return self._ok({entity: state.update(entity, body["Id"], body, sparse=sparse, sync_token=body["SyncToken"])})
        raise _unsupported(f"{method} {request.url.path}")

    @staticmethod
    async def _body(request: Request, entity: str) -> dict:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if isinstance(body, dict) and len(body) == 1 and isinstance(body.get(entity), dict):
            body = body[entity]  # accept {"Vendor": {...}} as well as the bare object the SDK sends
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object")
        return body

    def _cdc(self, entities: str, changed_since: str) -> dict:
        names = list(dict.fromkeys(e.strip() for e in entities.split(",") if e.strip()))
        for value, name in ((names, "entities"), (changed_since, "changedSince")):
            if not value:
                raise _missing(name)
        if unknown := [n for n in names if n.lower() not in _CDC_ENTITIES]:
            raise _invalid(f"Unsupported CDC entity: {', '.join(unknown)}", "entities")
        try:
            since = _epoch(changed_since)
        except ValueError:
            raise _invalid(f"Invalid changedSince: {changed_since}", "changedSince") from None
        blocks = self.state.cdc([_CDC_ENTITIES[n.lower()] for n in names], since)
        response = [{e: rows, "startPosition": 1, "maxResults": len(rows)} if rows else {} for e, rows in blocks]
        return {"CDCResponse": [{"QueryResponse": response}]}

    # ---- admin ----
    async def _mutate(self, request: Request) -> Response:
        """POST /_emulator/mutate {"op", "entity", "id", "fields"}: a remote user's change."""
        try:
            body = await request.json()
            result = self.state.mutate(body.get("op", ""), body.get("entity", ""), body.get("id"), body.get("fields"))
        except QboFault as fault:
            return self._fault(fault)
        except (ValueError, AttributeError):
            return self._fault(_invalid("Expected a JSON object"))
        return self._ok({body["entity"]: result})

    async def _discovery(self, request: Request) -> Response:
        """Intuit's OpenID discovery document (developer.intuit.com/.well-known/...), every
        endpoint on this host; only the authorize and token endpoints are served."""
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": f"{base}/op/v1", "authorization_endpoint": base + AUTHORIZE_PATH, "token_endpoint": base + TOKEN_PATH,
                             "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo", "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
                             "jwks_uri": f"{base}/op/v1/jwks", "response_types_supported": ["code"], "subject_types_supported": ["public"],
                             "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                             "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]})

    async def _info(self, request: Request) -> Response:
        return JSONResponse({"provider": "quickbooks", "realm_id": self.realm_id, "clients": sorted(self.core.oauth.clients),
                             "counts": {e: self.state.count(e) for e in WRITABLE}})


class _Gateway:
    """What sits in front of Intuit's API: per-realm request and concurrency limits (around the
    injected latency, so slow responses hold their slot) and the realm chosen at consent."""

    def __init__(self, app: ASGIApp, emulator: QuickBooksEmulator):
        self.app, self.emulator, self.core = app, emulator, emulator.core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == AUTHORIZE_PATH and b"realmId=" not in scope.get("query_string", b""):
            query = scope.get("query_string", b"")
            scope = {**scope, "query_string": (query + b"&" if query else b"") + urlencode({"realmId": self.emulator.realm_id}).encode()}
        if scope["type"] != "http" or not scope["path"].startswith("/v3/company/"):
            await self.app(scope, receive, send)
            return
        realm, emulator = scope["path"].split("/")[3], self.emulator
        if not emulator.concurrency.enter(realm):
            await self._throttled("1", scope, receive, send)
            return
        try:
            verdict = emulator.minute_window.hit(realm)
            if verdict.allowed:
                await self.app(scope, receive, send)
            else:
                wait = max(1, math.ceil(verdict.reset_at - self.core.clock.time()))
                await self._throttled(str(wait), scope, receive, send)
        finally:
            emulator.concurrency.leave(realm)

    async def _throttled(self, retry_after: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.core.requests_by_status[429] += 1  # counted like the framework's statistics (one event loop)
        await self.emulator.throttle_response(retry_after)(scope, receive, send)


def create_emulator(*, vendors: int = 5, invoices: int = 5, accounts: int = 10, seed: int = 0,
                    realm_id: str = "9130350000000001", clients: dict[str, str] | None = None,
                    bills: int | None = None, trade: str = "construction") -> QuickBooksEmulator:
    """A QuickBooks Online company with generated data, and its OAuth clients registered.
    `bills`: generated vendor bills (default: as many as `invoices`, see the module docstring);
    `invoices`: generated customer invoices; `trade`: whose bill lines (emulators/bill_lines.py)."""

    def token_extra(server: OAuthServer, grant: Grant) -> dict[str, Any]:
        return {"x_refresh_token_expires_in": REFRESH_TTL}

    core = EmulatorCore("quickbooks", RefreshPolicy(access_ttl=ACCESS_TTL, rotation="single_use", refresh_ttl=REFRESH_TTL), token_extra)
    for client_id, secret in (clients if clients is not None else {"hub-demo": "hub-demo-secret"}).items():
        core.oauth.register_client(client_id, secret)
    state = QuickBooksState(core.clock, realm_id, vendors=vendors, invoices=invoices, accounts=accounts, seed=seed,
                           bills=bills, trade=trade)
    return QuickBooksEmulator(core, state)
