"""AI assist engine (hub/ai) on real PostgreSQL: training from an integration's coded bill
history, calibrated suggestions, thresholds, feedback, company isolation, vendor matching and
account-mapping suggestions. The history is made by the emulators' bill-line generator
(emulators/bill_lines.py) and, in the first test, imported from the QuickBooks emulator over
real HTTP by the pull sync; expected answers are read from that history, never from the code
under test."""

import random
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from emulators import bill_lines
from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.ai import feedback, mapping, settings, storage, training, usage
from hub.ai.evaluation import evaluate
from hub.ai.data import coding_examples
from hub.ai.scoring import LineToCode, suggest_for_lines
from hub.ai.vendor_match import suggest_vendor_matches
from hub.crypto import Keyring, generate_key
from hub.errors import ValidationError
from hub.providers import registry
from hub.schema import ai_feedback, ai_model, ai_suggestion, gl_account, invoice, invoice_line, vendor
from hub.sync.engine import sync_stream

REALM = "9130350000000141"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}


def _integration(conn, keyring, company_id, realm="9130350000000999"):
    return store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks", config={"realm_id": realm},
                                 credentials={**CLIENT, "refresh_token": "rt"}, active=True)


def _seed_history(conn, company_id, integration_id, *, bills=700, vendors=30, seed=1, trade="construction"):
    """A ledger's imported history, as the pull writes it: accounts, vendors, payable bills with coded lines."""
    names = bill_lines.chart_accounts(trade)
    account_ids = {}
    for i, name in enumerate(names):
        account_ids[name.casefold()] = conn.scalar(gl_account.insert().values(
            company_id=company_id, integration_id=integration_id, remote_id=f"a{i}", code=str(500 + i), name=name,
            account_type="Expense").returning(gl_account.c.id))
    vendor_ids = [conn.scalar(vendor.insert().values(company_id=company_id, integration_id=integration_id, remote_id=f"v{k}",
                                                     display_name=f"Vendor {k}").returning(vendor.c.id)) for k in range(vendors)]
    expense = list(account_ids.values())
    rnd = random.Random(seed)
    lines = []
    for b in range(bills):
        k = rnd.randrange(vendors)
        invoice_id = conn.scalar(invoice.insert().values(
            company_id=company_id, integration_id=integration_id, remote_id=f"b{b}", vendor_id=vendor_ids[k], kind="payable",
            number=f"B-{b}", issue_date=date(2025, 1, 1), status="authorised").returning(invoice.c.id))
        for n in range(1 + rnd.randrange(3)):
            made = bill_lines.bill_line(trade, k + 1, rnd)
            lines.append({"invoice_id": invoice_id, "line_no": n + 1, "description": made.description, "amount": made.amount,
                          "unit_amount": made.amount, "gl_account_id": bill_lines.resolve_account(made, account_ids, expense)})
    conn.execute(invoice_line.insert(), lines)
    return {"accounts": account_ids, "vendors": vendor_ids, "lines": lines}


@pytest.fixture
def ledger(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Builder")
        integration_id = _integration(conn, keyring, company_id)
        history = _seed_history(conn, company_id, integration_id)
    return {"engine": clean_db, "keyring": keyring, "company_id": company_id, "integration_id": integration_id, **history}


def _new_bill_line(engine, ledger, description, vendor_index=0, amount=100.0):
    """An uncoded line of a new bill (what an import or a person adds), returning its id."""
    with engine.begin() as conn:
        invoice_id = conn.scalar(invoice.insert().values(
            company_id=ledger["company_id"], integration_id=ledger["integration_id"], remote_id=f"new-{description}-{amount}",
            vendor_id=ledger["vendors"][vendor_index], kind="payable", number=f"N-{description[:10]}-{amount}",
            issue_date=date(2025, 2, 1), status="authorised").returning(invoice.c.id))
        return conn.scalar(invoice_line.insert().values(invoice_id=invoice_id, line_no=1, description=description, amount=amount)
                           .returning(invoice_line.c.id))


def _suggest(ledger, lines):
    with ledger["engine"].begin() as conn:
        return suggest_for_lines(conn, ledger["integration_id"], lines, keyring=ledger["keyring"])


def _train(ledger):
    result = training.train_line_coding(ledger["engine"], ledger["keyring"], ledger["integration_id"])
    assert result.status == "trained", result.reason
    return result


def test_a_model_learns_from_the_history_the_pull_imported(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    emulator = quickbooks_emulator(vendors=15, bills=400, invoices=0, accounts=24, realm_id=REALM, seed=5)
    with serve(emulator.app) as url:
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Imported")
            integration_id = store.add_integration(
                conn, keyring, company_id=company_id, provider="quickbooks",
                config={"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"},
                credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})},
                active=True)
        for stream in ("accounts", "vendors", "invoices"):
            sync_stream(clean_db, keyring, integration_id, registry.stream(f"quickbooks/{stream}"))
        with clean_db.connect() as conn:
            coded = conn.execute(sa.select(invoice_line.c.description, gl_account.c.name)
                                 .join(invoice, invoice.c.id == invoice_line.c.invoice_id)
                                 .join(gl_account, gl_account.c.id == invoice_line.c.gl_account_id)
                                 .where(invoice.c.integration_id == integration_id)).all()
        assert len(coded) > 500  # the generator's descriptions and accounts landed in the hub's tables
        result = training.train_line_coding(clean_db, keyring, integration_id)
        assert result.status == "trained" and result.training_size == len(coded) and result.version == 1
        assert result.evaluation["top1"] > 0.8 and result.evaluation["baselines"]["vendor"]["top1"] is not None
        # the account the history gives "ready-mix" concrete lines is the one suggested for a new one
        by_words = Counter(name for d, name in coded if "ready-mix" in d.lower() or "ready mix" in d.lower())
        assert by_words
        expected = by_words.most_common(1)[0][0]
        with clean_db.begin() as conn:
            [s] = suggest_for_lines(conn, integration_id, [LineToCode("Ready-mix concrete 12 yds 4000psi", None, 2400)], keyring=keyring)
        assert s.account_name == expected and s.probability > 0.5
        # a bill entered in QuickBooks with an item line (no account): the next import suggests one, in its own transaction
        vendor_ref = emulator.state.read("Bill", 1)["VendorRef"]
        created = emulator.state.mutate("create", "Bill", fields={"VendorRef": vendor_ref, "Line": [{
            "Amount": 2400.0, "Description": "READY-MIX CONCRETE 12 YDS 4000PSI", "DetailType": "ItemBasedExpenseLineDetail",
            "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "1", "name": "Services"}, "Qty": 1, "UnitPrice": 2400.0}}]})
        sync_stream(clean_db, keyring, integration_id, registry.stream("quickbooks/invoices"))
    with clean_db.connect() as conn:
        line = conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id).join(invoice)
                            .where(invoice.c.integration_id == integration_id, invoice.c.remote_id == created["Id"])).one()
        suggestion = conn.execute(sa.select(ai_suggestion).where(ai_suggestion.c.subject_id == line.id)).one()
        account = conn.scalar(sa.select(gl_account.c.name).where(gl_account.c.id == int(suggestion.value)))
    assert account == expected and suggestion.subject_type == "invoice_line"
    if suggestion.action == "auto_applied":
        assert line.gl_account_id == int(suggestion.value)
    else:
        assert suggestion.action == "suggested" and line.gl_account_id is None


def test_feedback_changes_the_next_models_answer(ledger):
    _train(ledger)
    with ledger["engine"].begin() as conn:  # every suggestion is shown (and recorded), however unsure
        settings.set_task(conn, ledger["company_id"], "line_coding", low=0.0, mode="suggest")
    line_id = _new_bill_line(ledger["engine"], ledger, "gravel base 3/4 minus 12 tons", amount=900)
    [first] = _suggest(ledger, [LineToCode("gravel base 3/4 minus 12 tons", ledger["vendors"][0], 900, line_id)])
    assert first.suggestion_id is not None, first
    other = next(a for name, a in ledger["accounts"].items() if a != first.account_id and name == "dump & disposal fees")
    with ledger["engine"].begin() as conn:
        feedback.give(conn, ledger["company_id"], first.suggestion_id, "correct", correct_value=other)
        assert conn.scalar(sa.select(invoice_line.c.gl_account_id).where(invoice_line.c.id == line_id)) == other
    [before] = _suggest(ledger, [LineToCode("gravel base 3/4 minus 12 tons", ledger["vendors"][0], 900)])
    assert before.account_id == first.account_id  # the stored model has not learnt yet: feedback waits for training
    result = _train(ledger)
    assert result.version == 2
    [after] = _suggest(ledger, [LineToCode("gravel base 3/4 minus 12 tons", ledger["vendors"][0], 900)])
    assert after.account_id == other


def test_thresholds_move_lines_between_auto_applied_suggested_and_untouched(ledger):
    _train(ledger)
    rnd = random.Random(99)
    texts = [(bill_lines.bill_line("construction", 1 + (i % 30), rnd), i % 30) for i in range(60)]
    ids = [_new_bill_line(ledger["engine"], ledger, m.description, v, m.amount + i / 100) for i, (m, v) in enumerate(texts)]
    lines = [LineToCode(m.description, ledger["vendors"][v], m.amount, line_id) for (m, v), line_id in zip(texts, ids)]

    def actions(low, high, mode="auto"):
        with ledger["engine"].begin() as conn:
            settings.set_task(conn, ledger["company_id"], "line_coding", low=low, high=high, mode=mode)
            conn.execute(sa.update(invoice_line).where(invoice_line.c.id.in_(ids)).values(gl_account_id=None))
        out = _suggest(ledger, lines)
        for s in out:  # each action is the rule applied to the suggestion's own probability
            expected = "none" if s.probability < low else "auto_applied" if s.probability >= high and mode == "auto" else "suggested"
            assert s.action == expected, (s.probability, low, high, s.action)
        return out

    default = Counter(s.action for s in actions(0.5, 0.9))
    assert default["auto_applied"] > 0
    strict = Counter(s.action for s in actions(0.97, 0.995))
    assert strict["auto_applied"] < default["auto_applied"] and strict["none"] > default["none"]
    loose = actions(0.0, 0.0)
    assert Counter(s.action for s in loose) == {"auto_applied": len(lines)}
    with ledger["engine"].connect() as conn:  # auto-applied means the line now has the account
        stored = dict(conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id).where(invoice_line.c.id.in_(ids))).all())
    assert all(stored[s.line.line_id] == s.account_id for s in loose)
    suggest_only = Counter(s.action for s in actions(0.0, 0.0, mode="suggest"))
    assert suggest_only == {"suggested": len(lines)}
    with ledger["engine"].connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(invoice_line)
                           .where(invoice_line.c.id.in_(ids), invoice_line.c.gl_account_id.isnot(None))) == 0
        assert usage.report(conn, ledger["company_id"])[0]["predictions"] >= 4 * len(lines)


def test_a_rejected_suggestion_is_never_auto_applied_again_for_the_same_input(ledger):
    _train(ledger)
    with ledger["engine"].begin() as conn:
        settings.set_task(conn, ledger["company_id"], "line_coding", low=0.0, high=0.0)  # everything would be auto-applied
    line_id = _new_bill_line(ledger["engine"], ledger, "mini excavator rental job 1412", amount=800)
    [s] = _suggest(ledger, [LineToCode("mini excavator rental job 1412", ledger["vendors"][2], 800, line_id)])
    assert s.action == "auto_applied"
    with ledger["engine"].begin() as conn:
        feedback.give(conn, ledger["company_id"], s.suggestion_id, "reject")
        assert conn.scalar(sa.select(invoice_line.c.gl_account_id).where(invoice_line.c.id == line_id)) is None  # taken back
    [again] = _suggest(ledger, [LineToCode("Mini excavator rental job 1577", ledger["vendors"][2], 1200, line_id)])  # numbers aside, same input
    assert again.account_id == s.account_id and again.action == "suggested"
    with ledger["engine"].connect() as conn:
        assert conn.scalar(sa.select(invoice_line.c.gl_account_id).where(invoice_line.c.id == line_id)) is None


def test_probabilities_are_calibrated_on_held_out_lines(ledger):
    with ledger["engine"].connect() as conn:
        examples = coding_examples(conn, ledger["integration_id"])
    result = evaluate(examples, baselines=True)
    assert result.calibration["ece"] < 0.06
    for row in result.calibration["bins"]:
        if row["count"] >= 80:
            assert abs(row["predicted"] - row["observed"]) < 0.1, row
    at_90 = next(r for r in result.table if r["threshold"] == 0.9)
    assert at_90["precision"] >= 0.9 and at_90["coverage"] > 0.5
    assert result.top1 > result.baselines["vendor"]["top1"] and result.top1 > result.baselines["fuzzy"]["top1"]


def test_a_model_never_scores_another_companys_data(ledger):
    _train(ledger)
    keyring, engine = ledger["keyring"], ledger["engine"]
    with engine.begin() as conn:
        other_company = store.create_company(conn, "Other")
        other_integration = _integration(conn, keyring, other_company, realm="9130350000000555")
        theirs = _seed_history(conn, other_company, other_integration, bills=30, vendors=3, seed=7)
    with engine.connect() as conn:
        their_line = conn.scalar(sa.select(invoice_line.c.id).join(invoice).where(invoice.c.integration_id == other_integration).limit(1))
    with engine.begin() as conn:
        with pytest.raises(ValidationError, match="not lines of integration"):
            suggest_for_lines(conn, ledger["integration_id"], [LineToCode("lumber", None, 10, their_line)], keyring=keyring)
        with pytest.raises(ValidationError, match="not vendors"):
            suggest_for_lines(conn, ledger["integration_id"], [LineToCode("lumber", theirs["vendors"][0], 10)], keyring=keyring)
        # the other company's integration has no model of its own: nothing is suggested, ours is not borrowed
        out = suggest_for_lines(conn, other_integration, [LineToCode("2x4x8 SPF stud", theirs["vendors"][0], 300)], keyring=keyring)
        assert [s.action for s in out] == ["none"]
        assert storage.latest(conn, keyring, ledger["integration_id"], "line_coding", company_id=other_company) is None
        assert conn.scalar(sa.select(sa.func.count()).select_from(ai_suggestion).where(ai_suggestion.c.company_id == other_company)) == 0


def test_a_model_the_hub_did_not_sign_is_not_loaded(ledger):
    _train(ledger)
    with ledger["engine"].begin() as conn:
        conn.execute(sa.update(ai_model).values(model=sa.func.decode("80049500", "hex")))  # someone else's bytes
    storage._CACHE.clear()
    [s] = _suggest(ledger, [LineToCode("2x4x8 SPF stud", ledger["vendors"][0], 300)])
    assert s.action == "none" and s.account_id is None
    with ledger["engine"].connect() as conn, pytest.raises(storage.ModelRefused):
        storage.latest(conn, ledger["keyring"], ledger["integration_id"], "line_coding", company_id=ledger["company_id"])


def test_a_model_signed_before_a_key_rotation_scores_until_that_key_is_removed(ledger, secret_keys):
    """Rotating HUB_SECRET_KEYS (a new key first, the old one kept) must not stop the assist
    until the next training; removing the old key does, without unpickling anything."""
    _train(ledger)
    newest = generate_key()
    line = LineToCode("2x4x8 SPF stud", ledger["vendors"][0], 300)
    rotated = Keyring([newest, *secret_keys])
    storage._CACHE.clear()
    with ledger["engine"].begin() as conn:
        [s] = suggest_for_lines(conn, ledger["integration_id"], [line], keyring=rotated)
    assert s.account_id is not None and s.probability > 0
    storage._CACHE.clear()
    with ledger["engine"].connect() as conn, pytest.raises(storage.ModelRefused):
        storage.latest(conn, Keyring([newest]), ledger["integration_id"], "line_coding", company_id=ledger["company_id"])


def test_enough_verdicts_on_any_task_since_its_newest_version_make_the_integration_due(ledger):
    """The feedback sensor's question (training.new_feedback): vendor-match verdicts count
    against the vendor task's newest measure, not the line-coding model's."""
    _train(ledger)
    engine, iid = ledger["engine"], ledger["integration_id"]

    def verdicts(n, task="vendor_match"):
        with engine.begin() as conn:
            conn.execute(ai_feedback.insert(), [{"company_id": ledger["company_id"], "integration_id": iid, "task": task,
                                                  "input_key": f"k{uuid.uuid4().hex}", "verdict": "reject"} for _ in range(n)])
            return conn.scalar(sa.select(sa.func.max(ai_feedback.c.id)))

    verdicts(training.FEEDBACK_RETRAIN - 1)
    assert iid not in training.new_feedback(engine)
    last = verdicts(1)
    assert training.new_feedback(engine)[iid] == last
    with engine.begin() as conn:  # the vendor task measured again: those verdicts are behind it
        storage.save(conn, ledger["keyring"], company_id=ledger["company_id"], integration_id=iid, task="vendor_match",
                     model={"task": "vendor_match"}, training_size=1, evaluation={}, cpu_seconds=0)
    assert iid not in training.new_feedback(engine)
    verdicts(training.FEEDBACK_RETRAIN - 1, task="line_coding")
    assert iid not in training.new_feedback(engine)


def test_vendor_matching_finds_the_ledgers_vendor_under_another_spelling(ledger):
    engine = ledger["engine"]
    with engine.begin() as conn:
        ledger_acme = conn.scalar(vendor.insert().values(company_id=ledger["company_id"], integration_id=ledger["integration_id"],
                                                         remote_id="v-acme", display_name="ACME Lumber Co.").returning(vendor.c.id))
        conn.execute(vendor.insert().values(company_id=ledger["company_id"], integration_id=ledger["integration_id"],
                                            remote_id="v-apex", display_name="Apex Plumbing Supply", tax_id="12-3456789"))
        ours = {name: conn.scalar(vendor.insert().values(company_id=ledger["company_id"], display_name=name, tax_id=tax)
                                  .returning(vendor.c.id))
                for name, tax in (("Acme Lumber Company", None), ("Zephyr Catering", None), ("APEX PLUMBING", "12 3456789"))}
        matches = {m.vendor_id: m for m in suggest_vendor_matches(conn, ledger["integration_id"])}
    acme = matches[ours["Acme Lumber Company"]]
    assert acme.remote_vendor_id == ledger_acme and acme.probability >= 0.9 and acme.action == "auto_applied"
    assert matches[ours["APEX PLUMBING"]].reason == "same tax id"
    assert matches[ours["Zephyr Catering"]].action == "none"


def test_account_mapping_suggestions_come_from_the_history_and_the_line_model(ledger):
    _train(ledger)
    engine = ledger["engine"]
    with engine.begin() as conn:  # some history lines carry a hub category
        some = conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id).join(invoice)
                            .where(invoice.c.integration_id == ledger["integration_id"]).order_by(invoice_line.c.id).limit(400)).all()
        by_account = defaultdict(list)
        for line_id, account_id in some:
            by_account[account_id].append(line_id)
        account_id, ids = max(by_account.items(), key=lambda kv: len(kv[1]))
        conn.execute(sa.update(invoice_line).where(invoice_line.c.id.in_(ids)).values(category="Site costs"))
        out = {m.category: m for m in mapping.suggest_account_mappings(conn, ledger["integration_id"], ["Site costs", "Building permits"],
                                                                      keyring=ledger["keyring"])}
    assert out["Site costs"].account_id == account_id and out["Site costs"].source == "history"
    assert out["Site costs"].probability == pytest.approx((len(ids) + 1) / (len(ids) + 2))
    assert out["Building permits"].source == "model" and out["Building permits"].account_id == ledger["accounts"]["permits & licenses"]


def test_settings_refuse_bad_values_and_store_nothing(ledger):
    with ledger["engine"].begin() as conn:
        for kwargs in ({"low": 0.95, "high": 0.9}, {"high": 1.5}, {"mode": "sometimes"}, {"low": "abc"}):
            with pytest.raises(ValidationError):
                settings.set_task(conn, ledger["company_id"], "line_coding", **kwargs)
        assert settings.read(conn, ledger["company_id"]).task("line_coding") == settings.TaskSetting("line_coding")


def test_the_nightly_asset_trains_its_partitions_integration(ledger, dagster_instance):
    import dagster as dg

    from pipelines.assets.ai import ai_training_nightly_schedule, line_coding_model
    from pipelines.definitions import RESOURCES, defs
    from pipelines.partitions import INTEGRATIONS_PARTITION
    from resources import HubDatabase

    key = store.partition_key("quickbooks", ledger["integration_id"])
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    result = dg.materialize([line_coding_model], partition_key=key, instance=dagster_instance, resources=RESOURCES)
    assert result.success
    metadata = result.asset_materializations_for_node("ai__line_coding_model")[0].metadata
    assert metadata["status"].value == "trained" and metadata["version"].value == 1
    assert metadata["training_size"].value == len(ledger["lines"])
    # the other two tasks are measured in the same run, once people gave enough answers (none here)
    assert metadata["account_mapping_status"].value == "skipped" and metadata["vendor_match_status"].value == "skipped"
    with ledger["engine"].connect() as conn:
        assert [v["version"] for v in storage.versions(conn, ledger["integration_id"], "line_coding")] == [1]
        [row] = usage.report(conn, ledger["company_id"])
        assert (row["task"], row["training_runs"]) == ("line_coding", 1) and row["cpu_seconds"] > 0
    context = dg.build_schedule_context(instance=dagster_instance, resources={"hub_db": HubDatabase()},
                                        repository_def=defs.get_repository_def(), scheduled_execution_time=datetime(2026, 12, 8, 3, tzinfo=timezone.utc))
    requests = ai_training_nightly_schedule.evaluate_tick(context).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [(key, f"{key}:2026-12-08")]


def test_bulk_verdicts_apply_or_refuse_as_a_whole_and_usage_has_a_cost(ledger):
    _train(ledger)
    with ledger["engine"].begin() as conn:
        settings.set_task(conn, ledger["company_id"], "line_coding", low=0.0, mode="suggest")
        settings.set_company(conn, ledger["company_id"], price_per_cpu_hour=3.6)
    texts = ["16d framing nails 50lb box", "building permit BP-25-0101", "30 yd roll-off dumpster Job 2001"]
    ids = [_new_bill_line(ledger["engine"], ledger, text, 5, 100 + i) for i, text in enumerate(texts)]
    out = _suggest(ledger, [LineToCode(t, ledger["vendors"][5], 100 + i, line_id) for i, (t, line_id) in enumerate(zip(texts, ids))])
    assert {s.action for s in out} == {"suggested"}
    with ledger["engine"].begin() as conn:
        with pytest.raises(ValidationError):
            feedback.give_many(conn, ledger["company_id"], [s.suggestion_id for s in out], "correct")
        assert feedback.give_many(conn, ledger["company_id"], [s.suggestion_id for s in out], "accept") == 3
        stored = dict(conn.execute(sa.select(invoice_line.c.id, invoice_line.c.gl_account_id).where(invoice_line.c.id.in_(ids))).all())
        assert stored == {s.line.line_id: s.account_id for s in out}
        assert feedback.open_suggestions(conn, ledger["company_id"]) == []
        with pytest.raises(ValidationError, match="already accepted"):
            feedback.give(conn, ledger["company_id"], out[0].suggestion_id, "reject")
        for row in usage.report(conn, ledger["company_id"]):
            assert row["cost"] == pytest.approx(row["cpu_seconds"] / 3600 * 3.6, abs=1e-6)


def test_mapping_and_vendor_evaluations_measure_peoples_answers_once_there_are_enough(ledger):
    from hub.demo_ai import CATEGORIES
    from hub.sync.account_mapping import map_to_account

    _train(ledger)
    engine, keyring, iid = ledger["engine"], ledger["keyring"], ledger["integration_id"]
    with engine.begin() as conn:
        for category, account in CATEGORIES[:9]:
            map_to_account(conn, iid, category, ledger["accounts"][account.casefold()])
    early = training.evaluate_account_mapping(engine, keyring, iid)
    assert early.status == "skipped" and early.reason.startswith("9 categories with an account a person chose")
    with engine.begin() as conn:  # a tenth mapping, a wrong one: produce is no insurance
        map_to_account(conn, iid, "Produce", ledger["accounts"]["insurance"])
    result = training.evaluate_account_mapping(engine, keyring, iid)
    assert result.status == "evaluated" and result.evaluation["test_size"] == 10 and result.training_size == 10
    assert result.evaluation["top1"] <= 0.9  # the wrong mapping is never the model's answer
    assert result.evaluation["line_coding_version"] == 1
    with engine.connect() as conn:
        [stored] = storage.versions(conn, iid, "account_mapping")
        assert stored["evaluation"] == result.evaluation
        assert usage.report(conn, ledger["company_id"])[0]["training_runs"] >= 1

    vendors = training.evaluate_vendor_matching(engine, keyring, iid)  # nobody decided a vendor match yet
    assert vendors.status == "skipped" and vendors.reason.startswith("0 vendors people decided a match about")
    with engine.begin() as conn:
        settings.set_task(conn, ledger["company_id"], "account_mapping", enabled=False)
    assert training.evaluate_account_mapping(engine, keyring, iid).reason == "the task is off"
