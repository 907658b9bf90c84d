"""Demo data for the sync pipelines, so a newcomer materializing the QuickBooks, Xero and
Procore assets sees every part work: a chart imported and mapped, the hub's own vendors and
bills waiting for export (one bill held back by an unmapped category), a customer of the
company and a sales invoice to it (a receivable) waiting for export, a vendor edited on
both sides (its next import records a conflict), a linked Procore project with a document
to share, and sync_log filled.

And the notifications: the bills (QuickBooks) and the linked project's RFIs are imported
here, then edited in the emulators as a user would (a bill paid; an RFI reassigned, one's
due date moved, one given a cost impact). The newcomer's next `quickbooks_sync_job` /
`procore/rfis` import announces them (`invoice.status_changed`, `task.assigned`,
`schedule.changed`, `budget.alert`) and the running dispatcher posts them to the Slack
emulator's #ops / #site and to SendGrid (the routes scripts/demo.sh adds).

Run by `make demo` after `hub demo connect` (the emulators keep their state in memory, so
the remote half of the scene is replayed on every start); the hub side is created once.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Iterator

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.demo import emulator_base
from hub.schema import account_mapping, customer, document, gl_account, invoice, invoice_line, project, rfi, sync_conflict, vendor
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.procore_link import import_project, remote_projects
from hub.providers import registry

EXPENSE_TYPES = {"quickbooks": ("Expense", "Cost of Goods Sold"), "xero": ("EXPENSE", "DIRECTCOSTS", "OVERHEADS")}
MAPPED = ("Produce", "Dairy", "Repairs")  # Equipment stays unmapped: its bill is held back with the reason
BILLS = (("HUB-1001", (("Produce", 182.40), ("Dairy", 64.00))), ("HUB-1002", (("Repairs", 240.00),)),
         ("HUB-1003", (("Equipment", 1299.00),)))
HUB_VENDOR = {"display_name": "Hub Fresh Farms", "email": "orders@freshfarms.example", "phone": "+1 555 0100"}
# receivables: the company's customer and a sales invoice to it; its category books to a revenue
# account where the ledger wants one per line (Xero; QuickBooks books sales lines through items)
REVENUE_TYPES = {"quickbooks": ("Income",), "xero": ("REVENUE", "SALES")}
SALES_CATEGORY = "Catering"
HUB_CUSTOMER = {"display_name": "Harbor Events Co", "email": "ap@harborevents.example", "phone": "+1 555 0142"}
SALES = (("SALE-2001", ((SALES_CATEGORY, "Event catering, 40 covers", 40, 18.50), (SALES_CATEGORY, "Delivery", 1, 35.00))),)


def prepare(engine: Engine, keyring: Keyring) -> Iterator[str]:
    with engine.connect() as conn:
        rows = [r for r in store.list_integrations(conn, active_only=True) if r.provider in registry.syncing_providers()]
    for row in rows:
        with engine.connect() as conn:
            item = store.get_integration(conn, keyring, row.id)
        base = emulator_base(item)
        if base is None:
            continue
        try:
            if item.provider == "procore":
                yield from _procore(engine, keyring, item, base)
            else:
                yield from _accounting(engine, keyring, item, base)
        except Exception as exc:  # a demo step must not stop the demo; say what failed
            yield f"{item.name}: demo sync data not prepared ({type(exc).__name__}: {exc})"


def _accounting(engine: Engine, keyring: Keyring, item, base: str) -> Iterator[str]:
    for stream in ("accounts", "vendors", "customers") + (("invoices", "sales_invoices") if item.provider == "quickbooks" else ()):
        result = sync_stream(engine, keyring, item.id, registry.stream(f"{item.provider}/{stream}"))
        yield f"{item.name}: imported {stream} ({result.counts.created} new, {result.counts.updated} updated)"
    if item.provider == "quickbooks":
        yield from _pay_a_bill(engine, item, base)
    with engine.begin() as conn:
        yield from _mappings(conn, item)
        yield from _hub_records(conn, item)
        yield from _hub_receivables(conn, item)
        target = _conflict_candidate(conn, item.id)
    if target is not None:
        yield from _two_sided_edit(engine, item, base, target)


def _mutate(base: str, body: dict) -> dict:
    """An edit in an emulator "as a user would" (its admin `mutate` action)."""
    response = httpx.post(f"{base}/_emulator/mutate", timeout=5, json=body)
    response.raise_for_status()
    return response.json()


def _pay_a_bill(engine: Engine, item, base: str) -> Iterator[str]:
    """Pay, in the books, the first imported bill the hub holds open: the next bill import
    announces `invoice.status_changed` (authorised -> paid)."""
    with engine.connect() as conn:
        bill = conn.execute(sa.select(invoice.c.remote_id, invoice.c.number).where(
            invoice.c.integration_id == item.id, invoice.c.kind == "payable", invoice.c.status == "authorised",
            invoice.c.remote_id.is_not(None)).order_by(invoice.c.id).limit(1)).first()
    if bill is None:
        return
    try:
        _mutate(base, {"op": "pay", "entity": "Bill", "id": bill.remote_id})
    except httpx.HTTPError as exc:  # the rest of the scene does not depend on it
        yield f"{item.name}: bill {bill.number or bill.remote_id} not paid in the books ({exc})"
        return
    yield (f"{item.name}: bill {bill.number or bill.remote_id} paid in the books; the next bill import (quickbooks_sync_job) "
           "announces it: Slack #ops and the AP email")


def _mappings(conn, item) -> Iterator[str]:
    revenue = conn.execute(sa.select(gl_account.c.remote_id, gl_account.c.name).where(
        gl_account.c.integration_id == item.id, gl_account.c.is_active, gl_account.c.account_type.in_(REVENUE_TYPES[item.provider]))
        .order_by(gl_account.c.id).limit(1)).first()
    if revenue is not None and not conn.scalar(sa.select(sa.func.count()).where(
            account_mapping.c.integration_id == item.id, account_mapping.c.local_category == SALES_CATEGORY)):
        set_mapping(conn, item.id, SALES_CATEGORY, revenue.remote_id)
        yield f"{item.name}: category {SALES_CATEGORY} -> account {revenue.name} (sales)"
    if conn.scalar(sa.select(sa.func.count()).where(account_mapping.c.integration_id == item.id,
                                                    account_mapping.c.local_category != SALES_CATEGORY)):
        return
    accounts = conn.execute(
        sa.select(gl_account.c.remote_id, gl_account.c.name).where(
            gl_account.c.integration_id == item.id, gl_account.c.is_active,
            gl_account.c.account_type.in_(EXPENSE_TYPES[item.provider])).order_by(gl_account.c.id)
    ).all()
    for category, account in zip(MAPPED, accounts):
        set_mapping(conn, item.id, category, account.remote_id)
        yield f"{item.name}: category {category} -> account {account.name}"


def _hub_records(conn, item) -> Iterator[str]:
    """The company's own vendor and bills (made in the hub, not yet in its books)."""
    vendor_id = conn.scalar(sa.select(vendor.c.id).where(vendor.c.company_id == item.company_id,
                                                         vendor.c.display_name == HUB_VENDOR["display_name"]))
    if vendor_id is None:
        vendor_id = conn.scalar(sa.insert(vendor).values(company_id=item.company_id, **HUB_VENDOR).returning(vendor.c.id))
        yield f"{item.name}: hub vendor '{HUB_VENDOR['display_name']}' waits for export"
    for number, lines in BILLS:
        if conn.scalar(sa.select(invoice.c.id).where(invoice.c.company_id == item.company_id, invoice.c.number == number)):
            continue
        total = round(sum(amount for _, amount in lines), 2)
        invoice_id = conn.scalar(sa.insert(invoice).values(
            company_id=item.company_id, vendor_id=vendor_id, number=number, issue_date=date.today(),
            due_date=date.today() + timedelta(days=30), subtotal=total, tax=0, total=total, status="authorised",
        ).returning(invoice.c.id))
        conn.execute(sa.insert(invoice_line), [
            {"invoice_id": invoice_id, "line_no": n, "description": f"{category} supplies", "category": category,
             "quantity": 1, "unit_amount": amount, "amount": amount} for n, (category, amount) in enumerate(lines, 1)])
        yield f"{item.name}: hub bill {number} ({', '.join(c for c, _ in lines)}) waits for export"


def _hub_receivables(conn, item) -> Iterator[str]:
    """The company's own customer and a sales invoice to it (made in the hub, not yet in its
    books): the sync job's customer_export and sales_invoice_export send them."""
    customer_id = conn.scalar(sa.select(customer.c.id).where(customer.c.company_id == item.company_id,
                                                             customer.c.display_name == HUB_CUSTOMER["display_name"]))
    if customer_id is None:
        customer_id = conn.scalar(sa.insert(customer).values(company_id=item.company_id, **HUB_CUSTOMER).returning(customer.c.id))
        yield f"{item.name}: hub customer '{HUB_CUSTOMER['display_name']}' waits for export"
    for number, lines in SALES:
        if conn.scalar(sa.select(invoice.c.id).where(invoice.c.company_id == item.company_id, invoice.c.number == number)):
            continue
        total = round(sum(quantity * unit for _, _, quantity, unit in lines), 2)
        invoice_id = conn.scalar(sa.insert(invoice).values(
            company_id=item.company_id, kind="receivable", customer_id=customer_id, number=number, issue_date=date.today(),
            due_date=date.today() + timedelta(days=14), subtotal=total, tax=0, total=total, status="authorised",
        ).returning(invoice.c.id))
        conn.execute(sa.insert(invoice_line), [
            {"invoice_id": invoice_id, "line_no": n, "description": text, "category": category, "quantity": quantity,
             "unit_amount": unit, "amount": round(quantity * unit, 2)} for n, (category, text, quantity, unit) in enumerate(lines, 1)])
        yield f"{item.name}: hub sales invoice {number} to '{HUB_CUSTOMER['display_name']}' ({total:.2f}) waits for export"


def _conflict_candidate(conn, integration_id: int):
    """The imported vendor the demo edits on both sides, unless a conflict is already open."""
    if conn.scalar(sa.select(sa.func.count()).where(sync_conflict.c.integration_id == integration_id,
                                                    sync_conflict.c.status == "open")):
        return None
    return conn.execute(
        sa.select(vendor.c.id, vendor.c.remote_id, vendor.c.display_name, vendor.c.synced_values)
        .where(vendor.c.integration_id == integration_id, vendor.c.is_active, vendor.c.remote_id.is_not(None))
        .order_by(vendor.c.id).limit(1)
    ).first()


def _two_sided_edit(engine: Engine, item, base: str, target) -> Iterator[str]:
    """Rename the vendor in the hub and, differently, in the books: the next import of vendors
    records a display-name conflict instead of overwriting either side."""
    original = (target.synced_values or {}).get("display_name") or target.display_name
    entity = "Vendor" if item.provider == "quickbooks" else "Contact"
    name_field = "DisplayName" if item.provider == "quickbooks" else "Name"
    _mutate(base, {"op": "update", "entity": entity, "id": target.remote_id, "fields": {name_field: f"{original} (renamed in books)"}})
    with engine.begin() as conn:
        conn.execute(sa.update(vendor).where(vendor.c.id == target.id).values(display_name=f"{original} (renamed in hub)"))
    yield f"{item.name}: vendor '{original}' renamed in the hub and in the books; importing vendors records the conflict"


def _procore(engine: Engine, keyring: Keyring, item, base: str) -> Iterator[str]:
    with engine.connect() as conn:
        linked = conn.scalar(sa.select(project.c.id).where(project.c.integration_id == item.id).order_by(project.c.id).limit(1))
    if linked is None:
        projects = remote_projects(engine, keyring, item.id)
        if not projects:
            return
        linked = import_project(engine, keyring, item.id, projects[0].procore_id)
        yield f"{item.name}: Procore project '{projects[0].name}' imported and linked as local project {linked}"
    try:
        yield from _rfi_edits(engine, keyring, item, base, linked)
    except Exception as exc:  # the document below does not depend on it
        yield f"{item.name}: RFI import or edits not done ({type(exc).__name__}: {exc})"
    with engine.begin() as conn:
        if conn.scalar(sa.select(sa.func.count()).where(document.c.project_id == linked)):
            return
        content = b"Site safety plan (demo)\n"
        conn.execute(sa.insert(document).values(
            company_id=item.company_id, project_id=linked, filename="site-safety-plan.txt", content_type="text/plain",
            size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content))
    yield f"{item.name}: document site-safety-plan.txt waits to be shared (materialize procore/documents)"


def _rfi_edits(engine: Engine, keyring: Keyring, item, base: str, linked: int) -> Iterator[str]:
    """Import the linked project's RFIs (a first import announces nothing), then edit three of
    them on Procore, each relative to what the hub now holds so it is a change on every start:
    one reassigned, one's due date a week later, one given a known cost impact."""
    result = sync_stream(engine, keyring, item.id, registry.stream("procore/rfis"))
    yield f"{item.name}: imported the linked project's RFIs ({result.counts.created} new, {result.counts.updated} updated)"
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rfi.c.remote_id, rfi.c.number, rfi.c.subject, rfi.c.due_date, rfi.c.data).where(
            rfi.c.integration_id == item.id, rfi.c.project_id == linked, rfi.c.status == "open").order_by(rfi.c.id).limit(3)).all()
        people = {str(p["id"]): p for (p,) in conn.execute(sa.select(rfi.c.data["assignee"]).where(
            rfi.c.integration_id == item.id, rfi.c.data["assignee"].is_not(None))) if isinstance(p, dict) and p.get("id")}
    if len(rows) < 3:
        return
    moved, costed = rows[1], rows[2]
    holder = (rows[0].data.get("ball_in_court") or rows[0].data.get("assignee") or {}).get("id")
    other = next((p for key, p in sorted(people.items()) if key != str(holder)), None)
    if other is not None:
        _mutate(base, {"op": "update", "entity": "rfi", "id": int(rows[0].remote_id), "fields": {"assignee_id": other["id"]}})
        yield f"{item.name}: RFI #{rows[0].number} '{rows[0].subject}' reassigned to {other['name']} on Procore"
    due = (moved.due_date or date.today()) + timedelta(days=7)
    _mutate(base, {"op": "update", "entity": "rfi", "id": int(moved.remote_id), "fields": {"due_date": due.isoformat()}})
    yield f"{item.name}: RFI #{moved.number} '{moved.subject}' due date moved to {due.isoformat()} on Procore"
    cost = (costed.data.get("cost_impact") or {}).get("value")
    value = round(float(cost) + 1500, 2) if isinstance(cost, (int, float)) else 4800.0
    _mutate(base, {"op": "update", "entity": "rfi", "id": int(costed.remote_id),
                   "fields": {"cost_impact": {"status": "yes_known", "value": value}}})
    yield f"{item.name}: RFI #{costed.number} '{costed.subject}' given a cost impact of ${value:,.2f} on Procore"
    yield (f"{item.name}: materialize procore/rfis (or launch procore_sync_job) to import them: task.assigned, schedule.changed "
           "and budget.alert go to Slack #site (the budget alert to #ops too)")
