"""The HTTP side: Stripe's `/v1` routes, authentication, idempotency, expand and errors around
the billing state, the hosted pages, and the admin routes."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore, admin_action
from emulators.stripe import hosted
from emulators.stripe.billing import LIVE, Billing
from emulators.stripe.sessions import Sessions
from emulators.stripe.webhooks import Webhooks
from emulators.stripe.wire import (IdempotencyKeys, StripeError, as_int, as_list, check_params, expand, metadata, missing, paginate,
                                   parse_form, search_matcher, search_page)

API_VERSION = "2026-10-28.endive"
log = logging.getLogger(__name__)
Handler = Callable[..., Any]


def _created_filter(items: list[dict], p: dict, field: str = "created") -> list[dict]:
    c = p.get(field)
    if c is None or c == "":
        return items
    if not isinstance(c, dict):
        value = as_int(p, field)
        return [i for i in items if i[field] == value]
    ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
    for op, fn in ops.items():
        if op in c:
            bound = as_int(c, op)
            items = [i for i in items if fn(i[field], bound)]
    return items


class StripeEmulator:
    def __init__(self, core: EmulatorCore, billing: Billing, webhooks: Webhooks, api_keys: set[str]):
        self.core, self.billing, self.webhooks, self.api_keys = core, billing, webhooks, api_keys
        self.sessions = Sessions(billing)
        self.idempotency = IdempotencyKeys(core.clock)
        self.base_url: str | None = None
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self._table()
        self.app = core.build_app(
            api_routes=[Route("/v1/{rest:path}", self._api, methods=["GET", "POST", "DELETE"]), *self._hosted_routes()],
            oauth_token_path="/oauth/token", oauth_authorize_path="/oauth/authorize",
            is_api_path=lambda path: path.startswith("/v1/"),
            unauthorized_response=lambda reason: self._error(StripeError(401, "Invalid API Key provided.")),
            throttle_response=lambda retry_after: self._error(StripeError(
                429, "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                code="rate_limit"), {"Retry-After": retry_after}),
            error_response=lambda status: self._error(StripeError(status, "An unknown error occurred", type="api_error")),
            admin_routes=self._admin_routes())

    # ---- the route table ----------------------------------------------------------------------------
    def _table(self) -> None:
        b, s, w = self.billing, self.sessions, self.webhooks
        ID = r"([^/]+)"

        def add(method: str, path: str, handler: Handler) -> None:
            self.routes.append((method, re.compile("^" + path.replace("{id}", ID) + "$"), handler))

        def listing(kind: str, url: str, filters: Callable[[dict, dict], bool] | None = None) -> Handler:
            def handler(p: dict) -> dict:
                # newest first by `created` (objects on a test clock carry its time), newest made first on a tie
                items = sorted((o for o in b.all(kind) if (filters is None or filters(o, p))), key=lambda o: o["created"],
                               reverse=True)
                return paginate(_created_filter(items, p), p, url)
            return handler

        def eq(field: str, param: str | None = None) -> Callable[[dict, dict], bool]:
            param = param or field
            return lambda o, p: not p.get(param) or o.get(field) == p[param]

        def both(*tests: Callable[[dict, dict], bool]) -> Callable[[dict, dict], bool]:
            return lambda o, p: all(t(o, p) for t in tests)

        def flag(field: str) -> Callable[[dict, dict], bool]:
            return lambda o, p: p.get(field) in (None, "") or o[field] == (str(p[field]).lower() == "true")

        # search (before the `{id}` routes: "search" is not an id)
        searchable = {"customer": ("email", "name", "phone", "created", "description", "test_clock"),
                      "product": ("active", "name", "description", "created", "url"),
                      "price": ("active", "currency", "lookup_key", "product", "type", "created"),
                      "subscription": ("status", "created", "customer"),
                      "invoice": ("customer", "status", "subscription", "total", "number", "created", "currency")}
        for kind, fields in searchable.items():
            plural = f"/v1/{kind}s"

            def search(p: dict, kind: str = kind, fields: tuple = fields, url: str = plural + "/search") -> dict:
                test = search_matcher(p.get("query") or "", fields)
                view = (lambda o: {**o, "subscription": b._sub_of(o)}) if kind == "invoice" else (lambda o: o)
                return search_page([o for o in b.all(kind) if test(view(o))], p, url)

            add("GET", plural + "/search", search)
        # customers
        add("GET", "/v1/customers", listing("customer", "/v1/customers", both(eq("email"), eq("test_clock"))))
        add("POST", "/v1/customers", b.create_customer)
        add("GET", "/v1/customers/{id}", lambda p, i: b.deleted_stub("customer", i) or b.get("customer", i))
        add("POST", "/v1/customers/{id}", lambda p, i: b.update_customer(i, p))
        add("DELETE", "/v1/customers/{id}", lambda p, i: b.delete_customer(i))
        add("GET", "/v1/customers/{id}/payment_methods", lambda p, i: (b.get("customer", i), paginate(
            [pm for pm in b.all("payment_method") if pm["customer"] == i], p, f"/v1/customers/{i}/payment_methods"))[1])
        # products and prices
        add("GET", "/v1/products", listing("product", "/v1/products",
                                           both(flag("active"), lambda o, p: not p.get("ids") or o["id"] in as_list(p, "ids"))))
        add("POST", "/v1/products", b.create_product)
        add("GET", "/v1/products/{id}", lambda p, i: b.get("product", i))
        add("POST", "/v1/products/{id}", lambda p, i: b.update_product(i, p))
        add("DELETE", "/v1/products/{id}", lambda p, i: b.delete_product(i))

        def price_filter(o: dict, p: dict) -> bool:
            if p.get("lookup_keys") and o["lookup_key"] not in as_list(p, "lookup_keys"):
                return False
            if p.get("type") and o["type"] != p["type"]:
                return False
            recurring = p.get("recurring") if isinstance(p.get("recurring"), dict) else {}
            if recurring.get("interval") and (o["recurring"] or {}).get("interval") != recurring["interval"]:
                return False
            return eq("product")(o, p) and eq("currency")(o, p) and flag("active")(o, p)

        add("GET", "/v1/prices", listing("price", "/v1/prices", price_filter))
        add("POST", "/v1/prices", b.create_price)
        add("GET", "/v1/prices/{id}", lambda p, i: b.get("price", i))
        add("POST", "/v1/prices/{id}", lambda p, i: b.update_price(i, p))
        # payment methods
        add("GET", "/v1/payment_methods", listing("payment_method", "/v1/payment_methods",
                                                  lambda o, p: (not p.get("customer") or o["customer"] == p["customer"])
                                                  and (not p.get("type") or o["type"] == p["type"])))
        add("POST", "/v1/payment_methods", b.create_payment_method)
        add("GET", "/v1/payment_methods/{id}", lambda p, i: b.get("payment_method", i))
        add("POST", "/v1/payment_methods/{id}", lambda p, i: self._update_pm(i, p))
        add("POST", "/v1/payment_methods/{id}/attach", lambda p, i: b.attach_payment_method(i, p.get("customer") or self._need(p, "customer"), "id"))
        add("POST", "/v1/payment_methods/{id}/detach", lambda p, i: b.detach_payment_method(i))

        # subscriptions
        def sub_filter(o: dict, p: dict) -> bool:
            status = p.get("status")
            if status in (None, ""):
                if o["status"] in ("canceled", "incomplete_expired"):
                    return False
            elif status == "ended":
                if o["status"] not in ("canceled", "incomplete_expired"):
                    return False
            elif status != "all" and o["status"] != status:
                return False
            if p.get("price") and p["price"] not in [b.objects[i]["price"] for i in o["items"]["data"]]:
                return False
            return eq("customer")(o, p) and eq("test_clock")(o, p)

        add("GET", "/v1/subscriptions", listing("subscription", "/v1/subscriptions", sub_filter))
        add("POST", "/v1/subscriptions", b.create_subscription)
        add("GET", "/v1/subscriptions/{id}", lambda p, i: b.get("subscription", i))
        add("POST", "/v1/subscriptions/{id}", lambda p, i: b.update_subscription(i, p))
        add("DELETE", "/v1/subscriptions/{id}", lambda p, i: b.cancel_subscription(i, p))
        add("GET", "/v1/subscription_items", lambda p: paginate(
            [b.objects[i] for i in b.get("subscription", p.get("subscription") or self._need(p, "subscription"),
                                         "subscription")["items"]["data"]], p, "/v1/subscription_items"))
        add("GET", "/v1/subscription_items/{id}", lambda p, i: b.get("subscription_item", i))
        # invoices
        add("GET", "/v1/invoices", listing("invoice", "/v1/invoices", both(
            eq("customer"), eq("status"), eq("collection_method"),
            lambda o, p: not p.get("subscription") or b._sub_of(o) == p["subscription"])))
        add("POST", "/v1/invoices", b.create_invoice)
        add("POST", "/v1/invoices/create_preview", b.preview_invoice)
        add("GET", "/v1/invoices/upcoming", self._legacy_upcoming)
        add("GET", "/v1/invoices/{id}", lambda p, i: b.get("invoice", i))
        add("POST", "/v1/invoices/{id}", lambda p, i: b.update_invoice(i, p))
        add("DELETE", "/v1/invoices/{id}", lambda p, i: b.delete_invoice(i))
        add("POST", "/v1/invoices/{id}/finalize", lambda p, i: b.finalize_invoice(i, p))
        add("POST", "/v1/invoices/{id}/pay", lambda p, i: b.pay_invoice(i, p))
        add("POST", "/v1/invoices/{id}/void", lambda p, i: b.void_invoice(i))
        add("POST", "/v1/invoices/{id}/mark_uncollectible", lambda p, i: b.mark_uncollectible(i))
        add("GET", "/v1/invoices/{id}/lines", lambda p, i: paginate(b.get("invoice", i)["lines"]["data"], p, f"/v1/invoices/{i}/lines"))
        add("GET", "/v1/invoiceitems", listing("invoiceitem", "/v1/invoiceitems", both(
            eq("customer"), eq("invoice"), lambda o, p: p.get("pending") in (None, "") or (o["invoice"] is None) == (p["pending"] == "true"))))
        add("POST", "/v1/invoiceitems", b.create_invoice_item)
        add("GET", "/v1/invoiceitems/{id}", lambda p, i: b.get("invoiceitem", i))
        add("DELETE", "/v1/invoiceitems/{id}", lambda p, i: b.delete_invoice_item(i))
        add("GET", "/v1/payment_intents", listing("payment_intent", "/v1/payment_intents", eq("customer")))
        add("GET", "/v1/payment_intents/{id}", lambda p, i: b.get("payment_intent", i))
        add("GET", "/v1/setup_intents", listing("setup_intent", "/v1/setup_intents", both(eq("customer"), eq("payment_method"))))
        add("POST", "/v1/setup_intents", b.create_setup_intent)
        add("GET", "/v1/setup_intents/{id}", lambda p, i: b.get("setup_intent", i))
        add("POST", "/v1/setup_intents/{id}/confirm", lambda p, i: b.confirm_setup_intent(i, p))
        add("POST", "/v1/setup_intents/{id}/cancel", lambda p, i: b.cancel_setup_intent(i, p))
        # events and webhooks
        add("GET", "/v1/events", listing("event", "/v1/events", lambda o, p: (not p.get("type") or _type_match(o["type"], p["type"]))
                                         and (not p.get("types") or o["type"] in as_list(p, "types"))))
        add("GET", "/v1/events/{id}", lambda p, i: b.get("event", i))
        add("GET", "/v1/webhook_endpoints", listing("webhook_endpoint", "/v1/webhook_endpoints"))
        add("POST", "/v1/webhook_endpoints", w.create)
        add("GET", "/v1/webhook_endpoints/{id}", lambda p, i: b.get("webhook_endpoint", i))
        add("POST", "/v1/webhook_endpoints/{id}", lambda p, i: w.update(i, p))
        add("DELETE", "/v1/webhook_endpoints/{id}", lambda p, i: w.delete(i))
        # test clocks
        add("GET", "/v1/test_helpers/test_clocks", listing("test_helpers.test_clock", "/v1/test_helpers/test_clocks"))
        add("POST", "/v1/test_helpers/test_clocks", b.create_test_clock)
        add("GET", "/v1/test_helpers/test_clocks/{id}", lambda p, i: b.get("test_helpers.test_clock", i))
        add("DELETE", "/v1/test_helpers/test_clocks/{id}", lambda p, i: b.delete_test_clock(i))
        add("POST", "/v1/test_helpers/test_clocks/{id}/advance", lambda p, i: b.advance_test_clock(i, p))
        # checkout and portal
        add("GET", "/v1/checkout/sessions", listing("checkout.session", "/v1/checkout/sessions",
                                                    both(eq("customer"), eq("subscription"), eq("status"))))
        add("POST", "/v1/checkout/sessions", s.create_checkout)
        add("GET", "/v1/checkout/sessions/{id}", lambda p, i: s.checkout(i))
        add("POST", "/v1/checkout/sessions/{id}/expire", lambda p, i: s.expire_checkout(i))
        add("GET", "/v1/checkout/sessions/{id}/line_items",
            lambda p, i: paginate(s.line_items(i), p, f"/v1/checkout/sessions/{i}/line_items"))
        configurations = listing("billing_portal.configuration", "/v1/billing_portal/configurations",
                                 both(flag("active"), flag("is_default")))
        # an account always has a default portal configuration (Stripe's is made in the Dashboard)
        add("GET", "/v1/billing_portal/configurations", lambda p: (s.default_configuration(), configurations(p))[1])
        add("POST", "/v1/billing_portal/configurations", s.create_portal_configuration)
        add("GET", "/v1/billing_portal/configurations/{id}", lambda p, i: b.get("billing_portal.configuration", i))
        add("POST", "/v1/billing_portal/configurations/{id}", lambda p, i: s.update_portal_configuration(i, p))
        add("POST", "/v1/billing_portal/sessions", s.create_portal_session)

    @staticmethod
    def _need(p: dict, name: str) -> Any:
        raise missing(name)

    def _update_pm(self, ident: str, p: dict) -> dict:
        check_params(p, ("billing_details", "metadata", "card", "allow_redisplay"))
        pm = self.billing.get("payment_method", ident)
        if isinstance(p.get("billing_details"), dict):
            pm["billing_details"].update({k: v or None for k, v in p["billing_details"].items() if k in pm["billing_details"]})
        if isinstance(p.get("card"), dict):
            for key in ("exp_month", "exp_year"):
                if p["card"].get(key):
                    pm["card"][key] = as_int(p["card"], key)
        pm["metadata"] = metadata(p, pm["metadata"])
        self.billing.emit("payment_method.updated", pm)
        return pm

    def _legacy_upcoming(self, p: dict) -> dict:
        """`GET /v1/invoices/upcoming`, removed in API version 2025-03-31 (stripe-python 12+ calls
        `create_preview`); answered for older clients with the same preview."""
        details = {k.removeprefix("subscription_"): v for k, v in p.items() if k.startswith("subscription_")}
        params = {k: v for k, v in p.items() if k in ("customer", "subscription")}
        if details:
            params["subscription_details"] = details
        return self.billing.preview_invoice(params)

    # ---- the API endpoint ------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        key = ""
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        if not key:
            raise StripeError(401, "You did not provide an API key. You need to provide your API key in the Authorization "
                              "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                              "https://stripe.com/docs/api#authentication for details, or we can help at "
                              "https://support.stripe.com/.", saved=False)
        if key not in self.api_keys:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)
            raise StripeError(401, f"Invalid API Key provided: {shown}", saved=False)
        return key

    async def _api(self, request: Request) -> Response:
        request_id = "req_" + secrets.token_hex(7)
        headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("stripe-version") or API_VERSION}
        method, path = request.method, request.url.path
        try:
            api_key = self._authenticate(request)
            if method == "POST":
                raw = (await request.body()).decode()
                if request.headers.get("content-type", "").startswith("application/json") and raw.strip():
                    raise StripeError(400, "Invalid request: Stripe's v1 API expects form-encoded parameters "
                                      "(application/x-www-form-urlencoded).", saved=False)
                params = parse_form(raw)
                query = parse_form(request.url.query)
                params = {**query, **params}
            else:
                params = parse_form(request.url.query)
        except StripeError as exc:
            return self._error(exc, headers, request_id)
        key = request.headers.get("idempotency-key") if method == "POST" else None
        if key:
            headers["Idempotency-Key"] = key
            try:
                saved = self.idempotency.begin(api_key, key, IdempotencyKeys.fingerprint(method, path, params))
            except StripeError as exc:
                return self._error(exc, headers, request_id)
            if saved is not None:
                return Response(saved.body, status_code=saved.status, media_type="application/json",
                                headers={**saved.headers, "Idempotent-Replayed": "true", "Original-Request": saved.headers.get("Request-Id", "")})
        status, body = self._dispatch(method, path, params, request, request_id, key)
        if key:
            if body.get("_saved", True):
                self.idempotency.finish(api_key, key, status, json.dumps(body, indent=2).encode(), dict(headers))
            else:
                self.idempotency.forget(api_key, key)
        body.pop("_saved", None)
        return Response(json.dumps(body, indent=2), status_code=status, media_type="application/json", headers=headers)

    def _dispatch(self, method: str, path: str, params: dict, request: Request, request_id: str,
                  key: str | None) -> tuple[int, dict]:
        b = self.billing
        for route_method, pattern, handler in self.routes:
            m = pattern.match(path)
            if m and route_method == method:
                break
        else:
            return 404, StripeError(404, f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                                    "or we can help at https://support.stripe.com/.").body(request_id)
        paths = params.pop("expand", None)
        paths = paths if isinstance(paths, list) else ([paths] if paths else [])
        with b.lock:
            b.base_url = self.base_url or str(request.base_url).rstrip("/")
            b.request = {"id": request_id if method != "GET" else None, "idempotency_key": key}
            try:
                b.run_due(None, b.now())
                result = handler(params, *m.groups())
                out = b.render(result) if result.get("object") not in ("list", "search_result") else {
                    **result, "data": [b.render(o) if o.get("object") else o for o in result["data"]]}
                if result.get("secret") and result.get("object") == "webhook_endpoint":
                    out["secret"] = result["secret"]
                return 200, expand(out, paths, b.resolve)
            except StripeError as exc:
                body = exc.body(request_id)
                body["_saved"] = exc.saved
                return exc.status, body
            except Exception:  # an emulator bug: answered as Stripe answers its own, and logged
                log.exception("stripe emulator: %s %s failed", method, path)
                return 500, StripeError(500, "An unknown error occurred", type="api_error").body(request_id)
            finally:
                b.request = {"id": None, "idempotency_key": None}

    @staticmethod
    def _error(exc: StripeError, headers: dict | None = None, request_id: str | None = None) -> Response:
        request_id = request_id or "req_" + secrets.token_hex(7)
        return JSONResponse(exc.body(request_id), status_code=exc.status, headers={"Request-Id": request_id, **(headers or {})})

    # ---- hosted pages ----------------------------------------------------------------------------------
    def _hosted_routes(self) -> list[Route]:
        return [Route("/c/pay/{id}", self._checkout_page, methods=["GET", "POST"]),
                Route("/c/pay/{id}/cancel", self._checkout_cancel),
                Route("/p/session/{token}", self._portal_page),
                Route("/p/session/{token}/{action}", self._portal_action, methods=["GET", "POST"]),
                Route("/i/{token}", self._invoice_page),
                Route("/i/{token}/pay", self._invoice_pay, methods=["POST"]),
                Route("/i/{token}/pdf", self._invoice_pdf)]

    def _html(self, text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status)

    async def _checkout_page(self, request: Request) -> Response:
        b, s, ident = self.billing, self.sessions, request.path_params["id"]
        form = dict(await request.form()) if request.method == "POST" else None
        with b.lock:
            b.base_url = self.base_url or str(request.base_url).rstrip("/")
            try:
                session = s.checkout(ident)
            except StripeError:
                return self._html(hosted.message_page("Not found", "This checkout session does not exist."), 404)
            h = b.hidden[ident]
            trial = h["trial_days"] or (round((h["trial_end"] - b.now()) / 86400) if h["trial_end"] else None)
            if form is None:
                return self._html(hosted.checkout_page(session, s.line_items(ident), trial))
            try:
                target = s.complete_checkout(ident, {k: str(v) for k, v in form.items()})
            except StripeError as exc:
                return self._html(hosted.checkout_page(session, s.line_items(ident), trial, exc.message), exc.status)
        return RedirectResponse(target, status_code=303)

    async def _checkout_cancel(self, request: Request) -> Response:
        with self.billing.lock:
            try:
                session = self.sessions.checkout(request.path_params["id"])
            except StripeError:
                return self._html(hosted.message_page("Not found", "This checkout session does not exist."), 404)
        if not session["cancel_url"]:
            return self._html(hosted.message_page("Checkout", "There is no page to go back to."))
        return RedirectResponse(session["cancel_url"], status_code=303)

    def _portal_view(self, token: str, session: dict, error: str | None = None, notice: str | None = None) -> str:
        b = self.billing
        customer = b.objects[session["customer"]]
        subs = [b.render(x) for x in b.all("subscription") if x["customer"] == customer["id"] and x["status"] in LIVE]
        pm_id = customer["invoice_settings"]["default_payment_method"] or next(
            (x["default_payment_method"] for x in subs if x["default_payment_method"]), None)
        card = b.objects[pm_id]["card"] if pm_id and pm_id in b.objects else None
        config = b.objects[session["configuration"]]
        invoices = [x for x in b.all("invoice") if x["customer"] == customer["id"]]
        products = {p["id"]: p["name"] for p in b.all("product")}
        return hosted.portal_page(token, customer, subs, card, self.sessions.portal_prices(config), invoices, config, products,
                                  error, notice)

    async def _portal_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        with self.billing.lock:
            session = self.sessions.portal(token)
            if session is None:
                return self._html(hosted.message_page("Not found", "This portal session does not exist or has expired."), 404)
            self.billing.run_due(None, self.billing.now())
            return self._html(self._portal_view(token, session))

    async def _portal_action(self, request: Request) -> Response:
        token, action = request.path_params["token"], request.path_params["action"]
        form = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
        b, s = self.billing, self.sessions
        with b.lock:
            session = s.portal(token)
            if session is None:
                return self._html(hosted.message_page("Not found", "This portal session does not exist or has expired."), 404)
            if action == "return":
                return RedirectResponse(session["return_url"], status_code=303)
            if request.method != "POST":
                return RedirectResponse(f"/p/session/{token}", status_code=303)
            b.base_url = self.base_url or str(request.base_url).rstrip("/")
            try:
                if action == "card":
                    s.portal_update_card(session, form)
                    notice = "Payment method updated."
                elif action == "cancel":
                    s.portal_cancel(session, form.get("subscription", ""))
                    notice = "Your plan will be canceled."
                elif action == "renew":
                    s.portal_renew(session, form.get("subscription", ""))
                    notice = "Your plan was renewed."
                elif action == "switch":
                    s.portal_switch(session, form.get("subscription", ""), form.get("price", ""))
                    notice = "Your plan was updated."
                else:
                    return self._html(hosted.message_page("Not found", "No such action."), 404)
            except StripeError as exc:
                return self._html(self._portal_view(token, session, error=exc.message), exc.status)
            return self._html(self._portal_view(token, session, notice=notice))

    def _invoice_by_token(self, token: str) -> dict | None:
        for invoice in self.billing.all("invoice"):
            if self.billing.hidden[invoice["id"]].get("token") == token:
                return invoice
        return None

    async def _invoice_page(self, request: Request) -> Response:
        with self.billing.lock:
            invoice = self._invoice_by_token(request.path_params["token"])
            if invoice is None:
                return self._html(hosted.message_page("Not found", "No such invoice."), 404)
            return self._html(hosted.invoice_page(invoice, request.path_params["token"]))

    async def _invoice_pay(self, request: Request) -> Response:
        """The payer's card on the hosted invoice page: attached to the customer, charged on-session."""
        token = request.path_params["token"]
        form = {k: str(v) for k, v in (await request.form()).items()}
        b = self.billing
        with b.lock:
            invoice = self._invoice_by_token(token)
            if invoice is None:
                return self._html(hosted.message_page("Not found", "No such invoice."), 404)
            try:
                pm = self.sessions.card_from_form(form)
                b.attach_payment_method(pm["id"], invoice["customer"], setup=True)
                b.pay_invoice(invoice["id"], {"payment_method": pm["id"]})
            except StripeError as exc:
                return self._html(hosted.invoice_page(invoice, token, exc.message), exc.status)
            return self._html(hosted.invoice_page(invoice, token))

    async def _invoice_pdf(self, request: Request) -> Response:
        with self.billing.lock:
            invoice = self._invoice_by_token(request.path_params["token"])
            if invoice is None:
                return self._html(hosted.message_page("Not found", "No such invoice."), 404)
            return Response(hosted.invoice_pdf(invoice), media_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="Invoice-{invoice["number"]}.pdf"'})

    # ---- admin -------------------------------------------------------------------------------------------
    def _admin_routes(self) -> list[Route]:
        def deliveries(body: dict) -> dict:
            with self.webhooks.dispatcher.lock:
                return {"deliveries": [dict(d) for d in self.webhooks.deliveries],
                        "attempts": list(self.webhooks.dispatcher.attempts)}

        def keys(body: dict) -> dict:
            key = body["key"]
            if not isinstance(key, str) or not key.startswith("sk_test_"):
                raise ValueError("key must be a string starting with sk_test_")
            self.api_keys.add(key)
            return {"ok": True}

        return [Route(f"{ADMIN_PREFIX}/deliveries", admin_action(deliveries), methods=["GET", "POST"]),
                Route(f"{ADMIN_PREFIX}/keys", admin_action(keys), methods=["POST"])]

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        return self.webhooks.wait_idle(timeout)

    def close(self) -> None:
        self.webhooks.close()


def _type_match(event_type: str, pattern: str) -> bool:
    """`type` filters allow a `*` wildcard (`invoice.*`)."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), event_type) is not None
