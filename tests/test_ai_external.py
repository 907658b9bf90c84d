"""The AI assist's optional external model (hub/ai/external_model.py, external_budget.py,
external_settings.py) on real PostgreSQL, over real HTTP to the bundled OpenAI-compatible
emulator (emulators/openai_chat) through the official SDK.

Expected answers and token counts are read from the emulator's own record of what it
answered and counted, never from the code under test; "no call was made" is the emulator's
own request count."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
import sqlalchemy as sa

from emulators import bill_lines
from emulators.openai_chat import DEFAULT_API_KEY, create_emulator
from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.ai import external_budget, external_model, external_settings, scoring, settings
from hub.ai.scoring import LineToCode, code_imported_lines, suggest_for_lines
from hub.crypto import Keyring, generate_key
from hub.errors import SecretKeyError, ValidationError
from hub.providers import registry
from hub.schema import ai_external_call, ai_external_setting, ai_suggestion, gl_account, invoice, invoice_line, outbox_event, vendor
from hub.stored_secrets import rotate
from hub.sync.engine import sync_stream
from tests.test_ai_assist import CLIENT, _integration, _new_bill_line, _train, ledger  # noqa: F401 - `ledger` is a fixture

pytestmark = pytest.mark.timeout(120)
PRICE_IN, PRICE_OUT = Decimal("0.5"), Decimal("1.5")
LINES = ("diesel 40 gal fleet card", "12/2 Romex NM-B 250ft x 3", "30 yd roll-off dumpster Job 2001",
         "building permit BP-25-0101", "mini excavator rental 1 week", "ready-mix concrete 9 yds 4000psi")


@pytest.fixture
def openai_api(monkeypatch):
    """The emulator on loopback, which the hub may reach only because HUB_OUTBOUND_ALLOW says so."""
    monkeypatch.setenv("HUB_OUTBOUND_ALLOW", "127.0.0.1/32")
    emulator = create_emulator()
    with serve(emulator.app) as url:
        yield emulator, url


@pytest.fixture
def books(clean_db, secret_keys):
    """A company's QuickBooks with the construction chart and a few vendors, and no model yet."""
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Builder")
        integration_id = _integration(conn, keyring, company_id)
        accounts = {name: conn.scalar(gl_account.insert().values(
            company_id=company_id, integration_id=integration_id, remote_id=f"a{i}", code=str(500 + i), name=name,
            account_type="Expense").returning(gl_account.c.id)) for i, name in enumerate(bill_lines.chart_accounts("construction"))}
        vendors = [conn.scalar(vendor.insert().values(company_id=company_id, integration_id=integration_id, remote_id=f"v{k}",
                                                      display_name=name).returning(vendor.c.id))
                   for k, name in enumerate(("Fleet Fuel Co", "Sparky Electric Supply", "Haul-It Waste"))]
    return {"engine": clean_db, "keyring": keyring, "company_id": company_id, "integration_id": integration_id,
            "accounts": accounts, "vendors": vendors}


def configure(world, url, **changes):
    values = {"enabled": True, "base_url": url + "/v1", "model": "gpt-4o-mini", "api_key": DEFAULT_API_KEY,
              "price_input_per_1k": str(PRICE_IN), "price_output_per_1k": str(PRICE_OUT), "monthly_budget": "10"}
    with world["engine"].begin() as conn:
        return external_settings.save(conn, world["keyring"], world["company_id"], **{**values, **changes})


def calls(world) -> list[dict]:
    with world["engine"].connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(ai_external_call).where(ai_external_call.c.company_id == world["company_id"])
                                              .order_by(ai_external_call.c.id)).mappings()]


def notices(world) -> list[dict]:
    with world["engine"].connect() as conn:
        return list(conn.scalars(sa.select(outbox_event.c.payload).where(outbox_event.c.company_id == world["company_id"],
                                                                         outbox_event.c.event_type == "ai.budget_80")))


def cost_of(prompt_tokens: int, completion_tokens: int) -> Decimal:
    q = Decimal("0.000001")
    return ((Decimal(prompt_tokens) * PRICE_IN / 1000).quantize(q, ROUND_HALF_UP)
            + (Decimal(completion_tokens) * PRICE_OUT / 1000).quantize(q, ROUND_HALF_UP))


def replied(emulator, n: int = -1) -> dict[int, str | None]:
    """What the emulator answered in its n-th completion: line number -> account id."""
    return {a["line"]: a["account_id"] for a in json.loads(emulator.completions[n]["content"])["answers"]}


def api_requests(emulator) -> int:
    return emulator.core.stats()["api_requests"]


def new_lines(world, texts, first_vendor=0):
    """Uncoded lines of a new bill each (what an import or a person adds)."""
    out = []
    with world["engine"].begin() as conn:
        for k, text in enumerate(texts):
            vendor_id = world["vendors"][(first_vendor + k) % len(world["vendors"])]
            bill = conn.scalar(invoice.insert().values(
                company_id=world["company_id"], integration_id=world["integration_id"], remote_id=f"new-{uuid.uuid4().hex}",
                vendor_id=vendor_id, kind="payable", number=f"N-{uuid.uuid4().hex[:12]}", issue_date=date(2026, 1, 5),
                status="authorised")
                .returning(invoice.c.id))
            line_id = conn.scalar(invoice_line.insert().values(invoice_id=bill, line_no=1, description=text, amount=100 + k)
                                  .returning(invoice_line.c.id))
            out.append(LineToCode(text, vendor_id, 100 + k, line_id))
    return out


def tag(k: int) -> str:
    """A word of its own for line k (numbers are folded away: "order 1" and "order 2" are the same input)."""
    return chr(97 + k // 26) + chr(97 + k % 26) + "x"


def suggest(world, lines):
    with world["engine"].begin() as conn:
        return suggest_for_lines(conn, world["integration_id"], lines, keyring=world["keyring"])


# ---- below the low threshold: the external model, suggested and metered per call ---------------------
def test_lines_below_the_low_threshold_get_the_external_models_suggestion_metered_per_call(ledger, openai_api, monkeypatch):
    emulator, url = openai_api
    _train(ledger)
    with ledger["engine"].begin() as conn:
        settings.set_task(conn, ledger["company_id"], "line_coding", low=0.97, high=0.99, mode="auto")
    lines = [LineToCode(text, ledger["vendors"][k], 100 + k, _new_bill_line(ledger["engine"], ledger, text, k, 100 + k))
             for k, text in enumerate(LINES)]
    # which lines the hub's own model leaves below the low threshold: asked with the external model off, rolled back
    with ledger["engine"].connect() as conn:
        with conn.begin() as transaction:
            local = suggest_for_lines(conn, ledger["integration_id"], lines, keyring=ledger["keyring"])
            transaction.rollback()
    below = [k for k, s in enumerate(local) if s.action == "none"]
    assert below, local  # the thresholds leave lines unanswered
    configure(ledger, url)
    made = suggest(ledger, lines)
    assert api_requests(emulator) == 1  # one call for all the unsure lines: the chart is sent once
    sent = json.loads(emulator.completions[0]["messages"][1]["content"])
    assert [x["description"] for x in sent["lines"]] == [LINES[k] for k in below]
    with ledger["engine"].connect() as conn:
        chart = {str(r.id): r.name for r in conn.execute(sa.select(gl_account.c.id, gl_account.c.name)
                                                         .where(gl_account.c.integration_id == ledger["integration_id"]))}
    assert {a["id"] for a in sent["chart"]} == set(chart)
    answer = replied(emulator)
    for n, k in enumerate(below, start=1):
        s = made[k]
        if answer[n] is None:
            assert s.action == "none" and s.suggestion_id is None
            continue
        assert (s.source, s.action, s.account_id, s.account_name) == ("external", "suggested", int(answer[n]), chart[answer[n]])
    for k in set(range(len(lines))) - set(below):  # the confident ones are the hub's own, as before
        assert made[k].source == "local" and (made[k].action, made[k].account_id) == (local[k].action, local[k].account_id)
    with ledger["engine"].connect() as conn:
        rows = conn.execute(sa.select(ai_suggestion).where(ai_suggestion.c.source == "external")).mappings().all()
        coded = dict(conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id)
                                  .where(invoice_line.c.id.in_([lines[k].line_id for k in below]))).all())
    assert rows and all(r["action"] == "suggested" and r["model_id"] is None and r["status"] == "open" for r in rows)
    assert set(coded.values()) == {None}  # never applied: people decide
    [call] = calls(ledger)
    done = emulator.completions[0]
    assert (call["outcome"], call["lines"], call["answered"], call["refused"]) == ("ok", len(below), len(rows), 0)
    assert (call["input_tokens"], call["output_tokens"]) == (done["prompt_tokens"], done["completion_tokens"])
    assert call["cost"] == cost_of(done["prompt_tokens"], done["completion_tokens"]) and call["cost"] <= call["reserved"]
    assert call["model"] == "gpt-4o-mini" and call["integration_id"] == ledger["integration_id"]
    # the same inputs again (an import re-reads a changed bill): answered from the earlier answer, no call
    again = suggest(ledger, lines)
    assert api_requests(emulator) == 1
    assert [(s.source, s.account_id) for s in again] == [(s.source, s.account_id) for s in made]
    # the month's totals, as the page shows them beside the CPU cost
    with ledger["engine"].connect() as conn:
        [month] = external_budget.report(conn, ledger["company_id"])
    assert (month["calls"], month["input_tokens"], month["cost"]) == (1, done["prompt_tokens"], call["cost"])
    # the external model failing outside the SDK (a key that no longer decrypts): the hub's own answers stay
    def undecryptable(*args, **kwargs):
        raise SecretKeyError("stored ai_external_setting.api_key failed authentication")

    fresh = [LineToCode(f"{line.description} extra", line.vendor_id, line.amount, line.line_id) for line in lines]
    with ledger["engine"].connect() as conn:
        with conn.begin() as transaction:  # what the hub's own model says of them (external model off), rolled back
            external_settings.save(conn, ledger["keyring"], ledger["company_id"], enabled=False, base_url="",
                                   model="", price_input_per_1k="0", price_output_per_1k="0", monthly_budget="0")
            own = suggest_for_lines(conn, ledger["integration_id"], fresh, keyring=ledger["keyring"])
            transaction.rollback()
    monkeypatch.setattr(external_settings, "api_key", undecryptable)
    kept = suggest(ledger, fresh)
    assert [(s.source, s.action, s.account_id) for s in kept] == [(s.source, s.action, s.account_id) for s in own]
    assert api_requests(emulator) == 1 and any(s.action == "none" for s in kept)  # the unsure ones were not asked


def test_an_import_with_no_local_model_yet_asks_the_external_model(clean_db, secret_keys, openai_api):
    """The pull imports a bill entered with item lines (no account): with no model trained yet,
    its lines get the external model's suggestion, in the import's own transaction."""
    emulator, url = openai_api
    keyring = Keyring(secret_keys)
    realm = "9130350000000777"
    books_emulator = quickbooks_emulator(vendors=4, bills=6, invoices=0, accounts=20, realm_id=realm, seed=7)
    with serve(books_emulator.app) as qb_url:
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Imported")
            integration_id = store.add_integration(
                conn, keyring, company_id=company_id, provider="quickbooks",
                config={"realm_id": realm, "base_url": qb_url, "token_url": qb_url + "/oauth2/v1/tokens/bearer"},
                credentials={**CLIENT, "refresh_token": books_emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": realm})},
                active=True)
        world = {"engine": clean_db, "keyring": keyring, "company_id": company_id}
        configure(world, url)
        for stream in ("accounts", "vendors"):
            sync_stream(clean_db, keyring, integration_id, registry.stream(f"quickbooks/{stream}"))
        vendor_ref = books_emulator.state.read("Bill", 1)["VendorRef"]
        created = books_emulator.state.mutate("create", "Bill", fields={"VendorRef": vendor_ref, "Line": [
            {"Amount": 180.0, "Description": "DIESEL 40 GAL", "DetailType": "ItemBasedExpenseLineDetail",
             "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "1", "name": "Services"}, "Qty": 1, "UnitPrice": 180.0}}]})
        sync_stream(clean_db, keyring, integration_id, registry.stream("quickbooks/invoices"))
    with clean_db.connect() as conn:
        line = conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id).join(invoice)
                            .where(invoice.c.integration_id == integration_id, invoice.c.remote_id == created["Id"])).one()
        suggestion = conn.execute(sa.select(ai_suggestion).where(ai_suggestion.c.subject_id == line.id)).mappings().one()
    asked = next(c for c in emulator.completions if "DIESEL 40 GAL" in c["messages"][1]["content"])
    sent = json.loads(asked["messages"][1]["content"])
    n = next(x["line"] for x in sent["lines"] if x["description"] == "DIESEL 40 GAL")
    answer = {a["line"]: a["account_id"] for a in json.loads(asked["content"])["answers"]}[n]
    assert answer is not None and suggestion["value"] == answer
    assert (suggestion["source"], suggestion["action"], line.gl_account_id) == ("external", "suggested", None)
    assert all(c["outcome"] == "ok" for c in calls(world))


# ---- the budget: a hard cap, the 80% notice once ------------------------------------------------------
def test_the_budget_cap_stops_external_calls_and_the_80_percent_notice_goes_once(books, openai_api):
    emulator, url = openai_api
    # a budget of eight calls of one line at their worst case; a call costs about a quarter of its worst case
    with books["engine"].connect() as conn:
        accounts = external_model.chart(conn, books["integration_id"])
    one = external_model.messages(accounts, [external_model.LineToAsk(LINES[0], "Fleet Fuel Co", 100)])
    worst = external_model.worst_cost(configure(books, url), one, external_model.reply_tokens(1))
    budget = (worst * 8).quantize(Decimal("0.0001"))
    configure(books, url, monthly_budget=str(budget))
    made = refused_at = None
    for k in range(200):
        before = api_requests(emulator)
        [s] = suggest(books, new_lines(books, [f"{LINES[k % len(LINES)]} lot {tag(k)}"], k))
        rows = calls(books)
        spent = sum(r["cost"] for r in rows)
        assert spent <= budget  # never past the cap
        assert len(notices(books)) == (1 if spent >= budget * Decimal("0.8") else 0)  # once crossed, exactly one notice
        if rows[-1]["outcome"] == "refused_budget":
            assert api_requests(emulator) == before  # no HTTP request reached the emulator
            assert s.action == "none" and s.suggestion_id is None and rows[-1]["cost"] == 0
            assert "budget" in rows[-1]["detail"]
            refused_at = k
            break
        assert rows[-1]["outcome"] == "ok" and api_requests(emulator) == before + 1
        made = k
    assert refused_at is not None and made is not None and made >= 8  # calls went on while a worst case still fitted
    # later lines: refused too, nothing sent, the notice not repeated
    quiet = api_requests(emulator)
    for k in range(3):
        [s] = suggest(books, new_lines(books, [f"fuel surcharge later {tag(k)}"]))
        assert s.action == "none"
    assert api_requests(emulator) == quiet
    assert [r["outcome"] for r in calls(books)][-3:] == ["refused_budget"] * 3
    [notice] = notices(books)
    assert notice["month"] and Decimal(str(notice["spent"])) >= budget * Decimal("0.8") and notice["model"] == "gpt-4o-mini"
    # a higher budget: calls go again (the notice stays once this month)
    configure(books, url, monthly_budget=str(budget * 3))
    [s] = suggest(books, new_lines(books, ["diesel 12 gal again"]))
    assert api_requests(emulator) == quiet + 1 and calls(books)[-1]["outcome"] == "ok"
    assert len(notices(books)) == 1


def test_a_dry_run_the_export_preview_makes_no_external_call(books, openai_api):
    """The preview scores in a transaction it rolls back; a paid call and its budget row (a
    transaction of their own) would outlive that rollback, so a dry run asks nothing."""
    emulator, url = openai_api
    configure(books, url)
    lines = new_lines(books, ["diesel 12 gal preview"])
    before = api_requests(emulator)
    with books["engine"].connect() as conn:
        dry = conn.execution_options(**{scoring.DRY_RUN: True})
        with dry.begin() as tx:
            [s] = suggest_for_lines(dry, books["integration_id"], lines, keyring=books["keyring"])
            tx.rollback()
    assert s.action == "none" and api_requests(emulator) == before and calls(books) == []
    [s] = suggest(books, lines)  # the export itself asks
    assert api_requests(emulator) == before + 1 and s.source == "external"


def test_concurrent_scorers_cannot_spend_past_the_budget(books, openai_api, monkeypatch):
    """Six scorers at once, each one line, while the emulator takes 3 s per answer: every call
    overlaps the others, so only the reservations under the row lock keep them within budget.
    Summing the month's spend is made slow (0.2 s), so that without the lock every scorer
    would read the same spend before any of them wrote its reservation."""
    emulator, url = openai_api
    summed = external_budget.month_spend

    def slow_sum(conn, company_id):
        spent = summed(conn, company_id)
        time.sleep(0.2)
        return spent

    monkeypatch.setattr(external_budget, "month_spend", slow_sum)
    with books["engine"].connect() as conn:
        accounts = external_model.chart(conn, books["integration_id"])
    setting = configure(books, url)
    texts = [f"diesel gal truck {tag(k)}" for k in range(6)]
    worst = max(external_model.worst_cost(setting, external_model.messages(accounts, [external_model.LineToAsk(t, "Fleet Fuel Co", 100)]),
                                          external_model.reply_tokens(1)) for t in texts)
    budget = (worst * Decimal("2.5")).quantize(Decimal("0.0001"))  # room for two worst cases at a time
    configure(books, url, monthly_budget=str(budget))
    lines = new_lines(books, texts)
    httpx.post(url + "/_emulator/faults", json={"latency_ms": 3000}).raise_for_status()  # longer than all the reservations
    start = threading.Barrier(len(lines))
    errors = []

    def score(line):
        try:
            start.wait()
            suggest(books, [line])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=score, args=(line,)) for line in lines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    rows = calls(books)
    made = [r for r in rows if r["outcome"] == "ok"]
    assert len(rows) == len(lines) and len(made) == api_requests(emulator)
    assert 1 <= len(made) <= 2 and len(rows) - len(made) >= 4  # at most two worst cases fit the budget at once
    assert sum(r["reserved"] for r in made) <= budget and sum(r["cost"] for r in rows) <= budget


# ---- answers: only an account of the chart --------------------------------------------------------------
def test_an_answer_naming_an_account_outside_the_chart_is_refused(books, openai_api):
    emulator, url = openai_api
    configure(books, url)
    with books["engine"].begin() as conn:  # an account of the chart turned inactive, and one of another company's books
        fuel = books["accounts"]["Fuel"]
        conn.execute(sa.update(gl_account).where(gl_account.c.id == books["accounts"]["Insurance"]).values(is_active=False))
        other_company = store.create_company(conn, "Other")
        other_books = _integration(conn, books["keyring"], other_company, realm="9130350000000555")
        foreign = conn.scalar(gl_account.insert().values(company_id=other_company, integration_id=other_books, remote_id="x1",
                                                         name="Fuel", account_type="Expense").returning(gl_account.c.id))
    for wrong in (foreign, books["accounts"]["Insurance"], 987654321, "Fuel"):
        emulator.script(json.dumps({"answers": [{"line": 1, "account_id": str(wrong), "confidence": 0.99}]}))
        [s] = suggest(books, new_lines(books, [f"diesel fuel {tag(len(str(wrong)))} {wrong}"]))
        assert s.action == "none" and s.suggestion_id is None, wrong
        call = calls(books)[-1]
        assert (call["outcome"], call["answered"], call["refused"]) == ("ok", 0, 1)
        assert "is not in the chart" in call["detail"] and call["cost"] > 0  # the tokens were spent all the same
    # a line number not asked, and a reply that is not the JSON asked for
    emulator.script(json.dumps({"answers": [{"line": 7, "account_id": str(fuel), "confidence": 0.9}]}))
    [s] = suggest(books, new_lines(books, ["diesel fuel line seven"]))
    assert s.action == "none" and calls(books)[-1]["refused"] == 1 and "not asked" in calls(books)[-1]["detail"]
    emulator.script("Sure! The account is Fuel.")
    [s] = suggest(books, new_lines(books, ["diesel fuel chatty"]))
    call = calls(books)[-1]
    assert s.action == "none" and call["outcome"] == "invalid_answer" and call["detail"] == "answer not used: the reply is not JSON"
    assert call["input_tokens"] == emulator.completions[-1]["prompt_tokens"] and call["cost"] > 0
    # control: the same kind of answer naming the chart's own active account is kept
    emulator.script(json.dumps({"answers": [{"line": 1, "account_id": str(fuel), "confidence": 0.8}]}))
    [s] = suggest(books, new_lines(books, ["diesel fuel control"]))
    assert (s.action, s.source, s.account_id, s.probability) == ("suggested", "external", fuel, 0.8)


# ---- provider errors never fail the import -------------------------------------------------------------
@pytest.mark.parametrize("fault", ["401", "429", "500", "timeout", "refused", "blocked"])
def test_provider_errors_leave_the_import_intact_and_are_recorded_without_the_key(books, openai_api, fault, monkeypatch,
                                                                                   caplog):
    emulator, url = openai_api
    configure(books, url)
    if fault == "401":
        httpx.post(url + "/_emulator/keys", json={"key": DEFAULT_API_KEY, "revoked": True}).raise_for_status()
    elif fault == "429":
        httpx.post(url + "/_emulator/faults", json={"burst_429": 3, "retry_after_s": 1}).raise_for_status()
    elif fault == "500":
        httpx.post(url + "/_emulator/faults", json={"fail_next_5xx": 3, "status_5xx": 500}).raise_for_status()
    elif fault == "timeout":
        monkeypatch.setattr(external_model, "TIMEOUT_S", 0.5)
        monkeypatch.setattr(external_model, "MAX_RETRIES", 0)
        httpx.post(url + "/_emulator/faults", json={"reply_delay_ms": 1500}).raise_for_status()
    elif fault == "refused":  # nothing listens there: the connection is never made
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            closed_port = free.getsockname()[1]
        monkeypatch.setattr(external_model, "MAX_RETRIES", 0)
        configure(books, f"http://127.0.0.1:{closed_port}")
    else:
        monkeypatch.delenv("HUB_OUTBOUND_ALLOW")  # loopback is a private address: refused before any call
    caplog.set_level(logging.DEBUG)
    with books["engine"].begin() as conn:  # an import page: a bill with two uncoded lines, scored in the page's transaction
        bill = conn.scalar(invoice.insert().values(company_id=books["company_id"], integration_id=books["integration_id"],
                                                   remote_id="imported-1", vendor_id=books["vendors"][0], kind="payable",
                                                   number="B-1", issue_date=date(2026, 1, 5), status="authorised").returning(invoice.c.id))
        conn.execute(invoice_line.insert(), [{"invoice_id": bill, "line_no": 1, "description": LINES[0], "amount": 180},
                                             {"invoice_id": bill, "line_no": 2, "description": LINES[1], "amount": 95}])
        made = code_imported_lines(conn, books["integration_id"], [bill])
    assert made == []  # nothing to show: the lines stay uncoded, the page goes on
    with books["engine"].connect() as conn:  # the page committed: the bill and its lines are there
        assert conn.scalar(sa.select(sa.func.count()).select_from(invoice_line).where(invoice_line.c.invoice_id == bill)) == 2
        assert conn.scalar(sa.select(sa.func.count()).select_from(ai_suggestion)) == 0
    [call] = calls(books)
    expected = {"401": "refused the API key (401)", "429": "rate limiting or out of quota (429)", "500": "answered HTTP 500 (after 2 retries)",
                "timeout": "did not answer within 0.5 s", "refused": "could not connect to 127.0.0.1",
                "blocked": "private or local address"}[fault]
    assert call["outcome"] == "error" and expected in call["detail"], call["detail"]
    assert call["cost"] == (call["reserved"] if fault == "timeout" else 0)  # a sent call never answered may have been billed
    assert DEFAULT_API_KEY not in call["detail"] and DEFAULT_API_KEY not in caplog.text
    assert DEFAULT_API_KEY[-8:] not in caplog.text
    if fault in ("blocked", "refused"):
        assert api_requests(emulator) == 0


# ---- settings ----------------------------------------------------------------------------------------
def test_settings_refuse_bad_values_keep_the_key_encrypted_and_never_show_it(books, openai_api):
    _, url = openai_api
    saved = configure(books, url)
    assert saved.usable and saved.key_set and saved.base_url == url + "/v1"
    assert DEFAULT_API_KEY not in repr(saved)
    with books["engine"].connect() as conn:
        key = external_settings.api_key(conn, books["keyring"], books["company_id"])
        stored = conn.scalar(sa.select(ai_external_setting.c.api_key))
    assert key.reveal() == DEFAULT_API_KEY and DEFAULT_API_KEY not in (repr(key) + str(key) + f"{key}")
    assert DEFAULT_API_KEY not in json.dumps(stored) and set(stored) == {"v", "kid", "n", "ct"}
    # a blank key keeps the stored one
    configure(books, url, api_key="", model="gpt-4o")
    with books["engine"].connect() as conn:
        assert external_settings.api_key(conn, books["keyring"], books["company_id"]).reveal() == DEFAULT_API_KEY
        before = conn.execute(sa.select(ai_external_setting)).mappings().one()
    refusals = {
        "the base URL must be an http(s) address": {"base_url": "ftp://models.example/v1"},
        "must not carry a user or password": {"base_url": "https://me:pw@models.example/v1"},
        "must not have a query": {"base_url": "https://models.example/v1?key=1"},
        "the price per 1,000 input tokens must be 0 or more": {"price_input_per_1k": "-1"},
        "the price per 1,000 output tokens must be a number": {"price_output_per_1k": "lots"},
        "a monthly budget above 0": {"monthly_budget": "0"},
        "is not a model name": {"model": "gpt 4o; drop"},
        "needs a base URL": {"base_url": ""},
        "the API key must be one word": {"api_key": "sk with spaces"},
        "the base URL's host 10.1.2.3 is a private or local address": {"base_url": "http://10.1.2.3:8000/v1"},
        "the base URL's host 169.254.169.254 is a private or local address": {"base_url": "http://169.254.169.254/v1"},
    }
    for sentence, change in refusals.items():
        with pytest.raises(ValidationError, match=re.escape(sentence)):
            configure(books, url, **change)
    with books["engine"].connect() as conn:
        assert conn.execute(sa.select(ai_external_setting)).mappings().one() == before  # nothing stored
    # off: a blank key is fine, and nothing is asked
    off = configure(books, url, enabled=False, api_key="")
    assert not off.usable and off.key_set


def test_the_key_is_rotated_with_the_other_secrets(books, openai_api, secret_keys):
    _, url = openai_api
    configure(books, url)
    newer = [generate_key(), *secret_keys]
    keyring = Keyring(newer)
    report = rotate(books["engine"], keyring)
    assert report.rotated >= 1
    with books["engine"].connect() as conn:
        stored = conn.scalar(sa.select(ai_external_setting.c.api_key))
        assert stored["kid"] == keyring.primary_kid
        assert external_settings.api_key(conn, Keyring(newer[:1]), books["company_id"]).reveal() == DEFAULT_API_KEY


def test_check_connection_reads_the_model_without_spending(books, openai_api):
    emulator, url = openai_api
    setting = configure(books, url)
    with books["engine"].connect() as conn:
        key = external_settings.api_key(conn, books["keyring"], books["company_id"])
    assert external_model.check_connection(setting, key) == f"Connected to 127.0.0.1: model gpt-4o-mini is available."
    assert emulator.completions == [] and calls(books) == []
    missing = configure(books, url, model="gpt-5-imaginary")
    with pytest.raises(ValidationError, match="has no model gpt-5-imaginary"):
        external_model.check_connection(missing, key)


def test_the_demo_points_its_companies_at_the_bundled_emulator(clean_db, secret_keys, openai_api):
    """`hub demo ai-external` (scripts/demo.sh): the demo companies' external model is the
    emulator on the demo's ports, with its demo key, and it answers."""
    from hub.demo_ai_external import DEMO_API_KEY
    from tests.test_cli import hub

    emulator, url = openai_api
    assert DEMO_API_KEY == DEFAULT_API_KEY  # the hub imports no emulator: the demo repeats its key
    with clean_db.begin() as conn:
        ids = {name: store.create_company(conn, name) for name in ("Acme Builders", "Bella Pizza")}
    port = int(url.rsplit(":", 1)[1])
    result = hub("demo", "ai-external", "--port-base", str(port - 10))  # the emulator's offset in the demo's ports
    assert result.exit_code == 0, result.output
    assert result.output.count(f"at {url}/v1") == 2 and DEFAULT_API_KEY not in result.output
    keyring = Keyring(secret_keys)
    for company_id in ids.values():
        with clean_db.connect() as conn:
            setting = external_settings.read(conn, company_id)
            key = external_settings.api_key(conn, keyring, company_id)
        assert setting.usable and setting.monthly_budget > 0
        assert external_model.check_connection(setting, key) == "Connected to 127.0.0.1: model gpt-4o-mini is available."
    assert hub("demo", "ai-external", "--port-base", str(port - 10)).exit_code == 0  # idempotent
