"""Demo data for the AI assist (issue 14), so the demo's AI page (/settings/integrations/ai)
shows every task at work: a trained line-coding model with its held-out evaluation, the
evaluations of account mapping and vendor matching, and open suggestions to accept or reject.

Run by `make demo` after `hub demo sync-data` (`hub demo ai`), for each emulated accounting
integration with enough coded bill history to learn from: QuickBooks (Acme), whose emulator
company has 300 bills in a contractor's words (emulators/registry.py: about 600 coded lines,
so about 120 held out). Bella's Xero bills are not imported by the demo: nothing to learn.

- categories mapped as the company's bookkeeper mapped them (a contractor's categories to
  the chart's accounts): the people's answers the mapping task is measured on;
- hub vendors typed in by hand: some are ledger vendors under another spelling (a typo, an
  abbreviation, a branch name, the ledger's email or tax id), some are other vendors with
  alike names; the matches are the assist's own (hub/ai/vendor_match.py `for_export`, as the
  vendor export asks it, linking what it is sure of), and the bookkeeper's review of them
  is the demo's: accepted when the match is the vendor it was made from, rejected otherwise.
  Those verdicts are what vendor matching is measured on;
- the nightly training, once, when there is no line-coding model yet (hub/ai/training.py
  `train_all`; the nightly schedule trains again);
- then what waits for a person: hub bills with lines nobody coded, scored by the export's
  hook (hub/ai/scoring.py `code_lines`: an account applied, or suggested), and hub vendors
  the export holds back as possible duplicates.

Idempotent: what exists is left alone. The hub side only: the emulators are not touched.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.ai import feedback, storage, training, vendor_match
from hub.ai.scoring import code_lines
from hub.ai.settings import PAGE, accounting_providers
from hub.crypto import Keyring
from hub.demo import emulator_base
from hub.schema import account_mapping, ai_suggestion, gl_account, invoice, invoice_line, vendor
from hub.sync.account_mapping import map_to_account

MIN_HISTORY = 500  # coded bill lines: a fifth held out is at least 100 (the evaluation's chart is worth showing)

# the bookkeeper's categories -> the account of a contractor's chart each was mapped to
CATEGORIES = (
    ("Lumber", "Lumber & Framing"), ("Ready-mix concrete", "Concrete & Aggregates"), ("Rebar & mesh", "Concrete & Aggregates"),
    ("Drywall", "Job Materials"), ("Fasteners & hardware", "Job Materials"), ("Equipment rental", "Equipment Rental"),
    ("Subcontracted labor", "Subcontractors"), ("Building permits", "Permits & Licenses"), ("Diesel & gas", "Fuel"),
    ("Hand tools", "Small Tools & Equipment"), ("Dumpsters & hauling", "Dump & Disposal Fees"), ("Freight", "Freight & Delivery"),
    ("Liability insurance", "Insurance"), ("Office supplies", "Office Expenses"), ("Power & water", "Utilities"),
    ("Yard lease", "Rent or Lease"), ("Truck repairs", "Repair & Maintenance"), ("Safety gear", "Safety Supplies"),
    ("Electrical supplies", "Electrical Materials"), ("Plumbing supplies", "Plumbing Materials"),
)
_SHORT = {"supply": "Sply", "lumber": "Lbr", "electric": "Elec", "plumbing": "Plbg", "concrete": "Concr", "roofing": "Rfg",
          "hardware": "Hdwr", "rentals": "Rntl", "logistics": "Logist", "masonry": "Msnry", "drywall": "Drywll"}
# uncoded lines of the company's own bills (no category: nobody coded them), one bill per ledger vendor
UNCODED_BILLS = (
    ("HUB-3001", ("2x6x16 SPF #2 framing lumber, 80 pcs", "Delivery - lumber drop Job 2207", "Simpson joist hangers LUS28 box of 50")),
    ("HUB-3002", ("30 yd roll-off swap, job 2207", "porta-john service, monthly", "Ready mix 4000 PSI 9 yds + short load fee")),
    ("HUB-3003", ("skid steer rental 1 wk w/ bucket", "fuel surcharge", "safety glasses & gloves, 2 cases")),
)


def prepare(engine: Engine, keyring: Keyring) -> Iterator[str]:
    with engine.connect() as conn:
        rows = [r for r in store.list_integrations(conn, active_only=True) if r.provider in accounting_providers()]
    for row in rows:
        with engine.connect() as conn:
            item = store.get_integration(conn, keyring, row.id)
        if emulator_base(item) is None:
            continue
        try:
            yield from _integration(engine, keyring, item)
        except Exception as exc:  # a demo step must not stop the demo; say what failed
            yield f"{item.name}: AI assist demo not prepared ({type(exc).__name__}: {exc})"


def _coded_lines(conn, integration_id: int) -> int:
    return conn.scalar(sa.select(sa.func.count()).select_from(invoice_line.join(invoice)).where(
        invoice.c.integration_id == integration_id, invoice.c.kind == "payable", invoice_line.c.gl_account_id.is_not(None)))


def _integration(engine: Engine, keyring: Keyring, item) -> Iterator[str]:
    with engine.connect() as conn:
        coded = _coded_lines(conn, item.id)
        ledger = [dict(r) for r in conn.execute(
            sa.select(vendor.c.id, vendor.c.display_name, vendor.c.email, vendor.c.tax_id)
            .where(vendor.c.integration_id == item.id, vendor.c.is_active, vendor.c.remote_id.is_not(None))
            .order_by(vendor.c.id)
        ).mappings()]
    if coded < MIN_HISTORY or len(ledger) < 8:
        yield (f"{item.name}: {coded} coded bill lines and {len(ledger)} vendors imported: too little history for the AI assist "
               f"demo (it needs {MIN_HISTORY} lines)")
        return
    with engine.begin() as conn:
        yield from _categories(conn, item)
        yield from _review_vendors(conn, item, ledger)
    with engine.connect() as conn:
        newest = storage.versions(conn, item.id, "line_coding")
    if newest:
        yield f"{item.name}: line-coding model version {newest[0]['version']} already trained (the nightly schedule trains again)"
    else:
        for result in training.train_all(engine, keyring, item.id):
            test = result.evaluation.get("test_size")
            yield (f"{item.name}: {result.task} {result.status}" + (f", version {result.version}" if result.version else "")
                   + (f", measured on {test} held-out items" if test else "") + (f" ({result.reason})" if result.reason else ""))
    with engine.begin() as conn:
        yield from _uncoded_bills(conn, keyring, item, ledger)
        yield from _pending_vendors(conn, item, ledger)
    yield f"{item.name}: see the AI page, {PAGE} (thresholds and what they mean, open suggestions, cost)"


def _categories(conn, item) -> Iterator[str]:
    accounts = {r.name.casefold(): r.id for r in conn.execute(sa.select(gl_account.c.id, gl_account.c.name).where(
        gl_account.c.integration_id == item.id, gl_account.c.is_active))}
    mapped = set(conn.scalars(sa.select(account_mapping.c.local_category).where(account_mapping.c.integration_id == item.id)))
    done = 0
    for category, account in CATEGORIES:
        if category not in mapped and account.casefold() in accounts:
            map_to_account(conn, item.id, category, accounts[account.casefold()])
            done += 1
    if done:
        yield f"{item.name}: {done} categories mapped by the bookkeeper (what the mapping suggestions are measured on)"


# ---- vendors ---------------------------------------------------------------------------------
def _words(name: str) -> list[str]:
    return name.split()


def _typo(name: str) -> str:
    first, *rest = _words(name)
    return " ".join([first[:-2] + first[-1] if len(first) > 4 else first + first[-1], *rest[:-1]])


def _abbreviated(name: str) -> str:
    return " ".join(_SHORT.get(w.casefold(), w) for w in _words(name)[:-1]) + " Co."


def _branch(name: str) -> str:
    return " ".join(_words(name)[:-1]) + " Company - Denver Yard"


def _other(name: str) -> str:
    """Another vendor with an alike name: the same words and one more."""
    return " ".join(_words(name)[:-1]) + " Services"


def _reviewed(ledger: list[dict]) -> list[tuple[dict, int | None]]:
    """(hub vendor as typed in, the ledger vendor it is, or None): the vendors the bookkeeper
    reviewed matches of. Made from the ledger's vendors by rule, so the demo knows the truth."""
    out: list[tuple[dict, int | None]] = []
    for k, v in enumerate(ledger[:24]):
        kind = k % 6
        name, email, tax = v["display_name"], None, None
        if kind == 0:
            typed, right = _typo(name), v["id"]
        elif kind == 1:
            typed, right = _abbreviated(name), v["id"]
        elif kind == 2:
            typed, right = _branch(name), v["id"]
        elif kind == 3 and v["email"]:
            typed, right, email = f"{_words(name)[0]} AP Dept", v["id"], v["email"]
        elif kind == 4 and v["tax_id"]:
            typed, right, tax = f"{' '.join(_words(name)[:-1])} Holdings", v["id"], v["tax_id"]
        else:
            typed, right = _other(name), None
            email = "billing@" + "".join(ch for ch in typed.casefold() if ch.isalnum()) + ".example"
        out.append(({"display_name": typed, "email": email, "tax_id": tax}, right))
    return out


def _hub_vendor(conn, company_id: int, values: dict) -> tuple[int, bool]:
    """The hub vendor typed in with this name (made now if missing): (id, made now)."""
    found = conn.scalar(sa.select(vendor.c.id).where(vendor.c.company_id == company_id, vendor.c.display_name == values["display_name"],
                                                     vendor.c.integration_id.is_(None)))
    if found is not None:
        return found, False
    return conn.scalar(sa.insert(vendor).values(company_id=company_id, **values).returning(vendor.c.id)), True


def _suggested_before(conn, integration_id: int, vendor_id: int) -> bool:
    return bool(conn.scalar(sa.select(sa.func.count()).where(
        ai_suggestion.c.integration_id == integration_id, ai_suggestion.c.task == vendor_match.TASK,
        ai_suggestion.c.input_key == vendor_match.input_key(vendor_id))))


def _review_vendors(conn, item, ledger: list[dict]) -> Iterator[str]:
    counts = {"accept": 0, "reject": 0}
    for values, right in _reviewed(ledger):
        vendor_id, _ = _hub_vendor(conn, item.company_id, values)
        if _suggested_before(conn, item.id, vendor_id):
            continue
        row = conn.execute(sa.select(vendor).where(vendor.c.id == vendor_id)).mappings().one()
        like = vendor_match.for_export(conn, item.id, row)
        if like is None or like.action == "none":
            continue  # nothing alike enough: the export creates it, nobody is asked
        moved = vendor_match.link(conn, item.company_id, vendor_id, like.remote_vendor_id) if like.action == "auto_applied" else None
        suggestion_id = vendor_match.record(conn, item.id, like, values["display_name"], moved=moved)
        verdict = "accept" if like.remote_vendor_id == right else "reject"
        feedback.give(conn, item.company_id, suggestion_id, verdict)
        counts[verdict] += 1
    if sum(counts.values()):
        yield (f"{item.name}: the bookkeeper's review of vendor matches: {counts['accept']} accepted (linked to the ledger's "
               f"vendor), {counts['reject']} rejected (other vendors)")


def _pending_vendors(conn, item, ledger: list[dict]) -> Iterator[str]:
    """Ledger vendors typed in again with a word more: the export holds them back as possible duplicates."""
    waiting = 0
    for v in ledger[-3:]:
        values = {"display_name": " ".join(_words(v["display_name"])[:-1]) + " Yard", "email": None, "tax_id": None}
        vendor_id, _ = _hub_vendor(conn, item.company_id, values)
        row = conn.execute(sa.select(vendor).where(vendor.c.id == vendor_id)).mappings().one()
        if not row["is_active"] or row["integration_id"] is not None:
            continue
        like = vendor_match.for_export(conn, item.id, row)
        if like is not None and like.action == "suggested" and like.suggestion_id is None:
            vendor_match.record(conn, item.id, like, values["display_name"])
        waiting += like is not None and like.action == "suggested"
    if waiting:
        yield f"{item.name}: {waiting} hub vendors wait as possible duplicates of ledger vendors: accept or reject them on the AI page"


# ---- bills -----------------------------------------------------------------------------------
def _uncoded_bills(conn, keyring: Keyring, item, ledger: list[dict]) -> Iterator[str]:
    ids = []
    for (number, lines), v in zip(UNCODED_BILLS, ledger):
        invoice_id = conn.scalar(sa.select(invoice.c.id).where(invoice.c.company_id == item.company_id, invoice.c.number == number))
        if invoice_id is None:
            amounts = [round(95.0 + 310.25 * n, 2) for n in range(1, len(lines) + 1)]
            invoice_id = conn.scalar(sa.insert(invoice).values(
                company_id=item.company_id, vendor_id=v["id"], number=number, issue_date=date.today(),
                due_date=date.today() + timedelta(days=30), subtotal=sum(amounts), tax=0, total=sum(amounts), status="authorised",
            ).returning(invoice.c.id))
            conn.execute(sa.insert(invoice_line), [
                {"invoice_id": invoice_id, "line_no": n, "description": text, "quantity": 1, "unit_amount": amount, "amount": amount}
                for n, (text, amount) in enumerate(zip(lines, amounts), 1)])
        ids.append(invoice_id)
    made = code_lines(conn, item.id, ids, keyring=keyring, step="demo")
    applied = sum(1 for s in made.values() if s.action == "auto_applied")
    suggested = sum(1 for s in made.values() if s.action == "suggested")
    yield (f"{item.name}: hub bills {', '.join(n for n, _ in UNCODED_BILLS)} have lines nobody coded: {applied} coded by the assist, "
           f"{suggested} suggested (the export holds their bills back until accepted on the AI page)")
