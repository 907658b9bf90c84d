"""Xero Accounting API emulator: `/api.xro/2.0/` Contacts, Invoices (ACCPAY/ACCREC), Accounts and
Organisation, `GET /connections` (also `/Connections`, as xero-python asks), Xero's OAuth (30-minute
access tokens; refresh tokens that rotate with a 30-minute grace and die after 60 idle days),
per-tenant limits, faults and remote edits.

Facts follow /work/shared/reference/providers.md section 2; the hub never reaches the real Xero, so
this is the ground truth its client is tested against. Contacts and accounts are dicts in API shape;
invoices are slotted objects with tuple line items so that 100,000 fit a benchmark's memory.
Generated records are stamped in 2024 (a seed gives the same records everywhere); changes through
the API or `/_emulator/mutate` stamp the emulator clock, so they are strictly newer.

Choices where the reference is UNCONFIRMED
- Paging: pageSize default 100, above 1000 clamped to 1000, below 1 -> 400; no `page` = page 1
  (bounded; old Xero returned everything); past the last page an empty array (with `pagination`).
  Default order: creation order (stable while records change); `order` = `Field [ASC|DESC], ...`.
- `where`: == != < > <= >=, AND/&&, OR/||, NOT/!, parentheses, .Contains/.StartsWith/.EndsWith,
  "text", numbers, true/false/null, DateTime(y,m,d[,h,m,s]), Guid("..."), dotted paths; strings
  compare ignoring case; unparseable -> 400 QueryParseException (ErrorNumber 16, third-party code).
- If-Modified-Since is inclusive (UpdatedDateUTC >= header, to the second): re-sending the last seen
  second never misses a record. A header that is neither an HTTP date nor ISO 8601 is ignored.
- Contacts: archived ones are listed only with includeArchived=true (GET by id always answers);
  names are unique ignoring case, archived included; POST matches on ContactID only; contacts are
  never deleted (admin "delete" -> 400).
- Invoices: lists show every status (DELETED/VOIDED too, so syncs see them; filter with Statuses).
  Create as DRAFT/SUBMITTED/AUTHORISED; DRAFT/SUBMITTED -> DRAFT, SUBMITTED, AUTHORISED, DELETED;
  AUTHORISED without payments may be edited or VOIDED; PAID, VOIDED, DELETED and part-paid ones are
  locked, and every refused change says "Invoice not of valid status for modification". PAID only
  via admin "pay". Tax 10% (INPUT for ACCPAY, OUTPUT for ACCREC) unless a line sends TaxAmount.
  ACCREC numbers are unique and default to INV-nnnnn; an unknown Contact Name creates the contact.
- Accounts: Code and Name unique ignoring case; admin "delete" sets Status DELETED (still listed).
- summarizeErrors=true (default): any failing item -> 400 ValidationException, Elements = the
  failing items with ValidationErrors, and nothing is saved.
- 401/403 are problem-JSON with Detail "AuthenticationUnsuccessful"; 403 for a missing, unknown or
  not-granted xero-tenant-id (a grant's subject names tenants as tenantId/tenant_id/tenant_ids;
  none = all). 404 {"Type":"ObjectNotFoundException","Message"}; bad JSON -> 400
  PostDataInvalidException; injected 5xx {"Type","Message"} (InternalServer/NotAvailable...).
- 429: problem-JSON "Too Many Requests"; X-Rate-Limit-Problem minute|day|concurrent|appminute
  (10,000/min per app); Retry-After = seconds until the oldest counted call leaves the window
  (concurrent: 1). Refused calls are not counted. Limit headers ride on every response that passed
  the tenant check and on injected 429/5xx (not on 401/403, which are not counted).
- Idempotency-Key (<= 128 chars): same tenant + key + path within 24 h -> the stored first response.
  `write_delay_ms` (set on the emulator object) delays the answer to every PUT/POST *after* it
  is stored, so a client that times out leaves a write whose outcome it does not know.

OAuth connect: the consent page (emulators/oauth.py) lets the emulated user tick the
organisations to grant: this one and any `extra_tenants` (id -> name: organisations the user
also has, listed by the consent page and `/connections` but holding no data; their API calls
answer 403). PKCE S256 is checked at the token endpoint. `DELETE /connections/{id}` removes
that tenant from the grant (204; an id the grant does not have: 404); `POST
/connect/revocation` (form `token`, Basic client auth, RFC 7009) ends the grant's tokens (200).

Admin routes beyond the framework's: POST /_emulator/mutate {"op": create|update|archive|delete|
void|pay, "entity", "id", "fields"}; GET/POST /_emulator/limits {"minute", "day", "concurrent",
"app_minute", "hold_ms" (how long each call holds its concurrency slot), "reset"}.
"""

from __future__ import annotations

import asyncio
import json
import math
import operator
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulators.clock import Clock
from emulators.core import ADMIN_PREFIX, EmulatorCore
from emulators import bill_lines
from emulators.datagen import DataGen
from emulators.oauth import Consent, Grant, RefreshPolicy, client_credentials
from emulators.ratelimit import ConcurrencyGate, SlidingWindow

API = "/api.xro/2.0/"
CONNECTIONS = ("/connections", "/Connections")  # Xero's docs say /connections; xero-python's IdentityApi calls /Connections
POLICY = RefreshPolicy(access_ttl=1800, rotation="grace", grace_seconds=1800, refresh_ttl=60 * 86400)
DEFAULT_TENANT = "a3b1c5d7-0000-4000-8000-000000000001"
TAX_RATE = 0.10
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
LOCKED = "Invoice not of valid status for modification"
UNIQUE_NAME = "Please enter a unique Name."
_EPOCH_ORDINAL, _GEN_START = date(1970, 1, 1).toordinal(), date(2024, 1, 1).toordinal()
_NS = uuid.UUID("6f1b2c8e-3d4a-4b5c-9d6e-7f8091a2b3c4")
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ACCOUNT_CLASS = {**dict.fromkeys(("REVENUE", "SALES", "OTHERINCOME"), "REVENUE"),
                 **dict.fromkeys(("EXPENSE", "OVERHEADS", "DIRECTCOSTS", "DEPRECIATN"), "EXPENSE"),
                 **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "ASSET"),
                 **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"), "LIABILITY"), "EQUITY": "EQUITY"}
_CHART = (("200", "Sales", "REVENUE"), ("260", "Other Revenue", "OTHERINCOME"), ("310", "Cost of Goods Sold", "DIRECTCOSTS"),
          ("400", "Advertising", "OVERHEADS"), ("404", "Bank Fees", "OVERHEADS"), ("408", "Cleaning", "OVERHEADS"),
          ("412", "Consulting & Accounting", "EXPENSE"), ("429", "General Expenses", "EXPENSE"), ("433", "Insurance", "EXPENSE"),
          ("453", "Office Expenses", "EXPENSE"), ("469", "Rent", "EXPENSE"), ("473", "Repairs and Maintenance", "EXPENSE"),
          ("489", "Telephone & Internet", "EXPENSE"), ("493", "Travel - National", "EXPENSE"), ("610", "Accounts Receivable", "CURRENT"),
          ("800", "Accounts Payable", "CURRLIAB"), ("090", "Business Bank Account", "BANK"), ("970", "Owner Funds Introduced", "EQUITY"),
          # a restaurant's fuller chart (bill lines prefer these where the chart is large enough; emulators/bill_lines.py)
          ("311", "Food Cost - Produce", "DIRECTCOSTS"), ("312", "Food Cost - Meat & Seafood", "DIRECTCOSTS"),
          ("313", "Food Cost - Dairy & Eggs", "DIRECTCOSTS"), ("314", "Beverage Cost", "DIRECTCOSTS"), ("315", "Dry Goods", "DIRECTCOSTS"),
          ("445", "Paper Goods & Disposables", "EXPENSE"), ("446", "Linen & Uniforms", "EXPENSE"), ("447", "Smallwares", "EXPENSE"),
          ("448", "Pest Control", "EXPENSE"))
_DESCRIPTIONS = ("Materials", "Labour", "Equipment rental", "Consulting", "Freight", "Subscriptions", "Repairs", "Supplies")
CONTACT_FIELDS = ("Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber", "TaxNumber", "CompanyNumber",
                  "ContactStatus", "DefaultCurrency", "Addresses", "Phones", "ContactGroups", "Website", "BankAccountDetails")
ACCOUNT_FIELDS = ("Code", "Name", "Type", "Status", "Description", "TaxType", "BankAccountNumber", "BankAccountType", "CurrencyCode",
                  "EnablePaymentsToAccount", "ShowInExpenseClaims", "ReportingCode", "AddToWatchlist")
ENTITIES = {"contacts": "Contact", "invoices": "Invoice", "accounts": "Account"}
ID_FIELD = {"Contact": "ContactID", "Invoice": "InvoiceID", "Account": "AccountID"}


# ---- wire formats and errors -------------------------------------------------------------------
def ms_date(ts: float, offset: bool = True) -> str:
    """Xero's MS-.NET JSON date: `/Date(ms+0000)/` on records, `/Date(ms)/` in envelopes."""
    return f"/Date({int(round(ts * 1000))}{'+0000' if offset else ''})/"


def day_ts(ordinal: int) -> float:
    return (ordinal - _EPOCH_ORDINAL) * 86400.0


def parse_day(value: Any) -> int:
    """A date as Xero takes it on writes (`YYYY-MM-DD`, ISO date-time, `/Date(ms)/`) as an ordinal."""
    match = _MS_DATE.fullmatch(str(value).strip())
    return int(match.group(1)) // 86_400_000 + _EPOCH_ORDINAL if match else date.fromisoformat(str(value).strip()[:10]).toordinal()


def parse_since(value: str | None) -> float | None:
    """If-Modified-Since as an HTTP date or ISO 8601 (naive = UTC), to the second; junk -> None."""
    try:
        when = parsedate_to_datetime(value or "")
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat((value or "").strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return float(math.floor((when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()))


class XeroError(Exception):
    """An API error: the HTTP status and Xero's body for it."""

    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status, self.body = status, body


def validation(elements: list[dict[str, Any]]) -> XeroError:
    return XeroError(400, {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                           "Elements": elements})


def invalid(message: str) -> XeroError:
    return validation([{"ValidationErrors": [{"Message": message}]}])


def exception(status: int, type_: str, message: str, number: int | None = None) -> XeroError:
    return XeroError(status, {**({"ErrorNumber": number} if number else {}), "Type": type_, "Message": message})


def not_found() -> XeroError:
    return exception(404, "ObjectNotFoundException", "The resource you're looking for cannot be found")


def problem(status: int, title: str, detail: str = "AuthenticationUnsuccessful") -> dict[str, Any]:
    return {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4()), "Extensions": {}}


# ---- where / order -------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|(==|!=|>=|<=|&&|\|\||[<>()!,.])|([A-Za-z_]\w*))')
_CMP = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
_CALLS = {"contains": lambda v, a: a in v, "startswith": str.startswith, "endswith": str.endswith}
_WORDS = {"true": True, "false": False, "null": None}


def query_error(message: str) -> XeroError:
    return exception(400, "QueryParseException", message, 16)


class Where:
    """A parsed `where` clause (the subset in the module docstring): a tree of tuples."""

    def __init__(self, text: str):
        self.toks, pos, text = [], 0, text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise query_error(f"Could not parse the where clause at position {pos}")
            s, n, op, word = m.groups()
            self.toks.append(("s", json.loads(s)) if s else ("n", float(n) if "." in n else int(n)) if n else ("o", op) if op else ("w", word))
            pos = m.end()
        self.toks.append((None, None))
        self.i = 0
        self.tree = self._expr()
        if self.toks[self.i][0] is not None:
            raise query_error("Unexpected input at the end of the where clause")

    def _next(self, want: str | None = None) -> Any:
        kind, value = self.toks[self.i]
        if kind is None or (want and want not in (kind, value)):
            raise query_error(f"Expected {want or 'more input'} in the where clause")
        self.i += 1
        return value

    def _accept(self, *words: str) -> bool:
        kind, value = self.toks[self.i]
        hit = kind in ("o", "w") and str(value).upper() in words
        self.i += hit
        return hit

    def _expr(self) -> tuple:
        return self._binary(("||", "OR"), lambda: self._binary(("&&", "AND"), self._unary))

    def _binary(self, words: tuple[str, str], operand: Any) -> tuple:
        node = operand()
        while self._accept(*words):
            node = (words[1].lower(), node, operand())
        return node

    def _unary(self) -> tuple:
        if self._accept("!", "NOT"):
            return ("not", self._unary())
        if self._accept("("):
            node = self._expr()
            self._next(")")
            return node
        path = [self._next("w")]
        while self._accept("."):
            path.append(self._next("w"))
            if path[-1].lower() in _CALLS and self._accept("("):
                call, arg = path.pop().lower(), self._literal()
                self._next(")")
                return ("call", path, call, arg)
        kind, op = self.toks[self.i]
        if kind == "o" and op in _CMP:
            self.i += 1
            return ("cmp", path, op, self._literal())
        return ("cmp", path, "==", True)  # a bare boolean field: `IsSupplier`

    def _literal(self) -> Any:
        kind, value = self.toks[self.i]
        self._next()
        word = str(value).lower()
        if kind in ("s", "n"):
            return value
        if word in _WORDS:
            return _WORDS[word]
        if word not in ("guid", "datetime"):
            raise query_error(f"Unexpected {value!r} in the where clause")
        self._next("(")
        args = []
        while not self._accept(")"):
            args.append(self._next())
            self._accept(",")
        try:
            return str(args[0]).lower() if word == "guid" else datetime(*map(int, args[:6]), tzinfo=timezone.utc)
        except (IndexError, TypeError, ValueError):
            raise query_error(f"Bad {value}(...) in the where clause") from None

    def matches(self, rec: Any, value_of: Any, node: tuple | None = None) -> bool:
        kind, *rest = node = node or self.tree
        if kind in ("and", "or"):
            first = self.matches(rec, value_of, rest[0])
            return first if first == (kind == "or") else self.matches(rec, value_of, rest[1])
        if kind == "not":
            return not self.matches(rec, value_of, rest[0])
        path, op, arg = rest
        value, arg = _norm(value_of(rec, path)), _norm(arg)
        if kind == "call":
            return isinstance(value, str) and isinstance(arg, str) and _CALLS[op](value, arg)
        if op in ("==", "!="):
            return (value == arg) == (op == "==")
        try:
            return value is not None and arg is not None and _CMP[op](value, arg)
        except TypeError:
            return False


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_order(text: str) -> list[tuple[list[str], bool]]:
    out = []
    for words in (p.split() for p in text.split(",") if p.strip()):
        if len(words) > 2 or words[1:] and words[1].upper() not in ("ASC", "DESC"):
            raise query_error(f"Could not parse the order clause {' '.join(words)!r}")
        out.append((words[0].split("."), len(words) == 2 and words[1].upper() == "DESC"))
    return out


# ---- records ---------------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Invoice:
    """One invoice, compact: LineItems are (Description, Quantity, UnitAmount, AccountCode, TaxType,
    TaxAmount, LineAmount) tuples; dates are day ordinals; UpdatedDateUTC is epoch seconds."""

    InvoiceID: str
    Type: str
    InvoiceNumber: str | None
    Reference: str | None
    ContactID: str
    Date: int
    DueDate: int | None
    Status: str
    LineAmountTypes: str
    CurrencyCode: str
    LineItems: tuple
    SubTotal: float
    TotalTax: float
    Total: float
    AmountPaid: float
    UpdatedDateUTC: float
    FullyPaidOnDate: int | None = None

    @property
    def AmountDue(self) -> float:
        return round(self.Total - self.AmountPaid, 2)


def _line(desc: str, qty: float, unit: float, code: str | None, tax_type: str, lat: str, tax: float | None = None) -> tuple:
    amount = round(qty * unit, 2)
    if lat == "NoTax":
        tax, tax_type = 0.0, "NONE"
    elif tax is None:
        tax = amount * TAX_RATE / (1 + TAX_RATE) if lat == "Inclusive" else amount * TAX_RATE
    return (desc, qty, unit, code, tax_type, round(tax, 2), amount)


def _totals(lines: tuple, lat: str) -> tuple[float, float, float]:
    """(SubTotal, TotalTax, Total); Inclusive line amounts already contain the tax."""
    amounts, tax = round(sum(li[6] for li in lines), 2), round(sum(li[5] for li in lines), 2)
    return (round(amounts - tax, 2), tax, amounts) if lat == "Inclusive" else (amounts, tax, round(amounts + tax, 2))


_INVOICE_ATTRS = {name.lower(): name for name in Invoice.__slots__} | {"amountdue": "AmountDue", "contact.contactid": "ContactID"}


class XeroState:
    """One organisation's data and the rules that guard it. Every read and write holds `lock`: the
    API runs on the server's event loop while tests and admin code call in from other threads.
    `version` moves on every change and keys the list-query cache."""

    def __init__(self, clock: Clock, tenant_id: str, name: str = "Demo Company (US)"):
        self.clock, self.tenant_id, self.name = clock, tenant_id, name
        self.contacts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, Invoice] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.lock, self.version, self._next_number = threading.RLock(), 0, 1
        self._names: dict[str, str] = {}  # lower(contact Name) -> ContactID
        self._numbers: dict[str, str] = {}  # lower(ACCREC InvoiceNumber) -> InvoiceID
        self._cache: OrderedDict[tuple, list] = OrderedDict()

    def generate(self, *, contacts: int, invoices: int, accounts: int, seed: int, trade: str = "restaurant") -> None:
        """Deterministic records from `seed` (ids too), stamped within 2024. Bills (ACCPAY) carry
        lines in the supplier's own words, coded as the organisation's history has them
        (emulators/bill_lines.py, `trade`)."""
        if trade not in bill_lines.TRADES:
            raise ValueError(f"trade must be one of {bill_lines.TRADES}")
        gen = DataGen(seed)
        line_random = DataGen(seed ^ 0x5EED).random  # its own stream: the other fields stay as the seed always made them
        random, randrange, base = gen.random.random, gen.random.randrange, day_ts(_GEN_START)

        def uid() -> str:
            return str(uuid.UUID(int=gen.random.getrandbits(128), version=4))

        for i in range(accounts):
            code, name, type_ = _CHART[i] if i < len(_CHART) else (f"E{i:04d}", f"Expense Category {i}", "EXPENSE")
            cls = ACCOUNT_CLASS[type_]
            rec = {"AccountID": uid(), "Code": code, "Name": name, "Type": type_, "Class": cls, "Status": "ACTIVE", "Description": "",
                   "TaxType": {"EXPENSE": "INPUT", "REVENUE": "OUTPUT"}.get(cls, "NONE"), "EnablePaymentsToAccount": False,
                   "ShowInExpenseClaims": cls == "EXPENSE", "CurrencyCode": "USD", "UpdatedDateUTC": round(base + random() * 86400 * 30, 3)}
            self.accounts[rec["AccountID"]] = rec
        for i in range(contacts):
            name, addr = gen.company_name(i), gen.address()
            rec = {"ContactID": uid(), "AccountNumber": f"V{i + 1:05d}", "ContactStatus": "ARCHIVED" if random() < 0.05 else "ACTIVE",
                   "Name": name, "EmailAddress": gen.email(name), "TaxNumber": gen.tax_id(),
                   "Addresses": [{"AddressType": "POBOX", "AddressLine1": addr["line1"], "City": addr["city"], "Region": addr["state"],
                                  "PostalCode": addr["postal_code"], "Country": addr["country"]}],
                   "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": gen.phone()}], "DefaultCurrency": "USD",
                   "IsSupplier": False, "IsCustomer": False, "UpdatedDateUTC": round(base + random() * 86400 * 300, 3)}
            self.contacts[rec["ContactID"]] = rec
            self._names[name.lower()] = rec["ContactID"]
        people = list(self.contacts.values())
        if invoices and not people:
            raise ValueError("invoices need at least one contact")
        codes = {kind: [a["Code"] for a in self.accounts.values() if a["Class"] == cls] or [a["Code"] for a in self.accounts.values()]
                 for kind, cls in (("ACCPAY", "EXPENSE"), ("ACCREC", "REVENUE"))}
        expense = [a for a in self.accounts.values() if a["Class"] == "EXPENSE"]
        expense_names, expense_codes = {a["Name"].casefold(): a["Code"] for a in expense}, [a["Code"] for a in expense]
        counters = {"ACCPAY": 0, "ACCREC": 0}
        for _ in range(invoices):
            kind = "ACCPAY" if random() < 0.7 else "ACCREC"
            who = randrange(len(people))
            contact, choices, day, r = people[who], codes[kind], _GEN_START + randrange(366), random()
            status = "DRAFT" if r < .1 else "SUBMITTED" if r < .15 else "AUTHORISED" if r < .6 else "PAID" if r < .95 else "VOIDED" if r < .98 else "DELETED"
            lines = tuple(_line(_DESCRIPTIONS[randrange(8)], float(randrange(1, 11)), round(5 + random() * 495, 2),
                                choices[randrange(len(choices))] if choices else None, "INPUT" if kind == "ACCPAY" else "OUTPUT", "Exclusive")
                          for _ in range(1 + randrange(3)))
            if kind == "ACCPAY" and expense_codes:  # the same count of lines, in the supplier's words
                made = [bill_lines.bill_line(trade, who + 1, line_random) for _ in lines]
                lines = tuple(_line(m.description, 1.0, m.amount, bill_lines.resolve_account(m, expense_names, expense_codes),
                                    "INPUT", "Exclusive") for m in made)
            counters[kind] += 1
            sub, tax, total = _totals(lines, "Exclusive")
            inv = Invoice(uid(), kind, f"{'BILL' if kind == 'ACCPAY' else 'INV'}-{counters[kind]:05d}", None, contact["ContactID"], day,
                          day + 30, status, "Exclusive", "USD", lines, sub, tax, total, total if status == "PAID" else 0.0,
                          round(day_ts(day) + random() * 86400 * 30, 3), day + randrange(30) if status == "PAID" else None)
            self.invoices[inv.InvoiceID] = inv
            contact["IsSupplier" if kind == "ACCPAY" else "IsCustomer"] = True
            if kind == "ACCREC":
                self._numbers[inv.InvoiceNumber.lower()] = inv.InvoiceID
        self._next_number = counters["ACCREC"] + 1

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def writes(self) -> int:
        """Changes made so far (every save, payment and user edit moves `version`): what a
        test proves a dry run left alone."""
        return self.version

    def store(self, entity: str) -> dict[str, Any]:
        return {"Contact": self.contacts, "Invoice": self.invoices, "Account": self.accounts}[entity]

    def get(self, entity: str, ident: str) -> Any:
        """A record by id (an Invoice also by InvoiceNumber, as Xero allows), else 404."""
        rec = self.store(entity).get(str(ident).lower())
        rec = rec or (self.invoices.get(self._numbers.get(str(ident).lower(), "")) if entity == "Invoice" else None)
        if rec is None:
            raise not_found()
        return rec

    def value_of(self, rec: Any, path: list[str]) -> Any:
        """The API-visible value at `path` (dates as datetimes), for `where` and `order`."""
        if isinstance(rec, Invoice):
            name = ".".join(path).lower()
            if name == "contact.name":
                return self.contacts[rec.ContactID]["Name"]
            value = getattr(rec, _INVOICE_ATTRS[name]) if name in _INVOICE_ATTRS else None
            if name in ("date", "duedate", "fullypaidondate"):
                return None if value is None else datetime.fromordinal(value).replace(tzinfo=timezone.utc)
        else:
            value = rec
            for part in path:
                if not isinstance(value, dict):
                    return None
                value = value[part] if part in value else next((v for k, v in value.items() if k.lower() == part.lower()), None)
        return datetime.fromtimestamp(value, timezone.utc) if path[-1].lower() == "updateddateutc" and isinstance(value, float) else value

    def query(self, entity: str, params: dict[str, str], since: float | None) -> list[Any]:
        """The records a list call selects, in order; cached per distinct query and `version`, so
        paging through 100,000 invoices filters and sorts them once."""
        p = {k.lower(): v for k, v in params.items() if k.lower() not in ("page", "pagesize")}
        with self.lock:
            key = (entity, tuple(sorted(p.items())), since, self.version)
            if key in self._cache:
                return self._cache[key]
            records = list(self.store(entity).values())
            pick = (lambda r, name: getattr(r, name)) if entity == "Invoice" else (lambda r, name: r.get(name))
            if since is not None:
                records = [r for r in records if pick(r, "UpdatedDateUTC") >= since]
            filters = [("ids", ID_FIELD[entity])] + ([("statuses", "Status"), ("invoicenumbers", "InvoiceNumber"), ("contactids", "ContactID")]
                                                    if entity == "Invoice" else [])
            for param, name in filters:
                if p.get(param):
                    wanted = {s.strip().lower() for s in p[param].split(",")}
                    records = [r for r in records if str(pick(r, name) or "").lower() in wanted]
            if entity == "Contact" and p.get("includearchived", "").lower() != "true":
                records = [r for r in records if r.get("ContactStatus") != "ARCHIVED"]
            if p.get("where", "").strip():
                where = Where(p["where"])
                records = [r for r in records if where.matches(r, self.value_of)]
            for path, desc in reversed(parse_order(p.get("order", ""))):
                try:
                    records.sort(key=lambda r: (lambda v: (v is not None, v))(_norm(self.value_of(r, path))), reverse=desc)
                except TypeError:
                    raise query_error(f"Cannot order by {'.'.join(path)}") from None
            self._cache[key] = records
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
            return records

    def render(self, entity: str, rec: Any) -> dict[str, Any]:
        with self.lock:
            if entity != "Invoice":
                return {**rec, "UpdatedDateUTC": ms_date(rec["UpdatedDateUTC"]), **({"HasValidationErrors": False} if entity == "Contact" else {})}
            contact = self.contacts.get(rec.ContactID, {})
            out = {"Type": rec.Type, "InvoiceID": rec.InvoiceID, "InvoiceNumber": rec.InvoiceNumber or "", "Reference": rec.Reference or "",
                   "Contact": {"ContactID": rec.ContactID, "Name": contact.get("Name"), "ContactStatus": contact.get("ContactStatus")},
                   "Date": ms_date(day_ts(rec.Date)), "DateString": date.fromordinal(rec.Date).isoformat() + "T00:00:00",
                   "Status": rec.Status, "LineAmountTypes": rec.LineAmountTypes,
                   "LineItems": [{"LineItemID": str(uuid.uuid5(_NS, f"{rec.InvoiceID}/{i}")), "Description": d, "Quantity": q,
                                  "UnitAmount": u, **({"AccountCode": c} if c is not None else {}), "TaxType": t, "TaxAmount": ta,
                                  "LineAmount": la} for i, (d, q, u, c, t, ta, la) in enumerate(rec.LineItems)],
                   "SubTotal": rec.SubTotal, "TotalTax": rec.TotalTax, "Total": rec.Total, "AmountDue": rec.AmountDue,
                   "AmountPaid": rec.AmountPaid, "AmountCredited": 0.0, "CurrencyCode": rec.CurrencyCode, "CurrencyRate": 1.0,
                   "UpdatedDateUTC": ms_date(rec.UpdatedDateUTC), "HasAttachments": False, "HasErrors": False, "IsDiscounted": False}
            if rec.DueDate is not None:
                out.update(DueDate=ms_date(day_ts(rec.DueDate)), DueDateString=date.fromordinal(rec.DueDate).isoformat() + "T00:00:00")
            if rec.FullyPaidOnDate is not None:
                out["FullyPaidOnDate"] = ms_date(day_ts(rec.FullyPaidOnDate))
            return out

    # ---- writing ---------------------------------------------------------------------------------
    def save(self, entity: str, items: list[Any], *, mode: str, target: str | None = None, summarize: bool = True) -> list[dict[str, Any]]:
        """Create (`mode="create"`, PUT), create-or-update ("upsert", POST) or update one ("update",
        POST /{id}). Every item is validated first (names claimed earlier in the batch count), then
        nothing is saved (summarize and any failure -> 400) or the valid items are saved and the
        failures come back inline with `HasValidationErrors`."""
        id_field = ID_FIELD[entity]
        prepare = {"Contact": self._prepare_contact, "Invoice": self._prepare_invoice, "Account": self._prepare_account}[entity]
        with self.lock:
            if target is not None:
                self.get(entity, target)  # 404 for an unknown id
            claims: set[tuple[str, str]] = set()
            plans: list[tuple[dict, list[str], Any]] = []
            for item in items:
                ident = target or (item.get(id_field) if isinstance(item, dict) else None)
                current = self.store(entity).get(str(ident).lower()) if ident else None
                if not isinstance(item, dict):
                    plans.append(({}, [f"A {entity} must be a JSON object"], None))
                elif ident and current is None and mode == "upsert":
                    plans.append((item, [f"{entity} {ident} could not be found"], None))
                elif current is not None and mode == "create":
                    plans.append((item, [f"A {entity} with {id_field} {ident} already exists; use POST to update it"], None))
                else:
                    plans.append((item, *prepare(item, current, claims)))
            failed = [(item, errors) for item, errors, _ in plans if errors]
            if failed and summarize:
                raise validation([{**item, "ValidationErrors": [{"Message": m} for m in errors]} for item, errors in failed])
            self.version += 1
            return [{**item, "HasValidationErrors": True, **({"HasErrors": True} if entity == "Invoice" else {}),
                     "ValidationErrors": [{"Message": m} for m in errors]} if errors else self.render(entity, commit())
                    for item, errors, commit in plans]

    def _unique(self, taken_by: str | None, mine: str | None, claim: tuple[str, str], claims: set) -> bool:
        """True (and claimed) if no other record and no earlier item in the batch holds the value."""
        if (taken_by not in (None, mine)) or claim in claims:
            return False
        claims.add(claim)
        return True

    def _prepare_contact(self, item: dict[str, Any], current: dict | None, claims: set) -> tuple[list[str], Any]:
        data = {**(current or {}), **{k: item[k] for k in CONTACT_FIELDS if k in item}}  # IsSupplier/IsCustomer are read-only
        name, mine, errors = str(data.get("Name") or "").strip(), current and current["ContactID"], []
        if not name or len(name) > 255:
            errors.append("The contact name must be given, in at most 255 characters.")
        elif not self._unique(self._names.get(name.lower()), mine, ("contact", name.lower()), claims):
            errors.append(UNIQUE_NAME)
        if data.get("ContactStatus", "ACTIVE") not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            errors.append("ContactStatus must be ACTIVE, ARCHIVED or GDPRREQUEST.")
        if data.get("EmailAddress") and not _EMAIL.fullmatch(str(data["EmailAddress"])):
            errors.append("Email address must be valid.")

        def commit() -> dict[str, Any]:
            rec = current if current is not None else {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "IsSupplier": False, "IsCustomer": False}
            self._names.pop(str(rec.get("Name", "")).lower(), None)
            rec.update(data, Name=name, UpdatedDateUTC=self.clock.time())
            self.contacts[rec["ContactID"]] = rec
            self._names[name.lower()] = rec["ContactID"]
            return rec
        return errors, commit

    def _prepare_invoice(self, item: dict[str, Any], current: Invoice | None, claims: set) -> tuple[list[str], Any]:
        kind = current.Type if current else item.get("Type")
        status = str(item.get("Status") or (current.Status if current else "DRAFT")).upper()
        if kind not in ("ACCPAY", "ACCREC"):
            return ["Invoice Type must be ACCPAY or ACCREC."], None
        if current is not None:
            allowed = {"DRAFT": "DRAFT SUBMITTED AUTHORISED DELETED", "SUBMITTED": "DRAFT SUBMITTED AUTHORISED DELETED",
                       "AUTHORISED": "AUTHORISED VOIDED"}.get(current.Status, "").split()
            if current.AmountPaid > 0 or status not in allowed:
                return [LOCKED], None
        elif status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            return ["Invoice not of valid status for creation"], None
        errors: list[str] = []
        contact_id, new_contact, ref = (current.ContactID if current else None), None, item.get("Contact")
        if isinstance(ref, dict) and ref.get("ContactID"):
            contact_id = str(ref["ContactID"]).lower()
            if contact_id not in self.contacts:
                errors.append(f"The Contact with ContactID {ref['ContactID']} could not be found.")
        elif isinstance(ref, dict) and str(ref.get("Name") or "").strip():
            contact_id = self._names.get(ref["Name"].strip().lower())
            new_contact = None if contact_id else ref["Name"].strip()
            if new_contact and not self._unique(None, None, ("contact", new_contact.lower()), claims):
                errors.append(UNIQUE_NAME)
        elif ref is not None or current is None:
            errors.append("A Contact must be specified for this type of transaction.")
        lat = item.get("LineAmountTypes") or (current.LineAmountTypes if current else "Exclusive")
        if lat not in ("Exclusive", "Inclusive", "NoTax"):
            errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax.")
        tax_type, lines = "INPUT" if kind == "ACCPAY" else "OUTPUT", []
        for li in item.get("LineItems") or []:
            try:
                qty = float(li["Quantity"]) if li.get("Quantity") is not None else 1.0
                unit = float(li["UnitAmount"]) if li.get("UnitAmount") is not None else float(li.get("LineAmount") or 0) / (qty or 1)
                tax = None if li.get("TaxAmount") is None else float(li["TaxAmount"])
            except (TypeError, ValueError, AttributeError):
                errors.append("Line item Quantity, UnitAmount, LineAmount and TaxAmount must be numbers.")
                continue
            code = None if li.get("AccountCode") is None else str(li["AccountCode"])
            if code is not None and not any(a["Code"] == code and a["Status"] == "ACTIVE" for a in self.accounts.values()):
                errors.append(f"Account code '{code}' is not a valid code for this document.")
            lines.append(_line(str(li.get("Description") or ""), qty, unit, code, tax_type, lat, tax))
        if "LineItems" not in item and current is not None:  # keep the lines; recompute tax if LineAmountTypes changed
            lines = [_line(d, q, u, c, tax_type, lat, ta if lat == current.LineAmountTypes else None) for d, q, u, c, _, ta, _ in current.LineItems]
        if status in ("SUBMITTED", "AUTHORISED") and not lines:
            errors.append("An invoice must have at least one line item to be submitted or authorised.")
        days: dict[str, int | None] = {}
        for field in ("Date", "DueDate"):
            try:
                days[field] = parse_day(item[field]) if item.get(field) else getattr(current, field) if current else \
                    (self.clock.now().date().toordinal() if field == "Date" else None)
            except ValueError:
                errors.append(f"{field} is not a valid date.")
        number = item.get("InvoiceNumber", current.InvoiceNumber if current else None)
        if kind == "ACCREC" and number and not self._unique(self._numbers.get(str(number).lower()), current and current.InvoiceID,
                                                            ("number", str(number).lower()), claims):
            errors.append("Invoice # must be unique.")

        def commit() -> Invoice:
            cid = self._prepare_contact({"Name": new_contact}, None, set())[1]()["ContactID"] if new_contact else contact_id
            inv_number = number
            while kind == "ACCREC" and not inv_number:
                candidate, self._next_number = f"INV-{self._next_number:05d}", self._next_number + 1
                inv_number = None if candidate.lower() in self._numbers else candidate
            sub, tax, total = _totals(tuple(lines), lat)
            fields = dict(InvoiceNumber=inv_number, Reference=item.get("Reference", current.Reference if current else None), ContactID=cid,
                          Date=days["Date"], DueDate=days["DueDate"], Status=status, LineAmountTypes=lat, LineItems=tuple(lines),
                          CurrencyCode=item.get("CurrencyCode") or (current.CurrencyCode if current else "USD"),
                          SubTotal=sub, TotalTax=tax, Total=total, UpdatedDateUTC=self.clock.time())
            inv = current or Invoice(InvoiceID=str(uuid.uuid4()), Type=kind, AmountPaid=0.0, **fields)
            self._numbers.pop(str(inv.InvoiceNumber or "").lower(), None)
            for name, value in fields.items():
                setattr(inv, name, value)
            self.invoices[inv.InvoiceID] = inv
            if kind == "ACCREC" and inv_number:
                self._numbers[str(inv_number).lower()] = inv.InvoiceID
            self.contacts[cid]["IsSupplier" if kind == "ACCPAY" else "IsCustomer"] = True  # no UpdatedDateUTC bump (reference 2.4)
            return inv
        return errors, commit

    def _prepare_account(self, item: dict[str, Any], current: dict | None, claims: set) -> tuple[list[str], Any]:
        data = {**(current or {}), **{k: item[k] for k in ACCOUNT_FIELDS if k in item}}
        code, name, mine, errors = str(data.get("Code") or "").strip(), str(data.get("Name") or "").strip(), current and current["AccountID"], []
        if data.get("Type") not in ACCOUNT_CLASS:
            errors.append("Account Type is not valid.")
        if not name or (not code and data.get("Type") != "BANK") or len(code) > 10 or len(name) > 150:
            errors.append("Please enter a Name (at most 150 characters) and a Code (at most 10).")
        for field, value in (("Code", code), ("Name", name)):
            holder = next((a["AccountID"] for a in self.accounts.values() if value and str(a.get(field) or "").lower() == value.lower()), None)
            if value and not self._unique(holder, mine, (field, value.lower()), claims):
                errors.append(f"Please enter a unique {field}.")
        if data.get("Status", "ACTIVE") not in ("ACTIVE", "ARCHIVED"):
            errors.append("Status must be ACTIVE or ARCHIVED.")

        def commit() -> dict[str, Any]:
            rec = current if current is not None else {"AccountID": str(uuid.uuid4()), "Status": "ACTIVE", "Description": "", "TaxType": "NONE", "CurrencyCode": "USD"}
            rec.update(data, Code=code, Name=name, Class=ACCOUNT_CLASS[data["Type"]], UpdatedDateUTC=self.clock.time())
            self.accounts[rec["AccountID"]] = rec
            return rec
        return errors, commit

    # ---- remote changes (as a Xero user would make them) ------------------------------------------
    def pay(self, invoice_id: str, amount: float | None = None) -> dict[str, Any]:
        """Apply a payment (all that is due by default); PAID when nothing is left. AUTHORISED only."""
        with self.lock:
            inv = self.get("Invoice", invoice_id)
            if inv.Status != "AUTHORISED":
                raise invalid("Payments can only be made against Authorised documents")
            amount = inv.AmountDue if amount is None else round(float(amount), 2)
            if not 0 < amount <= inv.AmountDue:
                raise invalid("The payment amount must be positive and at most the amount due")
            inv.AmountPaid, inv.UpdatedDateUTC = round(inv.AmountPaid + amount, 2), self.clock.time()
            if inv.AmountDue <= 0:
                inv.Status, inv.FullyPaidOnDate = "PAID", self.clock.now().date().toordinal()
            self.version += 1
            return self.render("Invoice", inv)

    def mutate(self, op: str, entity: str, id: str | None = None, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """One remote change (`/_emulator/mutate`): op create|update|archive|delete|void|pay."""
        entity = next((e for e in ID_FIELD if str(entity).lower() in (e.lower(), e.lower() + "s")), "")
        fields = dict(fields or {})
        change = {("archive", "Contact"): {"ContactStatus": "ARCHIVED"}, ("archive", "Account"): {"Status": "ARCHIVED"},
                  ("delete", "Invoice"): {"Status": "DELETED"}, ("void", "Invoice"): {"Status": "VOIDED"}, ("update", entity): {}}
        if not entity or (op, entity) not in {**change, ("pay", "Invoice"): 1, ("delete", "Account"): 1, ("create", entity): 1} \
                or (id is None and op != "create"):
            raise invalid(f"{op!r} on {entity or 'an unknown entity'} is not possible (or needs an id)")
        if op == "create":
            return self.save(entity, [fields], mode="create")[0]
        if op == "pay":
            return self.pay(id, fields.get("Amount"))
        if op == "delete" and entity == "Account":  # Xero removes it; the emulator keeps it visible as DELETED
            with self.lock:
                rec = self.get("Account", id)
                rec.update(Status="DELETED", UpdatedDateUTC=self.clock.time())
                self.version += 1
                return self.render("Account", rec)
        return self.save(entity, [{**fields, **change[(op, entity)]}], mode="update", target=id)[0]


# ---- HTTP ------------------------------------------------------------------------------------------
_TENANT_KEYS = ("tenantId", "tenant_id", "tenant_ids", "xero_tenant_id")


def _grant_tenants(grant: Grant) -> set[str] | None:
    """The tenants a grant may reach, from its subject; None means every tenant."""
    for key in _TENANT_KEYS:
        value = (grant.subject or {}).get(key)
        if isinstance(value, (list, tuple)):
            return {str(v).strip().lower() for v in value}
        if value:
            return {str(v).strip().lower() for v in str(value).split(",")}
    return None


def _connection_id(grant: Grant, tenant: str) -> str:
    return str(uuid.uuid5(_NS, f"{grant.client_id}/{tenant}"))


_5XX = {501: ("NotImplementedException", "The method has not been implemented"),
        503: ("NotAvailableException", "The Xero API is temporarily unavailable")}


class XeroEmulator:
    """The ASGI app (`app`) over one organisation (`state`), with Xero's per-tenant limits: the
    `minute`, `day` and `app_minute` sliding windows on the emulator clock and the `gate`."""

    def __init__(self, core: EmulatorCore, state: XeroState, extra_tenants: dict[str, str] | None = None):
        self.core, self.state, self.tenant_id = core, state, state.tenant_id
        self.extra_tenants = {k.lower(): v for k, v in (extra_tenants or {}).items()}
        core.oauth.consent = Consent("Xero", "organisation", self._tenants, subject_key="tenantId", multiple=True)
        self.minute = SlidingWindow(core.clock, 60, 60, "minute")
        self.day = SlidingWindow(core.clock, 5000, 86400, "day")
        self.app_minute = SlidingWindow(core.clock, 10_000, 60, "appminute")
        self.gate, self.hold_ms, self.write_delay_ms = ConcurrencyGate(5), 0, 0
        self._replies: dict[tuple[str, str, str], tuple[float, int, Any]] = {}  # Idempotency-Key -> first response
        self.app = core.build_app(
            api_routes=[*(Route(path, self._connections) for path in CONNECTIONS),
                        *(Route(path + "/{connection_id}", self._delete_connection, methods=["DELETE"]) for path in CONNECTIONS),
                        Route("/connect/revocation", self._revocation, methods=["POST"]),
                        Route(API + "{rest:path}", self._api, methods=["GET", "PUT", "POST", "DELETE"])],
            oauth_token_path="/connect/token",
            oauth_authorize_path="/identity/connect/authorize",
            is_api_path=lambda path: path.startswith(("/api.xro/", "/connections", "/Connections")),
            unauthorized_response=lambda reason: JSONResponse(problem(401, "Unauthorized"), status_code=401),
            throttle_response=self._throttle,
            error_response=self._error,
            admin_routes=[Route(f"{ADMIN_PREFIX}/mutate", self._admin_mutate, methods=["POST"]),
                          Route(f"{ADMIN_PREFIX}/limits", self._admin_limits, methods=["GET", "POST"])],
        )

    # ---- limits ------------------------------------------------------------------------------------
    def set_limits(self, minute: int | None = None, day: int | None = None, concurrent: int | None = None,
                   app_minute: int | None = None, hold_ms: int | None = None, reset: bool = False) -> dict[str, Any]:
        """Change limits at run time (tests shrink the day limit); `reset` forgets counted calls."""
        for window, value in ((self.minute, minute), (self.day, day), (self.app_minute, app_minute)):
            window.limit = window.limit if value is None else int(value)
            if reset:
                window.reset()
        self.gate.limit = self.gate.limit if concurrent is None else int(concurrent)
        self.hold_ms = self.hold_ms if hold_ms is None else int(hold_ms)
        return self.limits()

    def limits(self) -> dict[str, Any]:
        return {"minute": self.minute.limit, "day": self.day.limit, "concurrent": self.gate.limit, "app_minute": self.app_minute.limit,
                "hold_ms": self.hold_ms}

    def _limited(self, tenant: str, problem_name: str, seconds: float, retry_after: str | None = None) -> Response:
        headers = {**self._headers(tenant), "Retry-After": retry_after or str(max(1, math.ceil(seconds))), "X-Rate-Limit-Problem": problem_name}
        if problem_name == "minute":
            headers["X-MinLimit-Remaining"] = "0"
        return JSONResponse(problem(429, "Too Many Requests", f"Rate limit exceeded: {problem_name}"), status_code=429, headers=headers)

    def _headers(self, tenant: str) -> dict[str, str]:
        return {"X-MinLimit-Remaining": str(self.minute.peek(tenant).remaining), "X-DayLimit-Remaining": str(self.day.peek(tenant).remaining),
                "X-AppMinLimit-Remaining": str(self.app_minute.peek("app").remaining)}

    def _scope_tenant(self, scope: Scope) -> str:
        tenant = dict(scope.get("headers") or []).get(b"xero-tenant-id", b"").decode("latin-1").strip().lower()
        return tenant if tenant == self.tenant_id else ""

    def _throttle(self, retry_after: str) -> Any:
        """The fault injector's 429, shaped like a real minute-limit refusal."""
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self._limited(self._scope_tenant(scope), "minute", 0, retry_after)(scope, receive, send)
        return app

    def _error(self, status: int) -> Any:
        """The fault injector's 5xx in Xero's exception shape, with the limit headers."""
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            type_, message = _5XX.get(status, ("InternalServerException", "An unexpected error occurred in Xero"))
            tenant = self._scope_tenant(scope)
            headers = self._headers(tenant) if tenant else {}
            await JSONResponse({"Type": type_, "Message": message}, status_code=status, headers=headers)(scope, receive, send)
        return app

    # ---- API ---------------------------------------------------------------------------------------
    def _tenants(self) -> list[tuple[str, str]]:
        """Every organisation the emulated user has: (tenant id, name)."""
        return [(self.tenant_id, self.state.name), *self.extra_tenants.items()]

    def _granted(self, grant: Grant) -> list[tuple[str, str]]:
        allowed = _grant_tenants(grant)
        return [(t, name) for t, name in self._tenants() if allowed is None or t in allowed]

    async def _connections(self, request: Request) -> Response:
        grant = self.core.oauth.authenticate(request)
        stamp = self.core.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        return JSONResponse([{"id": _connection_id(grant, t), "authEventId": str(uuid.uuid5(_NS, f"auth/{t}")),
                              "tenantId": t, "tenantType": "ORGANISATION", "tenantName": name,
                              "createdDateUtc": stamp, "updatedDateUtc": stamp} for t, name in self._granted(grant)])

    async def _delete_connection(self, request: Request) -> Response:
        """Disconnect one organisation from the grant (every token of the grant loses it)."""
        grant = self.core.oauth.authenticate(request)
        granted = self._granted(grant)
        target = next((t for t, _ in granted if _connection_id(grant, t) == request.path_params["connection_id"]), None)
        if target is None:
            return JSONResponse(problem(404, "Not Found", "The connection was not found"), status_code=404)
        grant.subject = {**{k: v for k, v in grant.subject.items() if k not in _TENANT_KEYS},
                         "tenantId": [t for t, _ in granted if t != target]}
        return Response(status_code=204)

    async def _revocation(self, request: Request) -> Response:
        form = dict(await request.form())
        client_id, secret = client_credentials(request, form)
        if client_id not in self.core.oauth.clients or self.core.oauth.clients[client_id] != (secret or ""):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if not form.get("token"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        self.core.oauth.revoke_grant(str(form["token"]))
        return Response(status_code=200)

    async def _api(self, request: Request) -> Response:
        """Bearer (401) -> tenant (403) -> limits (429) -> the call; limit headers on the answer."""
        grant = self.core.oauth.authenticate(request)
        tenant, allowed = request.headers.get("xero-tenant-id", "").strip().lower(), _grant_tenants(grant)
        if tenant != self.tenant_id or (allowed is not None and tenant not in allowed):
            return JSONResponse(problem(403, "Forbidden"), status_code=403)
        if not self.gate.enter(tenant):
            return self._limited(tenant, "concurrent", 1)
        try:
            now, day = self.core.clock.time(), self.day.peek(tenant)
            if not day.allowed:
                return self._limited(tenant, "day", day.reset_at - now)
            for name, window, key in (("minute", self.minute, tenant), ("appminute", self.app_minute, "app")):
                verdict = window.hit(key)
                if not verdict.allowed:
                    return self._limited(tenant, name, verdict.reset_at - now)
            self.day.hit(tenant)
            if self.hold_ms:
                await asyncio.sleep(self.hold_ms / 1000)
            key = request.headers.get("idempotency-key") if request.method in ("PUT", "POST") else None
            stored = self._replies.get((tenant, key or "", request.url.path))
            if key and stored and self.core.clock.time() - stored[0] <= 86400:
                status, body = stored[1:]
            else:
                try:
                    if key is not None and len(key) > 128:
                        raise invalid("Idempotency-Key must be 128 characters or less")
                    status, body = 200, await self._call(request, grant)
                except XeroError as exc:
                    status, body = exc.status, exc.body
                if key:
                    self._replies[(tenant, key, request.url.path)] = (self.core.clock.time(), status, body)
            if self.write_delay_ms and request.method in ("PUT", "POST"):
                await asyncio.sleep(self.write_delay_ms / 1000)
            return JSONResponse(body, status_code=status, headers=self._headers(tenant))
        finally:
            self.gate.leave(tenant)

    def _envelope(self, grant: Grant, payload: dict[str, Any], pagination: dict[str, int] | None = None) -> dict[str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": grant.client_id, "DateTimeUTC": ms_date(self.core.clock.time(), offset=False),
                **({"pagination": pagination} if pagination else {}), **payload}

    async def _call(self, request: Request, grant: Grant) -> dict[str, Any]:
        parts = [p for p in request.path_params["rest"].split("/") if p]
        resource, ident, method = (parts[0].lower() if parts else ""), (parts[1] if len(parts) > 1 else None), request.method
        entity = ENTITIES.get(resource)
        if not ((resource == "organisation" and len(parts) == 1) or (entity and len(parts) <= 2)):
            raise not_found()
        if method == "GET":
            if not entity:
                return self._envelope(grant, {"Organisations": [self.organisation()]})
            if ident:
                return self._envelope(grant, {entity + "s": [self.state.render(entity, self.state.get(entity, ident))]})
            return self._list(request, grant, entity)
        if not entity or method not in ("PUT", "POST") or (method == "PUT" and ident):
            raise exception(405, "MethodNotAllowedException", "The method is not allowed for this resource")
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise exception(400, "PostDataInvalidException", "The request body is not valid JSON", 11) from None
        plural = entity + "s"
        items = body.get(plural) if isinstance(body, dict) and plural in body else [body] if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise exception(400, "PostDataInvalidException", f'Expected {{"{plural}": [...]}} or one {entity} object', 11)
        summarize = request.query_params.get("summarizeErrors", "true").lower() != "false"
        mode = "update" if ident else ("create" if method == "PUT" else "upsert")
        return self._envelope(grant, {plural: self.state.save(entity, items, mode=mode, target=ident, summarize=summarize)})

    def _list(self, request: Request, grant: Grant, entity: str) -> dict[str, Any]:
        records = self.state.query(entity, dict(request.query_params), parse_since(request.headers.get("if-modified-since")))
        if entity == "Account":  # the whole chart of accounts, never paged
            return self._envelope(grant, {"Accounts": [self.state.render(entity, r) for r in records]})
        lower = {k.lower(): v for k, v in request.query_params.items()}
        try:
            page, size = max(1, int(lower.get("page") or 1)), int(lower.get("pagesize") or DEFAULT_PAGE_SIZE)
        except ValueError:
            raise invalid("page and pageSize must be whole numbers") from None
        if size < 1:
            raise invalid("pageSize must be between 1 and 1000")
        size = min(size, MAX_PAGE_SIZE)
        rows = [self.state.render(entity, r) for r in records[(page - 1) * size: page * size]]
        pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(len(records) / size), "itemCount": len(records)}
        return self._envelope(grant, {entity + "s": rows}, pagination)

    def organisation(self) -> dict[str, Any]:
        return {"OrganisationID": self.tenant_id, "Name": self.state.name, "LegalName": self.state.name, "PaysTax": True, "Version": "US",
                "OrganisationType": "COMPANY", "BaseCurrency": "USD", "CountryCode": "US", "IsDemoCompany": False, "OrganisationStatus": "ACTIVE",
                "FinancialYearEndDay": 31, "FinancialYearEndMonth": 12, "Timezone": "EASTERNSTANDARDTIME", "ShortCode": "!hub01",
                "Edition": "BUSINESS", "Class": "STANDARD", "CreatedDateUTC": ms_date(day_ts(_GEN_START))}

    # ---- admin -------------------------------------------------------------------------------------
    async def _admin_mutate(self, request: Request) -> Response:
        body = await request.json()
        try:
            return JSONResponse(self.state.mutate(body.get("op"), body.get("entity"), body.get("id"), body.get("fields")))
        except XeroError as exc:
            return JSONResponse(exc.body, status_code=exc.status)

    async def _admin_limits(self, request: Request) -> Response:
        try:
            return JSONResponse(self.set_limits(**(await request.json())) if request.method == "POST" else self.limits())
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)


def create_emulator(*, contacts: int = 5, invoices: int = 5, accounts: int = 10, seed: int = 0, tenant_id: str = DEFAULT_TENANT,
                    clients: dict[str, str] | None = None, extra_tenants: dict[str, str] | None = None,
                    trade: str = "restaurant") -> XeroEmulator:
    """A Xero emulator with generated data; `clients` (client_id -> secret) may use its OAuth server;
    `extra_tenants` (id -> name) are more organisations of the emulated user, without data;
    `trade`: whose bill lines (emulators/bill_lines.py)."""
    core = EmulatorCore("xero", POLICY)
    for client_id, secret in (clients or {"hub-demo": "hub-demo-secret"}).items():
        core.oauth.register_client(client_id, secret)
    state = XeroState(core.clock, tenant_id.lower())
    state.generate(contacts=contacts, invoices=invoices, accounts=accounts, seed=seed, trade=trade)
    return XeroEmulator(core, state, extra_tenants)
