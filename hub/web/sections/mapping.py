"""Account mapping tab: each of the hub's expense categories → an account of the chart
imported from the ledger (the `account_mapping` table, hub/sync/account_mapping.py, which
invoice export reads). Unmapped categories come first, with the invoices each holds back
(a bill with an unmapped line is not exported) and their total; an admin picks an account
from a list searched on the server as they type (htmx), saves, or clears a mapping.

Every query takes the company and the integration (already checked to be the company's)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.errors import HubError
from hub.schema import account_mapping, gl_account, invoice, invoice_line
from hub.sync import account_mapping as mappings
from hub.web.accounting_forms import MAX_CATEGORY, ClearMappingForm, MappingForm, check
from hub.web.sections import Section
from hub.web.sections.common import HOME, done, integration_get

KEY = "mapping"
PICKER_SIZE = 20  # accounts listed at once; typing narrows the list
MAX_SEARCH = 100


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (its % and _ match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _money(currency: str, amount: Decimal) -> str:
    return f"{currency} {amount:,.2f}"


def categories(conn: Connection, company_id: int, integration_id: int) -> list[dict[str, Any]]:
    """Every category the company's bills bound for this ledger use, and every mapped one:
    unmapped first (they hold bills back), then those mapped to an account the ledger has
    since made inactive, then the mapped ones; by name within each group."""
    bound = (invoice.c.company_id == company_id, invoice.c.kind == "payable", invoice.c.status.not_in(("deleted", "voided")),
             sa.or_(invoice.c.integration_id.is_(None), invoice.c.integration_id == integration_id),
             invoice_line.c.category.is_not(None))
    used = (sa.select(invoice_line.c.category, invoice.c.id.label("invoice_id"), invoice.c.total, invoice.c.currency)
            .select_from(invoice_line.join(invoice, invoice.c.id == invoice_line.c.invoice_id))
            .where(*bound).distinct().subquery())
    usage: dict[str, dict[str, Any]] = {}
    for category, currency, count, total in conn.execute(
            sa.select(used.c.category, used.c.currency, sa.func.count(), sa.func.sum(used.c.total))
            .group_by(used.c.category, used.c.currency).order_by(used.c.category, used.c.currency)):
        entry = usage.setdefault(category, {"invoices": 0, "totals": []})
        entry["invoices"] += count
        entry["totals"].append(_money(currency, total))
    mapped = {r.local_category: r for r in conn.execute(
        sa.select(account_mapping.c.local_category, account_mapping.c.source, gl_account.c.id, gl_account.c.code,
                  gl_account.c.name, gl_account.c.account_type, gl_account.c.is_active)
        .join(gl_account, gl_account.c.id == account_mapping.c.gl_account_id)
        .where(account_mapping.c.company_id == company_id, account_mapping.c.integration_id == integration_id))}
    rows = []
    for category in usage.keys() | mapped.keys():
        account = mapped.get(category)
        state = "unmapped" if account is None else "mapped" if account.is_active else "inactive"
        use = usage.get(category, {"invoices": 0, "totals": []})
        rows.append({"category": category, "state": state, "invoices": use["invoices"], "totals": use["totals"],
                     "account": None if account is None else {"id": account.id, "code": account.code, "name": account.name,
                                                              "type": account.account_type, "source": account.source}})
    order = {"unmapped": 0, "inactive": 1, "mapped": 2}
    return sorted(rows, key=lambda r: (order[r["state"]], r["category"].lower(), r["category"]))


def find_accounts(conn: Connection, company_id: int, integration_id: int, search: str = "",
                  limit: int = PICKER_SIZE) -> tuple[list[sa.Row], bool]:
    """Active accounts of the imported chart whose name contains `search` or whose code
    starts with it (any case), by code then name; and whether more than `limit` match."""
    query = sa.select(gl_account.c.id, gl_account.c.code, gl_account.c.name, gl_account.c.account_type).where(
        gl_account.c.company_id == company_id, gl_account.c.integration_id == integration_id, gl_account.c.is_active)
    search = search.strip()[:MAX_SEARCH]
    if search:
        pattern = _like(search)
        query = query.where(sa.or_(gl_account.c.name.ilike(f"%{pattern}%", escape="\\"),
                                   gl_account.c.code.ilike(f"{pattern}%", escape="\\")))
    found = conn.execute(query.order_by(gl_account.c.code.nulls_last(), gl_account.c.name, gl_account.c.id).limit(limit + 1)).all()
    return found[:limit], len(found) > limit


def imported_accounts(conn: Connection, company_id: int, integration_id: int) -> int:
    return conn.scalar(sa.select(sa.func.count()).select_from(gl_account).where(
        gl_account.c.company_id == company_id, gl_account.c.integration_id == integration_id))


def load(conn, context, row, spec, query) -> dict:
    rows = categories(conn, context.company_id, row.id)
    accounts, more = find_accounts(conn, context.company_id, row.id) if context.is_admin else ([], False)
    held = [r for r in rows if r["state"] != "mapped"]
    return {"categories": rows, "accounts": accounts, "more": more, "search": "",
            "imported": imported_accounts(conn, context.company_id, row.id),
            "held_invoices": sum(r["invoices"] for r in held), "blocking": len(held)}


def accounts_fragment(pages, request: Request, context, row) -> Response:
    """The picker's list for what the admin typed in its search field (`q`; htmx swaps the
    list in as they type)."""
    search = str(request.query_params.get("q") or "")[:MAX_SEARCH]
    with pages.engine.connect() as conn:
        accounts, more = find_accounts(conn, context.company_id, row.id, search)
    return pages.render(request, "sections/mapping_accounts.html", ctx=context, csrf=context.csrf,
                        accounts=accounts, more=more, search=search, current=None)


def _known(conn: Connection, company_id: int, integration_id: int, category: str) -> bool:
    return any(r["category"] == category for r in categories(conn, company_id, integration_id))


def set_action(pages, request: Request, context, row, data: FormData) -> Response:
    form, problem = check(MappingForm, {k: v for k, v in data.items() if isinstance(v, str)})
    if form is None:
        missing = not data.get("account_id")
        return done(pages, request, row.id, KEY, "Choose an account in the list, then save." if missing else problem, "bad")
    try:
        with pages.engine.begin() as conn:
            if not _known(conn, context.company_id, row.id, form.category):
                return done(pages, request, row.id, KEY, f"No bill uses the category '{form.category[:MAX_CATEGORY]}'.", "bad")
            saved = mappings.map_to_account(conn, row.id, form.category, form.account_id)
    except HubError as exc:
        return done(pages, request, row.id, KEY, f"Not saved: {exc}.", "bad")
    account = " ".join(part for part in (saved["code"], saved["account"]) if part)
    return done(pages, request, row.id, KEY, f"{saved['category']} is now booked to {account}.")


def clear_action(pages, request: Request, context, row, data: FormData) -> Response:
    form, problem = check(ClearMappingForm, {k: v for k, v in data.items() if isinstance(v, str)})
    if form is None:
        return done(pages, request, row.id, KEY, problem, "bad")
    try:
        with pages.engine.begin() as conn:
            mappings.remove_mapping(conn, row.id, form.category)
    except HubError as exc:
        return done(pages, request, row.id, KEY, f"Not cleared: {exc}.", "bad")
    return done(pages, request, row.id, KEY, f"{form.category} is no longer mapped; its bills wait until it is.")


def routes(pages) -> list[Route]:
    base = HOME + "/{integration_id:int}/" + KEY
    return [
        Route(base + "/accounts", integration_get(pages, partial(accounts_fragment, pages)), methods=["GET"]),
        Route(base + "/set", pages.integration_action(partial(set_action, pages)), methods=["POST"]),
        Route(base + "/clear", pages.integration_action(partial(clear_action, pages)), methods=["POST"]),
    ]


SECTION = Section(key=KEY, label="Account mapping", template="sections/mapping.html", load=load, routes=routes)
