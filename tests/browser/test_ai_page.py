"""/settings/integrations/ai in Chromium (issue 14, "the page in the browser: accept,
correct, change a threshold"). Acme's QuickBooks integration gets a coded bill history from
the emulators' bill-line generator, a model trained by the engine (hub/ai/training.py) and
open suggestions made by the engine's scoring; then an admin decides them one by one and in
bulk, changes thresholds, preferences and the price, and the database is read to see what
changed. Expected numbers are read from the stored evaluation and rows, never from the page's
own code. A viewer reads without buttons and is refused (403); another company's suggestion
is 404; axe-core finds nothing serious; no secret reaches the page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hub.ai import settings as ai_settings
from hub.ai import training
from hub.ai.scoring import LineToCode, suggest_for_lines
from hub.crypto import Keyring
from hub.schema import account_mapping, ai_feedback, ai_model, ai_setting, ai_suggestion, ai_task_setting, ai_usage, invoice_line, vendor
from tests.browser.conftest import CANARY, csrf_of, sign_in
from tests.test_ai_assist import _new_bill_line, _seed_history

PAGE = "/settings/integrations/ai"
NEW_LINES = ("16d framing nails 50lb box", "building permit BP-25-0101", "30 yd roll-off dumpster Job 2001",
             "ready-mix concrete 4000 psi 9 yd", "mini excavator rental job 1412")


@pytest.fixture
def ai(site, secret_keys):
    """Acme's QuickBooks with a coded history, a trained line-coding model and five open
    suggestions (every one shown: low threshold 0 while scoring, then the defaults again)."""
    keyring = Keyring(secret_keys)
    company_id, integration_id = site.companies["Acme"], site.integrations["QuickBooks (Acme)"]
    with site.engine.begin() as conn:
        history = _seed_history(conn, company_id, integration_id, bills=350, vendors=20, seed=3)
    result = training.train_line_coding(site.engine, keyring, integration_id)
    assert result.status == "trained", result.reason
    ledger = {"company_id": company_id, "integration_id": integration_id, **history}
    ids = [_new_bill_line(site.engine, ledger, text, k, 100 + k) for k, text in enumerate(NEW_LINES)]
    with site.engine.begin() as conn:
        ai_settings.set_task(conn, company_id, "line_coding", low=0.0, mode="suggest")
        made = suggest_for_lines(conn, integration_id, [LineToCode(t, history["vendors"][k], 100 + k, line_id)
                                                         for k, (t, line_id) in enumerate(zip(NEW_LINES, ids))], keyring=keyring)
        conn.execute(sa.delete(ai_task_setting).where(ai_task_setting.c.company_id == company_id))  # the defaults again
    assert all(s.suggestion_id and s.action == "suggested" for s in made)
    site.ai = {"company_id": company_id, "integration_id": integration_id, "suggestions": made, "line_ids": ids, **history}
    return site


def _suggestion(site, suggestion_id: int):
    with site.engine.connect() as conn:
        return conn.execute(sa.select(ai_suggestion).where(ai_suggestion.c.id == suggestion_id)).one()


def _line_account(site, line_id: int):
    with site.engine.connect() as conn:
        return conn.scalar(sa.select(invoice_line.c.gl_account_id).where(invoice_line.c.id == line_id))


def _feedback(site) -> list[tuple]:
    with site.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(ai_feedback.c.suggestion_id, ai_feedback.c.verdict,
                                                                ai_feedback.c.correct_value)))


def _state(site) -> tuple:
    """Every row the page may change (to prove a refused request changed nothing)."""
    with site.engine.connect() as conn:
        return tuple([tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
                     for t in (ai_suggestion, ai_feedback, ai_setting, ai_task_setting, invoice_line))


def _sentence(evaluation: dict, threshold: float) -> str:
    """The sentence for a measured threshold, from the stored held-out table."""
    row = next(r for r in evaluation["thresholds"] if abs(r["threshold"] - threshold) < 1e-9)
    return f"at {threshold:.2f}: {row['precision'] * 100:.0f}% correct, covers {row['coverage'] * 100:.0f}% of lines"


def _evaluation(site) -> dict:
    with site.engine.connect() as conn:
        return conn.scalar(sa.select(ai_model.c.evaluation).where(ai_model.c.integration_id == site.ai["integration_id"])
                           .order_by(ai_model.c.version.desc()).limit(1))


def _row(page, suggestion_id: int):
    return page.locator(f"tr[data-suggestion='{suggestion_id}']")


def test_an_admin_accepts_corrects_bulk_rejects_and_changes_thresholds_preferences_and_price(ai, page):
    site, made = ai, ai.ai["suggestions"]
    sign_in(page, site.url, "admin@acme.example")
    card = page.locator("article[data-provider='ai_assist']")
    card.get_by_role("link", name="Open AI assist").click()
    expect(page).to_have_url(site.url + PAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text("AI assist")
    rows = page.locator("tr[data-suggestion]")
    expect(rows).to_have_count(len(made))
    first, second, third, fourth, fifth = made
    expect(_row(page, first.suggestion_id).locator(".answer")).to_have_text(first.account_name)

    # what the high threshold means, from the newest model's held-out evaluation
    evaluation = _evaluation(site)
    sentence = page.locator(".ai-sentence")
    expect(sentence).to_have_text(_sentence(evaluation, 0.9))
    table = page.locator(".ai-threshold-table tbody tr")
    expect(table).to_have_count(len(evaluation["thresholds"]))
    expect(page.locator(".ai-evaluation .chart canvas")).to_have_count(1)  # uPlot drew the chart from data-ai-chart

    # accept one: the line gets the suggested account, the verdict is stored
    _row(page, first.suggestion_id).get_by_role("button", name="Accept").click()
    expect(page.get_by_role("status")).to_have_text("Suggestion accepted.")
    assert _suggestion(site, first.suggestion_id).status == "accepted"
    assert _line_account(site, first.line.line_id) == first.account_id

    # correct one to another account of the chart
    other = next(a for name, a in site.ai["accounts"].items() if a != second.account_id)
    row = _row(page, second.suggestion_id)
    row.get_by_label("Right account").select_option(str(other))
    row.get_by_role("button", name="Correct").click()
    expect(page.get_by_role("status")).to_have_text("Suggestion corrected.")
    assert _suggestion(site, second.suggestion_id).status == "corrected"
    assert _line_account(site, second.line.line_id) == other

    # bulk: tick two, reject them together
    expect(rows).to_have_count(3)
    for s in (third, fourth):
        _row(page, s.suggestion_id).get_by_role("checkbox").check()
    page.get_by_role("button", name="Reject ticked").click()
    expect(page.get_by_role("status")).to_have_text("2 suggestions rejected.")
    assert [_suggestion(site, s.suggestion_id).status for s in (third, fourth, fifth)] == ["rejected", "rejected", "open"]
    assert _line_account(site, third.line.line_id) is None  # only suggested: nothing to take back
    assert _feedback(site) == sorted([(first.suggestion_id, "accept", str(first.account_id)),
                                      (second.suggestion_id, "correct", str(other)),
                                      (third.suggestion_id, "reject", None), (fourth.suggestion_id, "reject", None)])
    expect(rows).to_have_count(1)
    week = page.locator("table.ai-weeks tbody tr")
    expect(week).to_have_count(1)
    expect(week.locator("td")).to_have_text(["1", "1", "2", "25%"])

    # a threshold: the sentence follows the input as typed, and again once saved
    high = page.get_by_label("High threshold of line coding")
    high.fill("0.8")
    expect(sentence).to_have_text(_sentence(evaluation, 0.8))
    page.get_by_role("button", name="Save thresholds").click()
    expect(page.get_by_role("status")).to_have_text("Confidence thresholds saved.")
    expect(sentence).to_have_text(_sentence(evaluation, 0.8))
    expect(page.locator(".ai-threshold-table tr.current th")).to_have_text("0.80")
    with site.engine.connect() as conn:
        assert ai_settings.read(conn, site.ai["company_id"]).task("line_coding").high == 0.8

    # a refused threshold: the sentence, what was typed, nothing stored
    before = _state(site)
    page.get_by_label("Low threshold of vendor matching").fill("0.95")
    page.get_by_label("High threshold of vendor matching").fill("0.6")
    page.get_by_role("button", name="Save thresholds").click()
    expect(page.get_by_role("alert")).to_contain_text("Vendor matching: the low threshold (0.95) must not be above the high one (0.6)")
    expect(page.get_by_label("Low threshold of vendor matching")).to_have_value("0.95")
    assert _state(site) == before

    # preferences: a task off, another suggest-only, only the ticked integration
    page.goto(site.url + PAGE)
    page.get_by_role("switch", name="Vendor matching on").uncheck()
    page.get_by_label("What line coding does with a confident answer").select_option("suggest")
    page.get_by_label("Only the ones ticked").check()
    page.get_by_label("QuickBooks (Acme)").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_have_text("Processing preferences saved.")
    with site.engine.connect() as conn:
        saved = ai_settings.read(conn, site.ai["company_id"])
    assert not saved.task("vendor_match").enabled and saved.task("line_coding").enabled
    assert saved.task("line_coding").mode == "suggest" and saved.task("line_coding").high == 0.8  # thresholds kept
    assert saved.integration_ids == [site.ai["integration_id"]]
    expect(page.get_by_role("switch", name="Vendor matching on")).not_to_be_checked()

    # the price per CPU hour, and the cost it gives
    page.get_by_label("Price per CPU hour").fill("3.6")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_role("status")).to_have_text("Price saved: 3.6 per CPU hour.")
    with site.engine.connect() as conn:
        usage = conn.execute(sa.select(ai_usage).where(ai_usage.c.company_id == site.ai["company_id"],
                                                       ai_usage.c.task == "line_coding")).one()
    assert usage.training_runs == 1 and usage.predictions == len(made)
    cost = page.locator("table.ai-costs tr[data-task='line_coding']")
    expect(cost.locator("td.cost")).to_have_text(f"{float(usage.cpu_seconds) / 3600 * 3.6:.4f}")
    page.screenshot(path="/tmp/ai-page.png", full_page=True)


def test_a_viewer_reads_without_buttons_and_forged_posts_are_refused(ai, page):
    site, made = ai, ai.ai["suggestions"]
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(site.url + "/settings/integrations")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    page.get_by_role("link", name="Open AI assist").click()
    expect(page.locator("tr[data-suggestion]")).to_have_count(len(made))
    expect(page.locator(".ai-sentence")).to_have_text(_sentence(_evaluation(site), 0.9))
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    expect(page.get_by_label("High threshold of line coding")).to_be_disabled()
    token = csrf_of(page)
    before = _state(site)
    forged = {"feedback": {"one": f"accept:{made[0].suggestion_id}"},
              "thresholds": {"low_line_coding": "0.1", "high_line_coding": "0.2"},
              "preferences": {"scope": "all"}, "price": {"price_per_cpu_hour": "9"}}
    for path, form in forged.items():
        answer = page.request.post(f"{site.url}{PAGE}/{path}", form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403 and "Only an admin" in answer.text(), path
    assert _state(site) == before


def test_another_companys_suggestion_or_integration_is_not_found(ai, page):
    site = ai
    with site.engine.begin() as conn:  # a suggestion of Bella's, on Bella's Xero
        bella = conn.scalar(ai_suggestion.insert().values(
            company_id=site.companies["Bella"], integration_id=site.integrations["Xero (Bella)"], task="line_coding",
            subject_type="invoice_line", input_key="v|bella line", input={"description": "Bella's line"}, value="1",
            label="Bella's account", probability=0.7, action="suggested").returning(ai_suggestion.c.id))
    sign_in(page, site.url, "admin@acme.example")
    page.goto(site.url + PAGE)
    expect(page.get_by_text("Bella's line")).to_have_count(0)
    token = csrf_of(page)
    before = _state(site)
    for form in ({"one": f"accept:{bella}"}, {"one": f"reject:{bella}"}, {"bulk": "reject", "suggestion": str(bella)},
                 {"one": "accept:999999"}):
        answer = page.request.post(f"{site.url}{PAGE}/feedback", form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 404, form
        assert "Bella" not in answer.text()
    answer = page.request.post(f"{site.url}{PAGE}/preferences", max_redirects=0, form={
        "csrf_token": token, "scope": "chosen", "integration": str(site.integrations["Xero (Bella)"])})
    assert answer.status == 404
    assert _state(site) == before
    own = ai.ai["suggestions"][0].suggestion_id  # control: the same request with an own id is decided
    answer = page.request.post(f"{site.url}{PAGE}/feedback", form={"csrf_token": token, "one": f"accept:{own}"}, max_redirects=0)
    assert answer.status == 303 and _suggestion(site, own).status == "accepted"


@pytest.mark.parametrize("email", ["admin@acme.example", "viewer@acme.example"])
def test_the_page_passes_axe_and_shows_no_secret(ai, page, email):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    violations = []  # the charts and the live sentence run under the CSP: no inline script or style
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, ai.url, email)
    page.goto(ai.url + PAGE)
    expect(page.locator(".ai-evaluation .chart canvas")).to_have_count(1)
    assert CANARY not in page.content() and violations == []
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


# ---- the three tasks' charts -------------------------------------------------------------------
@pytest.fixture
def all_tasks(ai):
    """`ai`, plus what the account-mapping and vendor-matching evaluations are measured on: the
    bookkeeper's category mappings and their review of vendor matches (the matches made by the
    engine as the export asks for them; accepted when the vendor typed in was made from the
    match, rejected otherwise), both evaluations stored by the training's own functions, and a
    possible duplicate left open. Vendors typed in: the ledger's name plus "Services Group" (another
    vendor), in capitals with a legal suffix, or plus "Yard" (the same vendor)."""
    from hub.ai import feedback as ai_feedback_api, vendor_match
    from hub.demo_ai import CATEGORIES
    from hub.schema import gl_account
    from hub.sync.account_mapping import map_to_account

    site, keyring = ai, Keyring.from_env()
    company_id, integration_id = site.ai["company_id"], site.ai["integration_id"]
    with site.engine.begin() as conn:
        accounts = {r.name: r.id for r in conn.execute(sa.select(gl_account.c.id, gl_account.c.name)
                                                       .where(gl_account.c.integration_id == integration_id))}
        for category, account in CATEGORIES:
            if account in accounts:
                map_to_account(conn, integration_id, category, accounts[account])
        ledger = dict(conn.execute(sa.select(vendor.c.id, vendor.c.display_name).where(vendor.c.integration_id == integration_id)).all())
        variants = (lambda name: f"{name} Services Group", lambda name: f"{name.upper()}, Inc.", lambda name: f"{name} Yard")
        typed = [(variants[k % 3](name), vid if k % 3 else None) for k, (vid, name) in enumerate(sorted(ledger.items()))]
        for name, right in typed:
            local = conn.execute(sa.insert(vendor).values(company_id=company_id, display_name=name).returning(vendor)).mappings().one()
            like = vendor_match.for_export(conn, integration_id, local)
            assert like is not None and like.action != "none", (name, like)
            moved = vendor_match.link(conn, company_id, local["id"], like.remote_vendor_id) if like.action == "auto_applied" else None
            suggestion_id = vendor_match.record(conn, integration_id, like, name, moved=moved)
            ai_feedback_api.give(conn, company_id, suggestion_id, "accept" if like.remote_vendor_id == right else "reject")
        pending = conn.execute(sa.insert(vendor).values(company_id=company_id, display_name=f"{ledger[min(ledger)]} Depot")
                               .returning(vendor)).mappings().one()
        like = vendor_match.for_export(conn, integration_id, pending)
        assert like.action == "suggested", like
        site.ai["pending_vendor"] = (pending["id"], vendor_match.record(conn, integration_id, like, pending["display_name"]))
    for result in (training.evaluate_account_mapping(site.engine, keyring, integration_id),
                   training.evaluate_vendor_matching(site.engine, keyring, integration_id)):
        assert result.status == "evaluated", result.reason
    return site


def _task_evaluation(site, task: str) -> dict:
    with site.engine.connect() as conn:
        return conn.scalar(sa.select(ai_model.c.evaluation).where(ai_model.c.integration_id == site.ai["integration_id"],
                                                                  ai_model.c.task == task).order_by(ai_model.c.version.desc()).limit(1))


def test_each_task_shows_what_its_thresholds_mean_and_a_possible_duplicate_is_accepted(all_tasks, page):
    site = all_tasks
    sign_in(page, site.url, "admin@acme.example")
    page.goto(site.url + PAGE)
    expect(page.locator(".ai-evaluation .chart canvas")).to_have_count(3)  # uPlot drew the three charts
    for task, unit in (("line_coding", "lines"), ("account_mapping", "categories"), ("vendor_match", "vendors")):
        evaluation = _task_evaluation(site, task)
        card = page.locator(f"article.ai-evaluation[data-task='{task}']")
        sentence = card.locator(".ai-sentence")
        expect(sentence).to_have_text(_sentence(evaluation, 0.9).replace("of lines", f"of {unit}"))
        expect(card.locator(".ai-threshold-table tbody tr")).to_have_count(len(evaluation["thresholds"]))
        expect(card.locator("header")).to_contain_text(f"{evaluation['test_size']} ")
        # the sentence follows the task's own high threshold as it is typed
        page.get_by_label(f"High threshold of {ai_view_label(task)}").fill("0.75")
        expect(sentence).to_have_text(_sentence(evaluation, 0.75).replace("of lines", f"of {unit}"))
    mapping = _task_evaluation(site, "account_mapping")
    with site.engine.connect() as conn:
        mapped = conn.scalar(sa.select(sa.func.count()).select_from(account_mapping).where(account_mapping.c.integration_id == site.ai["integration_id"]))
    assert mapping["test_size"] == mapped

    vendor_id, suggestion_id = site.ai["pending_vendor"]
    row = _row(page, suggestion_id)
    expect(row).to_contain_text("Vendor matching")
    row.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("status")).to_have_text("Suggestion accepted.")
    assert _suggestion(site, suggestion_id).status == "accepted"
    with site.engine.connect() as conn:  # linked: the hub vendor is taken as the ledger's, and retired
        assert conn.scalar(sa.select(vendor.c.is_active).where(vendor.c.id == vendor_id)) is False
    expect(page.locator("table.ai-versions[data-task='vendor_match'] tbody tr")).to_have_count(1)


def ai_view_label(task: str) -> str:
    from hub.web.ai_view import TASK_LABELS

    return TASK_LABELS[task].lower()
