"""Stripe's wire conventions, independent of any resource: form bodies with nested keys, the
error body, ids, list envelopes and their paging, `expand[]`, and idempotency keys.

Form keys (what stripe-python's `_api_encode` sends, and what curl users write):
`a[b][c]=1` -> {"a": {"b": {"c": "1"}}}; `a[0][b]=1` -> {"a": [{"b": "1"}]}; `a[]=x&a[]=y` ->
{"a": ["x", "y"]}. Values stay strings (Stripe coerces per parameter); an empty value means
"unset" where Stripe allows it (`cancel_at=`, `metadata[k]=`, `default_payment_method=`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def new_id(prefix: str, n: int = 24) -> str:
    """`cus_` + 24 base62 characters: the shape of Stripe's object ids."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


# ---- errors -------------------------------------------------------------------------------------
class StripeError(Exception):
    """An API error as Stripe reports it. `saved=False` for errors raised before the endpoint
    starts executing (validation): Stripe keeps no idempotent result for those."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, saved: bool = True, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param, self.saved, self.extra = (
            status, message, type, code, param, saved, extra)

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error.update({k: v for k, v in self.extra.items() if v is not None})
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False)


def invalid(param: str, message: str, code: str = "parameter_invalid_empty") -> StripeError:
    return StripeError(400, message, code=code, param=param, saved=False)


def unknown_param(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param, saved=False)


def no_such(kind: str, ident: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def state_error(message: str, param: str | None = None) -> StripeError:
    return StripeError(400, message, param=param)


# ---- form bodies --------------------------------------------------------------------------------
def _listify(node: Any) -> Any:
    """Dicts whose keys are all indexes become lists (ordered by index); recursively."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    elif isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def parse_form(text: str) -> dict[str, Any]:
    """A form-encoded body or query string as nested dicts and lists (see the module docstring)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        m = _KEY.match(key)
        if not m:
            raise invalid(key, f"Invalid parameter name: {key}", "parameter_unknown")
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):  # `a[]` appends
                if last:
                    node.append(value)
                    break
                child: Any = [] if nxt == "" else {}
                node.append(child)
                node = child
                continue
            if last:
                node[part] = value
            else:
                if part not in node or not isinstance(node[part], (dict, list)):
                    node[part] = [] if nxt == "" else {}
                node = node[part]
    return _listify(root)


# ---- parameter coercion ------------------------------------------------------------------------
def as_int(params: dict, name: str, default: Any = None, *, minimum: int | None = None) -> Any:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    if minimum is not None and number < minimum:
        raise invalid(name, f"This value must be greater than or equal to {minimum}.", "parameter_invalid_integer")
    return number


def as_bool(params: dict, name: str, default: Any = None) -> Any:
    value = params.get(name)
    if value is None or value == "":
        return default
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise invalid(name, f"Invalid boolean: {value}", "parameter_invalid_string_blank")


def as_list(params: dict, name: str) -> list:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, dict):  # a[x][..] where a list was meant
        raise invalid(name, f"Invalid array: {name}", "parameter_invalid_array")
    return value if isinstance(value, list) else [value]


def metadata(params: dict, old: dict | None = None) -> dict[str, str]:
    """Stripe merges metadata keys; an empty value deletes one; `metadata=` clears all."""
    value = params.get("metadata")
    out = dict(old or {})
    if value == "":
        return {}
    if value is None:
        return out
    if not isinstance(value, dict):
        raise invalid("metadata", "Invalid hash", "parameter_invalid_hash")
    for k, v in value.items():
        if v == "":
            out.pop(k, None)
        else:
            out[k] = str(v)
    return out


def check_params(params: dict, allowed: Iterable[str]) -> None:
    allowed = set(allowed) | {"expand"}
    for name in params:
        if name not in allowed:
            raise unknown_param(name)


# ---- lists --------------------------------------------------------------------------------------
def paginate(items: list[dict], params: dict, url: str) -> dict[str, Any]:
    """A list envelope of `items` (already newest first) with Stripe's cursor paging:
    `limit` 1..100 (default 10), `starting_after` (the items after that id), `ending_before`
    (the `limit` items just before that id)."""
    limit = as_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("limit", "This value must be between 1 and 100 (inclusive).", "parameter_invalid_integer")
    after, before = params.get("starting_after") or None, params.get("ending_before") or None
    if after and before:
        raise state_error("You may only specify one of these parameters: ending_before, starting_after.")
    ids = [item["id"] for item in items]
    if after:
        if after not in ids:
            raise no_such(_kind(after), after, "starting_after")
        rest = items[ids.index(after) + 1:]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise no_such(_kind(before), before, "ending_before")
        head = items[:ids.index(before)]
        page, has_more = head[-limit:], len(head) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def list_object(items: list[dict], url: str) -> dict[str, Any]:
    """A nested list (a subscription's items, an invoice's lines): everything on one page."""
    return {"object": "list", "data": items, "has_more": False, "total_count": len(items), "url": url}


_KINDS = {"cus": "customer", "prod": "product", "price": "price", "pm": "payment_method", "sub": "subscription",
          "si": "subscription_item", "in": "invoice", "ii": "invoiceitem", "il": "line_item", "evt": "event",
          "we": "webhook_endpoint", "clock": "test_helpers.test_clock", "cs": "checkout.session", "pi": "payment_intent",
          "bps": "billing_portal.session", "bpc": "billing_portal.configuration", "seti": "setup_intent"}


def _kind(ident: str) -> str:
    return _KINDS.get(ident.split("_", 1)[0], "object")


def kind_of(ident: str) -> str:
    return _kind(ident)


# ---- expand ------------------------------------------------------------------------------------
def expand(obj: Any, paths: list[str], resolve: Callable[[str], dict | None]) -> Any:
    """Replace the ids at each dotted path (`customer`, `latest_invoice.payments`,
    `data.customer` in a list, `items.data.price.product`) by the objects `resolve` returns.
    A path that names no expandable field -> 400, as Stripe answers."""
    for path in paths:
        if not isinstance(path, str) or path.count(".") > 3:
            raise invalid("expand", f"You cannot expand more than 4 levels of a property: {path}", "parameter_invalid_string_blank")
        _expand_path(obj, path.split("."), path, resolve)
    return obj


def _expand_path(node: Any, parts: list[str], full: str, resolve: Callable[[str], dict | None]) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_path(item, parts, full, resolve)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head not in node:
        raise state_error(f"This property cannot be expanded ({full}).", "expand")
    value = node[head]
    if isinstance(value, str):
        found = resolve(value)
        if found is None:
            raise state_error(f"This property cannot be expanded ({full}).", "expand")
        node[head] = value = found
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        node[head] = value = [resolve(v) or v for v in value]
    if rest and value is not None:
        _expand_path(value, rest, full, resolve)


# ---- idempotency ---------------------------------------------------------------------------------
@dataclass
class _Saved:
    fingerprint: str
    created: float
    status: int = 0
    body: bytes = b""
    done: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyKeys:
    """Saved results per (API key, Idempotency-Key), kept `ttl_s` of emulator time (24 h)."""

    def __init__(self, clock: Any, ttl_s: float = 24 * 3600):
        self.clock, self.ttl_s = clock, ttl_s
        self._saved: dict[tuple[str, str], _Saved] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(method: str, path: str, params: dict) -> str:
        return hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()

    def begin(self, api_key: str, key: str, fingerprint: str) -> _Saved | None:
        """The saved result to replay, None to go ahead (the key is then reserved); raises the
        idempotency errors Stripe gives for a key reused with other parameters or still in use."""
        now = self.clock.time()
        with self._lock:
            for k in [k for k, s in self._saved.items() if s.created < now - self.ttl_s]:
                del self._saved[k]
            saved = self._saved.get((api_key, key))
            if saved is None:
                self._saved[(api_key, key)] = _Saved(fingerprint, now)
                return None
        if saved.fingerprint != fingerprint:
            raise StripeError(400, "Keys for idempotent requests can only be used with the same parameters they were first "
                              f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                              type="idempotency_error", saved=False)
        if not saved.done:
            raise StripeError(409, "There is currently another in-progress request using this Idempotent Key (that probably "
                              "means you submitted twice, and the other request is still going through): "
                              f"{key}. Please try again later.", type="idempotency_error", code="idempotency_key_in_use", saved=False)
        return saved

    def finish(self, api_key: str, key: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            saved = self._saved.get((api_key, key))
            if saved is not None:
                saved.status, saved.body, saved.headers, saved.done = status, body, headers, True

    def forget(self, api_key: str, key: str) -> None:
        """No result kept (validation failed before the endpoint ran): the key may be used again."""
        with self._lock:
            self._saved.pop((api_key, key), None)


# ---- search --------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"""\s*(?P<neg>-)?(?P<field>[a-z_]+(?:\[['"][^'"]+['"]\])?)\s*(?P<op>:|~|>=|<=|>|<)\s*"""
                     r"""(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<num>-?\d+)|(?P<word>null))\s*""")


def search_matcher(query: str, fields: Iterable[str]) -> Callable[[dict], bool]:
    """Stripe's search query language, the common part: `field:'value'` (exact), `field~'sub'`
    (substring, 3+ characters), `field>n` (numbers), `metadata['key']:'value'`, `-` to negate,
    clauses joined by all AND or all OR (mixing is refused, as Stripe does)."""
    if not query or not query.strip():
        raise missing("query")
    joiner = " OR " if " OR " in query else " AND "
    if " OR " in query and " AND " in query:
        raise invalid("query", "Search queries cannot mix AND and OR.", "search_query_invalid")
    tests = []
    for part in query.split(joiner):
        m = _CLAUSE.fullmatch(part)
        if not m:
            raise invalid("query", f"Invalid search query: could not parse '{part.strip()}'.", "search_query_invalid")
        name, op = m["field"], m["op"]
        key = None
        if name.startswith("metadata["):
            name, key = "metadata", name[10:-2]
        elif name not in fields:
            raise invalid("query", f"Field '{name}' is an unsupported search field.", "search_query_invalid")
        want = m["num"] if m["num"] is not None else (m["s1"] if m["s1"] is not None else m["s2"])
        tests.append((name, key, op, want, bool(m["neg"])))

    def value_of(obj: dict, name: str, key: str | None) -> Any:
        value = obj.get(name)
        return (value or {}).get(key) if key is not None else value

    def one(obj: dict, test: tuple) -> bool:
        name, key, op, want, neg = test
        value = value_of(obj, name, key)
        if op == ":":
            hit = str(value).lower() == str(want).lower() if value is not None else want is None
        elif op == "~":
            hit = value is not None and str(want).lower() in str(value).lower()
        else:
            try:
                a, b = float(value), float(want)
            except (TypeError, ValueError):
                return False
            hit = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
        return hit != neg

    if joiner == " OR ":
        return lambda obj: any(one(obj, t) for t in tests)
    return lambda obj: all(one(obj, t) for t in tests)


def search_page(items: list[dict], params: dict, url: str) -> dict[str, Any]:
    """A `search_result` envelope: `limit` (default 10) and the opaque `page` cursor."""
    limit = as_int(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("limit", "This value must be between 1 and 100 (inclusive).", "parameter_invalid_integer")
    page = params.get("page") or ""
    start = int(page[5:]) if page.startswith("page_") and page[5:].isdigit() else 0
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return {"object": "search_result", "data": chunk, "has_more": more, "next_page": f"page_{start + limit}" if more else None,
            "url": url}
