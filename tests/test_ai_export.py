"""The AI assist inside the export steps (issue 14), against the QuickBooks emulator over real
HTTP, on real PostgreSQL. A QuickBooks company's coded bill history (the emulators' bill-line
generator) is imported by the pull and a line-coding model trained on it; then:

- bill export: a line nobody coded gets the model's account in the export's own run (the
  bill goes out with it), or, between the thresholds, holds its bill back with the suggestion
  named until it is accepted; the export preview shows both and writes nothing;
- vendor export: a hub vendor alike a ledger vendor (another spelling) is linked to it instead
  of duplicated at or above the high threshold, held back as a possible duplicate between the
  thresholds (accepted: linked; rejected: created, and never linked automatically again),
  created below the low one.

Expected accounts come from the imported history and expected vendors from the imported
ledger, never from the code under test; each action is checked against the rule applied to
the suggestion's own probability."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub.ai import feedback, scoring, settings, training
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.schema import ai_feedback, ai_suggestion, ai_usage, gl_account, invoice, invoice_line, vendor
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import export_invoices
from hub.sync.export_preview import preview_export
from hub.sync.export_vendors import export_vendors
from tests.test_vendor_two_way import FAST, REALM, _connect

READY_MIX = "Ready-mix concrete 12 yds 4000psi"


class Ledger:
    def __init__(self, engine, keyring, iid, company_id, emulator):
        self.engine, self.keyring, self.iid, self.company_id, self.emulator = engine, keyring, iid, company_id, emulator

    def _client(self):
        return open_client(self.engine, self.keyring, self.iid, retry=FAST)

    def export_invoices(self):
        client = self._client()
        try:
            return export_invoices(self.engine, self.keyring, self.iid, client=client)
        finally:
            client.transport.close()

    def export_vendors(self):
        client = self._client()
        try:
            return export_vendors(self.engine, self.keyring, self.iid, client=client)
        finally:
            client.transport.close()

    def preview(self):
        client = self._client()
        try:
            return preview_export(self.engine, self.keyring, self.iid, client=client, checks=False)
        finally:
            client.transport.close()

    def task(self, task, **values):
        with self.engine.begin() as conn:
            settings.set_task(conn, self.company_id, task, **values)

    def one(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().one()

    def all(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().all()

    def ledger_vendor(self, k):
        return self.all(sa.select(vendor).where(vendor.c.integration_id == self.iid).order_by(vendor.c.id))[k]

    def add_vendor(self, **values):
        with self.engine.begin() as conn:
            return conn.scalar(sa.insert(vendor).values(company_id=self.company_id, **values).returning(vendor.c.id))

    def bill(self, number, vendor_id, lines):
        """A hub bill: (description, category or None, amount) per line."""
        total = sum(amount for _, _, amount in lines)
        with self.engine.begin() as conn:
            invoice_id = conn.scalar(sa.insert(invoice).values(
                company_id=self.company_id, vendor_id=vendor_id, number=number, issue_date=date(2025, 3, 1),
                due_date=date(2025, 3, 31), subtotal=total, tax=0, total=total, status="authorised").returning(invoice.c.id))
            conn.execute(sa.insert(invoice_line), [
                {"invoice_id": invoice_id, "line_no": n, "description": text, "category": category, "quantity": 1,
                 "unit_amount": amount, "amount": amount} for n, (text, category, amount) in enumerate(lines, 1)])
        return invoice_id

    def state(self):
        """Every row the AI assist or an export may write, and the emulator's write count."""
        with self.engine.connect() as conn:
            rows = tuple(tuple(tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns)))
                         for t in (ai_suggestion, ai_usage, ai_feedback, invoice_line, invoice, vendor))
        return rows, self.emulator.state.writes


@pytest.fixture
def books(clean_db, secret_keys):
    """A contractor's QuickBooks: chart, vendors and 400 coded bills imported; a line-coding
    model trained on them; the category Lumber mapped (the hub bills' ordinary line)."""
    emulator, keyring = quickbooks_emulator(vendors=15, bills=400, invoices=0, accounts=24, realm_id=REALM, seed=5), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        iid, company_id = _connect(clean_db, keyring, "quickbooks", config, {"realmId": REALM}, emulator)
        for stream in ("accounts", "vendors", "invoices"):
            sync_stream(clean_db, keyring, iid, registry.stream(f"quickbooks/{stream}"))
        result = training.train_line_coding(clean_db, keyring, iid)
        assert result.status == "trained", result.reason
        with clean_db.begin() as conn:
            set_mapping(conn, iid, "Lumber", "Lumber & Framing")
        yield Ledger(clean_db, keyring, iid, company_id, emulator)


def _history_account(books, *words) -> dict:
    """The account the imported history codes lines with these words to most often."""
    rows = books.all(sa.select(invoice_line.c.description, gl_account.c.id, gl_account.c.name, gl_account.c.remote_id)
                     .join(invoice, invoice.c.id == invoice_line.c.invoice_id).join(gl_account, gl_account.c.id == invoice_line.c.gl_account_id)
                     .where(invoice.c.integration_id == books.iid))
    counts = Counter((r["id"], r["name"], r["remote_id"]) for r in rows if any(w in r["description"].lower() for w in words))
    assert counts, words
    (account_id, name, remote_id), _ = counts.most_common(1)[0]
    return {"id": account_id, "name": name, "remote_id": remote_id}


def _line_suggestions(books, line_id):
    return books.all(sa.select(ai_suggestion).where(ai_suggestion.c.subject_type == "invoice_line", ai_suggestion.c.subject_id == line_id))


def _line(books, invoice_id, line_no):
    return books.one(sa.select(invoice_line).where(invoice_line.c.invoice_id == invoice_id, invoice_line.c.line_no == line_no))


# ---- bills ------------------------------------------------------------------------------------
def test_export_applies_a_confident_account_and_the_bill_goes_out_in_the_same_run(books):
    expected = _history_account(books, "ready-mix", "ready mix")
    ledger_vendor = books.ledger_vendor(0)
    bill = books.bill("HUB-9001", ledger_vendor["id"], [("2x4x8 studs", "Lumber", 310.0), (READY_MIX, None, 2400.0)])
    before = books.emulator.state.count("Bill")

    result = books.export_invoices()
    assert (result.created, result.blocked, result.failed) == (1, 0, 0)
    [suggestion] = _line_suggestions(books, _line(books, bill, 2)["id"])
    assert suggestion["action"] == "auto_applied" and float(suggestion["probability"]) >= settings.DEFAULT_HIGH
    assert int(suggestion["value"]) == expected["id"] and suggestion["status"] == "open"  # applied, open to a verdict
    row = books.one(sa.select(invoice).where(invoice.c.id == bill))
    assert row["integration_id"] == books.iid and row["sync_error"] is None
    remote = books.emulator.state.read("Bill", row["remote_id"])
    assert books.emulator.state.count("Bill") == before + 1
    refs = [line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for line in remote["Line"]]
    assert refs[1] == expected["remote_id"] and remote["Line"][1]["Description"] == READY_MIX
    assert _line(books, bill, 2)["gl_account_id"] == expected["id"]
    usage = books.one(sa.select(ai_usage).where(ai_usage.c.task == "line_coding", ai_usage.c.company_id == books.company_id))
    assert usage["predictions"] == 1  # the export scored its one uncoded line, metered

    again = books.export_invoices()  # nothing left to send or to score
    assert (again.created, again.updated, again.blocked) == (0, 0, 0)
    assert len(_line_suggestions(books, _line(books, bill, 2)["id"])) == 1


def test_a_line_between_the_thresholds_holds_its_bill_back_with_the_suggestion_named(books):
    expected = _history_account(books, "ready-mix", "ready mix")
    books.task("line_coding", low=0.0, high=1.0)  # every answer only suggested
    bill = books.bill("HUB-9002", books.ledger_vendor(1)["id"], [("2x4x8 studs", "Lumber", 310.0), (READY_MIX, None, 2400.0)])
    before = books.emulator.state.count("Bill")

    result = books.export_invoices()
    assert (result.created, result.blocked) == (0, 1)
    [suggestion] = _line_suggestions(books, _line(books, bill, 2)["id"])
    assert (suggestion["action"], suggestion["status"], int(suggestion["value"])) == ("suggested", "open", expected["id"])
    reason = books.one(sa.select(invoice.c.sync_error).where(invoice.c.id == bill))["sync_error"]
    score = f"{float(suggestion['probability']) * 100:.0f}%"
    assert reason == (f"line 2: no category, so no account to book it to; suggested: {expected['name']} ({score}), accept it "
                      "on the AI page (/settings/integrations/ai#feedback)")
    assert _line(books, bill, 2)["gl_account_id"] is None and books.emulator.state.count("Bill") == before

    assert books.export_invoices().blocked == 1  # the next run names the same suggestion, makes no second one
    assert len(_line_suggestions(books, _line(books, bill, 2)["id"])) == 1
    with books.engine.begin() as conn:  # a person accepts it on the AI page
        feedback.give(conn, books.company_id, suggestion["id"], "accept")
    sent = books.export_invoices()
    assert (sent.created, sent.blocked) == (1, 0)
    remote = books.emulator.state.read("Bill", books.one(sa.select(invoice.c.remote_id).where(invoice.c.id == bill))["remote_id"])
    assert remote["Line"][1]["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == expected["remote_id"]


def test_a_line_below_the_low_threshold_holds_its_bill_back_as_before(books):
    books.task("line_coding", low=1.0, high=1.0)  # nothing shown
    bill = books.bill("HUB-9003", books.ledger_vendor(2)["id"], [(READY_MIX, None, 2400.0)])
    assert books.export_invoices().blocked == 1
    assert books.one(sa.select(invoice.c.sync_error).where(invoice.c.id == bill))["sync_error"] == \
        "line 1: no category, so no account to book it to"
    assert _line_suggestions(books, _line(books, bill, 1)["id"]) == []


def test_the_preview_shows_what_the_export_would_apply_or_suggest_and_writes_nothing(books, monkeypatch):
    expected = _history_account(books, "ready-mix", "ready mix")
    bill = books.bill("HUB-9004", books.ledger_vendor(3)["id"], [("2x4x8 studs", "Lumber", 310.0), (READY_MIX, None, 2400.0)])

    books.task("line_coding", low=0.0, high=0.0)  # every answer applied
    before = books.state()
    seen = []  # the scoring is told it runs for a preview (nothing outside the database then)
    real = scoring.suggest_for_lines
    monkeypatch.setattr(scoring, "suggest_for_lines", lambda conn, *a, **k: seen.append(scoring.dry_run(conn)) or real(conn, *a, **k))
    [applied] = [d for d in books.preview().decisions if d.entity_type == "invoice" and d.local_id == bill]
    assert seen == [True]
    assert books.state() == before
    assert applied.action == "create" and applied.reason.startswith(f"line 2 coded by the AI assist: {expected['name']} (")
    assert applied.data["account_ids"] == {1: books.one(sa.select(gl_account.c.id).where(
        gl_account.c.integration_id == books.iid, gl_account.c.name == "Lumber & Framing"))["id"], 2: expected["id"]}

    books.task("line_coding", low=0.0, high=1.0)  # every answer suggested
    before = books.state()
    [held] = [d for d in books.preview().decisions if d.entity_type == "invoice" and d.local_id == bill]
    assert books.state() == before
    assert (held.action, held.hold) == ("hold", "coding")
    assert held.reason.startswith(f"line 2: no category, so no account to book it to; suggested: {expected['name']} (")

    result = books.export_invoices()  # the export does what the preview showed, and stores it
    assert result.blocked == 1 and books.state() != before and seen[-1] is False
    assert len(_line_suggestions(books, _line(books, bill, 2)["id"])) == 1


# ---- vendors ----------------------------------------------------------------------------------
def _typo(name: str) -> str:
    """The ledger's vendor name as someone typed it: a letter of the first word dropped, no legal suffix."""
    first, *rest = name.split()
    return " ".join([first[:2] + first[3:], *rest[:-1]])


def _doubled(name: str) -> str:
    """The ledger's vendor name with a letter of its longest word typed twice, no legal suffix."""
    words = name.split()[:-1]
    k = max(range(len(words)), key=lambda i: len(words[i]))
    words[k] = words[k][:4] + words[k][3:]
    return " ".join(words)


def _vendor_suggestions(books, vendor_id):
    return books.all(sa.select(ai_suggestion).where(ai_suggestion.c.subject_type == "vendor", ai_suggestion.c.subject_id == vendor_id)
                     .order_by(ai_suggestion.c.id))


def test_a_vendor_alike_a_ledger_vendor_is_linked_instead_of_duplicated_and_a_rejection_takes_it_back(books):
    theirs = books.ledger_vendor(4)
    ours = books.add_vendor(display_name=_typo(theirs["display_name"]))
    bill = books.bill("HUB-9010", ours, [("2x4x8 studs", "Lumber", 310.0)])
    vendors_before = books.emulator.state.count("Vendor")

    [planned] = [d for d in books.preview().decisions if d.entity_type == "vendor" and d.local_id == ours]
    assert planned.action == "link" and f"'{theirs['display_name']}'" in planned.reason and "%" in planned.reason
    [bill_plan] = [d for d in books.preview().decisions if d.entity_type == "invoice" and d.local_id == bill]
    assert bill_plan.action == "create"  # its vendor is linked first in the same run

    result = books.export_vendors()
    assert (result.linked, result.created, result.blocked) == (1, 0, 0)
    assert books.emulator.state.count("Vendor") == vendors_before  # no duplicate in the ledger
    [suggestion] = _vendor_suggestions(books, ours)
    assert (suggestion["action"], int(suggestion["value"])) == ("auto_applied", theirs["id"])
    assert float(suggestion["probability"]) >= settings.DEFAULT_HIGH and suggestion["input"]["moved_invoices"] == [bill]
    assert books.one(sa.select(vendor.c.is_active).where(vendor.c.id == ours))["is_active"] is False
    assert books.one(sa.select(invoice.c.vendor_id).where(invoice.c.id == bill))["vendor_id"] == theirs["id"]
    usage = books.one(sa.select(ai_usage).where(ai_usage.c.task == "vendor_match", ai_usage.c.company_id == books.company_id))
    assert usage["predictions"] == 1

    sent = books.export_invoices()  # the bill goes out with the ledger's vendor
    assert sent.created == 1
    remote = books.emulator.state.read("Bill", books.one(sa.select(invoice.c.remote_id).where(invoice.c.id == bill))["remote_id"])
    assert remote["VendorRef"]["value"] == theirs["remote_id"]

    with books.engine.begin() as conn:  # a person says it is another vendor: taken back
        feedback.give(conn, books.company_id, suggestion["id"], "reject")
    assert books.one(sa.select(vendor.c.is_active).where(vendor.c.id == ours))["is_active"] is True
    assert books.one(sa.select(invoice.c.vendor_id).where(invoice.c.id == bill))["vendor_id"] == ours
    books.task("vendor_match", low=0.0, high=0.0)  # even "apply everything at any score" never links that pair again
    [replanned] = [d for d in books.preview().decisions if d.entity_type == "vendor" and d.local_id == ours]
    assert replanned.remote_id != theirs["remote_id"]
    books.task("vendor_match", low=settings.DEFAULT_LOW, high=settings.DEFAULT_HIGH)
    created = books.export_vendors()
    assert (created.created, created.linked) == (1, 0)
    assert books.emulator.state.count("Vendor") == vendors_before + 1
    assert books.one(sa.select(vendor.c.integration_id).where(vendor.c.id == ours))["integration_id"] == books.iid
    updated = books.export_invoices()  # and the bill follows its own vendor in the ledger
    assert updated.updated == 1
    remote = books.emulator.state.read("Bill", remote["Id"])
    assert remote["VendorRef"]["value"] == books.one(sa.select(vendor.c.remote_id).where(vendor.c.id == ours))["remote_id"]


def test_a_possible_duplicate_is_held_back_until_a_person_decides(books):
    books.task("vendor_match", high=0.999)
    theirs = [books.ledger_vendor(k) for k in (5, 6, 4)]
    accepted, rejected, later = (books.add_vendor(display_name=_typo(v["display_name"])) for v in theirs)
    vendors_before = books.emulator.state.count("Vendor")

    result = books.export_vendors()
    assert (result.linked, result.created, result.blocked) == (0, 0, 3)
    for ours, v in zip((accepted, rejected, later), theirs):
        [s] = _vendor_suggestions(books, ours)
        assert (s["action"], s["status"], int(s["value"])) == ("suggested", "open", v["id"])
        reason = books.one(sa.select(vendor.c.sync_error).where(vendor.c.id == ours))["sync_error"]
        assert reason.startswith(f"possible duplicate of QuickBooks vendor '{v['display_name']}' "
                                 f"({float(s['probability']) * 100:.0f}%: names ")
        assert reason.endswith("accept it on the AI page (/settings/integrations/ai#feedback) to link it, or reject it to create "
                               "it at the next export")
    assert books.export_vendors().blocked == 3 and len(_vendor_suggestions(books, accepted)) == 1  # no second suggestion

    with books.engine.begin() as conn:
        feedback.give(conn, books.company_id, _vendor_suggestions(books, accepted)[0]["id"], "accept")
        feedback.give(conn, books.company_id, _vendor_suggestions(books, rejected)[0]["id"], "reject")
    assert books.one(sa.select(vendor.c.is_active).where(vendor.c.id == accepted))["is_active"] is False  # linked by the verdict
    books.task("vendor_match", high=settings.DEFAULT_HIGH)  # the third one is now sure enough to link
    done = books.export_vendors()
    assert (done.created, done.linked, done.blocked) == (1, 1, 0)
    [s] = _vendor_suggestions(books, later)  # its suggestion says it was applied (a reject takes it back)
    assert (s["action"], s["status"], s["input"]["moved_invoices"]) == ("auto_applied", "open", [])
    assert books.emulator.state.count("Vendor") == vendors_before + 1
    assert books.one(sa.select(vendor.c.integration_id).where(vendor.c.id == rejected))["integration_id"] == books.iid


def test_vendor_thresholds_move_vendors_between_linked_held_back_and_created(books):
    """Hub vendors more and less alike the ledger's; the preview (the export's own decisions)
    at several settings: each vendor's action is the rule applied to its match's probability."""
    names = [books.ledger_vendor(k)["display_name"] for k in range(7, 13)]
    typed = [_typo(names[0]), _doubled(names[4]), _doubled(names[3]), f"{names[3]} of Denver",
             names[1].split()[0] + " " + names[1].split()[1][:4] + " Services", names[2].split()[0] + " Yard",
             "Zephyr Catering", "Quantum Drywall Partners"]
    ids = [books.add_vendor(display_name=t) for t in typed]

    def actions(**task):
        books.task("vendor_match", **task)
        before = books.state()
        plan = {d.local_id: d for d in books.preview().decisions if d.entity_type == "vendor" and d.local_id in ids}
        assert books.state() == before  # the preview stores no suggestion and meters nothing
        out = {}
        for vendor_id in ids:
            d = plan[vendor_id]
            like = d.data.get("alike")
            p = like.probability if like is not None else 0.0
            current = settings.TaskSetting("vendor_match", task.get("enabled", True), task.get("mode", "auto"), task["low"], task["high"])
            rule = current.action(p) if like is not None else "none"
            assert d.action == {"auto_applied": "link", "suggested": "hold", "none": "create"}[rule], (typed[ids.index(vendor_id)], p, d)
            out[vendor_id] = d.action
        return Counter(out.values())

    default = actions(low=0.5, high=0.9)
    assert default["link"] >= 1 and default["create"] >= 1
    strict = actions(low=0.95, high=0.99)
    assert strict["link"] < default["link"] and strict["create"] > default["create"]
    assert actions(low=0.0, high=0.0) == {"link": len(ids)}
    assert actions(low=0.0, high=0.0, mode="suggest") == {"hold": len(ids)}
    assert actions(low=0.0, high=0.0, enabled=False) == {"create": len(ids)}  # off: the export creates as it always did
    with books.engine.begin() as conn:  # on, but for another integration only
        settings.set_company(conn, books.company_id, integration_ids=[books.iid + 1000])
    books.task("vendor_match", low=0.0, high=0.0)
    plan = [d for d in books.preview().decisions if d.entity_type == "vendor" and d.local_id in ids]
    assert {d.action for d in plan} == {"create"}
