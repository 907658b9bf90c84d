"""The Procore import's domain events (hub/sync/procore_events.py): `task.assigned`,
`schedule.changed`, `budget.alert`, written by the RFI / submittal page writer in the page's
transaction. Real PostgreSQL, real HTTP to the Procore emulator (remote edits through its
admin `mutate`, as a Procore user would make them), and for the last test the dispatcher
posting them to the Slack emulator."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
import sqlalchemy as sa

from emulators.procore import create_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.transport import RetrySettings
from hub.schema import outbox_event, project, rfi
from hub.sync import project_records as procore_sync
from hub.sync.engine import sync_stream
from hub.sync.procore_link import link_project
from tests.test_notify_support import attempts, notifying, wait_until, world
from tests.test_procore_sync import add_procore_integration

pytestmark = pytest.mark.timeout(120)
FAST = RetrySettings(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=5.0, timeout_s=5.0)
RFIS, SUBMITTALS = registry.stream("procore/rfis"), registry.stream("procore/submittals")
PROCORE_EVENTS = ("task.assigned", "schedule.changed", "budget.alert")


@pytest.fixture
def procore():
    emulator = create_emulator(projects=2, rfis_per_project=30, submittals_per_project=8, daily_logs_per_project=3)
    with serve(emulator.app) as url:
        yield emulator, url


def _connect(engine, keyring, company_id, emulator, url):
    """A Procore integration of the company with both remote projects linked; (integration id,
    {remote project id: local project id})."""
    with engine.begin() as conn:
        iid = add_procore_integration(conn, keyring, company_id, emulator, url)
        local = [conn.execute(sa.insert(project).values(company_id=company_id, name=name).returning(project.c.id)).scalar_one()
                 for name in ("Riverside", "Hilltop")]
    remote = sorted(emulator.state.projects)
    for local_id, remote_id in zip(local, remote):
        link_project(engine, keyring, iid, local_id, remote_id)
    return iid, dict(zip(remote, local))


@pytest.fixture
def site(clean_db, secret_keys, procore):
    """(engine, keyring, integration id, {remote project: local project}, emulator, url)."""
    emulator, url = procore
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Builders")
    iid, linked = _connect(clean_db, keyring, company_id, emulator, url)
    return clean_db, keyring, iid, linked, emulator, url


def _sync(engine, keyring, iid, stream, **kwargs):
    client = open_client(engine, keyring, iid, retry=FAST)
    try:
        return sync_stream(engine, keyring, iid, stream, client=client, **kwargs)
    finally:
        client.transport.close()


def _mutate(url, op, entity, id=None, project_id=None, **fields):
    body = {"op": op, "entity": entity, "id": id, "project_id": project_id, "fields": fields}
    response = httpx.post(f"{url}/_emulator/mutate", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _events(engine, after: int = 0) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox_event.c.id, outbox_event.c.event_type, outbox_event.c.payload)
                            .where(outbox_event.c.id > after).order_by(outbox_event.c.id)).all()


def _by_record(events) -> dict[tuple[str, str], dict]:
    found = {}
    for e in events:
        key = (e.event_type, e.payload["remote_id"])
        assert key not in found, f"{key} announced twice"
        found[key] = e.payload
    return found


def _local_ids(engine, table, iid) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.remote_id, table.c.id).where(table.c.integration_id == iid)).all())


def _other_user(person: dict) -> int:
    return 7000 + (person["id"] - 7000 + 1) % 8  # the emulator's eight users


def test_first_import_is_quiet_then_each_remote_edit_is_announced_once(site):
    engine, keyring, iid, linked, emulator, url = site
    p0, p1 = sorted(linked)
    ids = sorted(emulator.state.tables["rfi"][p0])
    emulator.state.recycle("rfi", ids[-1])  # in the bin at the first import: stored deleted, not announced
    first = [_sync(engine, keyring, iid, s, page_size=10) for s in (RFIS, SUBMITTALS)]
    assert all(r.mode == "full" for r in first) and first[0].counts.created == 59
    assert _events(engine) == []  # the first import of a project announces none of its history

    a, b, c, d, e, f = ids[:6]
    state = emulator.state
    old_a, old_due_b = dict(state.get("rfi", a)["ball_in_court"]), state.get("rfi", b)["due_date"]
    new_due_b = (date.fromisoformat(old_due_b) + timedelta(days=10)).isoformat()
    _mutate(url, "update", "rfi", a, assignee_id=_other_user(old_a))
    _mutate(url, "update", "rfi", b, due_date=new_due_b, schedule_impact={"status": "yes_known", "value": 5})
    _mutate(url, "update", "rfi", c, cost_impact={"status": "yes_known", "value": "4800"})
    _mutate(url, "update", "rfi", d, cost_impact={"status": "yes_unknown"})
    _mutate(url, "update", "rfi", e, subject="Worded differently")  # not a change anyone is told about
    _mutate(url, "update", "rfi", f, cost_impact={"status": "yes_known", "value": 999}, due_date="2031-01-01")
    _mutate(url, "recycle", "rfi", f)  # arrives recycled: no event, even with changes
    _mutate(url, "create", "rfi", project_id=p0, subject="Brand new")  # first seen: no event
    h = sorted(state.tables["rfi"][p1])[0]
    _mutate(url, "update", "rfi", h, cost_impact={"status": "yes_known", "value": 120.5})
    sub = sorted(state.tables["submittal"][p0])[0]
    _mutate(url, "update", "submittal", sub, ball_in_court_id=7003, due_date="2030-06-30")

    second = [_sync(engine, keyring, iid, s, page_size=10) for s in (RFIS, SUBMITTALS)]
    assert all(r.mode == "incremental" for r in second)
    events = _by_record(_events(engine))
    rfi_ids, projects = _local_ids(engine, rfi, iid), {
        linked[p0]: {"id": linked[p0], "name": "Riverside", "remote_id": str(p0)},
        linked[p1]: {"id": linked[p1], "name": "Hilltop", "remote_id": str(p1)}}
    assert sorted(events) == sorted([("task.assigned", str(a)), ("schedule.changed", str(b)), ("budget.alert", str(c)),
                                     ("budget.alert", str(d)), ("budget.alert", str(h)), ("task.assigned", str(sub)),
                                     ("schedule.changed", str(sub))])
    rec_a = state.get("rfi", a)
    new_a = {k: rec_a["ball_in_court"][k] for k in ("id", "name", "login")}
    assert events[("task.assigned", str(a))] == {
        "entity": "rfi", "id": rfi_ids[str(a)], "remote_id": str(a), "number": rec_a["full_number"], "subject": rec_a["subject"],
        "url": rec_a["link"], "project": projects[linked[p0]], "role": "ball_in_court", "assignee": new_a,
        "previous_assignee": {k: old_a[k] for k in ("id", "name", "login")}}
    assert new_a["id"] != old_a["id"]
    assert events[("schedule.changed", str(b))]["changes"] == {
        "due_date": {"before": old_due_b, "after": new_due_b},
        "schedule_impact": {"before": {"status": "tbd", "value": None}, "after": {"status": "yes_known", "value": 5.0}}}
    budget_c = events[("budget.alert", str(c))]
    assert budget_c["cost_impact"] == {"before": {"status": "tbd", "value": None}, "after": {"status": "yes_known", "value": 4800.0}}
    assert budget_c["project_known_cost_impact"] == 4800.0  # f's 999 is in the bin: not counted
    assert events[("budget.alert", str(d))]["cost_impact"]["after"] == {"status": "yes_unknown", "value": None}
    assert events[("budget.alert", str(h))]["project"] == projects[linked[p1]]
    assert events[("budget.alert", str(h))]["project_known_cost_impact"] == 120.5  # per project
    assigned_sub = events[("task.assigned", str(sub))]
    assert (assigned_sub["entity"], assigned_sub["title"], assigned_sub["assignee"]["id"], assigned_sub["previous_assignee"]) == (
        "submittal", state.get("submittal", sub)["title"], 7003, None)
    assert events[("schedule.changed", str(sub))]["changes"] == {"due_date": {"before": None, "after": "2030-06-30"}}

    # a re-sync of the same records (and a touch that changes nothing) announces nothing more
    last = max(e.id for e in _events(engine))
    _mutate(url, "update", "rfi", c, cost_impact={"status": "yes_known", "value": 4800})  # same value: only updated_at moves
    _mutate(url, "update", "rfi", d, cost_impact={"status": "no_impact"})  # a cost that went away is no alert
    for s in (RFIS, SUBMITTALS):
        assert _sync(engine, keyring, iid, s).counts.updated >= (2 if s is RFIS else 0)
    assert _events(engine, last) == []

    _mutate(url, "update", "rfi", c, cost_impact={"status": "yes_known", "value": 5200})  # the value of a cost changes
    _sync(engine, keyring, iid, RFIS)
    [alert] = _events(engine, last)
    assert alert.event_type == "budget.alert" and alert.payload["project_known_cost_impact"] == 5200.0
    assert alert.payload["cost_impact"]["before"] == {"status": "yes_known", "value": 4800.0}


def test_a_page_that_rolls_back_announces_nothing_and_its_rerun_announces_once(site, monkeypatch):
    """Three reassigned RFIs, one per page. The second page's transaction fails after its
    events were written (its cursor position cannot be saved): the first page's event
    stays, the second's goes with the page. The rerun resumes and announces the rest once."""
    engine, keyring, iid, linked, emulator, url = site
    _sync(engine, keyring, iid, RFIS)
    assert _events(engine) == []
    p0 = sorted(linked)[0]
    changed = sorted(emulator.state.tables["rfi"][p0])[3:6]
    for rid in changed:
        _mutate(url, "update", "rfi", rid, assignee_id=_other_user(emulator.state.get("rfi", rid)["ball_in_court"]))

    save, calls = procore_sync._save_position, []

    def failing_second_page(conn, *args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("the database went away mid-page")
        return save(conn, *args)

    monkeypatch.setattr(procore_sync, "_save_position", failing_second_page)
    with pytest.raises(RuntimeError, match="went away"):
        _sync(engine, keyring, iid, RFIS, page_size=1)
    monkeypatch.setattr(procore_sync, "_save_position", save)
    assert [(e.event_type, e.payload["remote_id"]) for e in _events(engine)] == [("task.assigned", str(changed[0]))]
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(rfi.c.data).where(rfi.c.remote_id == str(changed[1])))
    assert stored["ball_in_court"]["id"] != emulator.state.get("rfi", changed[1])["ball_in_court"]["id"]  # rolled back too

    rerun = _sync(engine, keyring, iid, RFIS, page_size=1)
    assert rerun.resumed_after > 0
    announced = _by_record(_events(engine))  # fails on a double
    assert sorted(announced) == sorted(("task.assigned", str(rid)) for rid in changed)
    for rid in changed:
        assert announced[("task.assigned", str(rid))]["assignee"]["id"] == emulator.state.get("rfi", rid)["ball_in_court"]["id"]


def test_a_slack_route_posts_the_procore_events(clean_db, secret_keys, procore):
    """End to end: remote edits -> import -> outbox -> dispatcher -> a readable Slack message."""
    emulator, url = procore
    with world(clean_db, company="Builders") as w:
        iid, linked = _connect(clean_db, w.keyring, w.company_id, emulator, url)
        # as scripts/demo.sh does: the site team's channel added to the Slack emulator, then the route
        httpx.post(f"{w.slack_url}/_emulator/channels", json={"name": "site", "id": "C0SITE0001"}, timeout=5).raise_for_status()
        route = w.route("slack", events=list(PROCORE_EVENTS), to="#site")
        _sync(clean_db, w.keyring, iid, RFIS)
        p0 = sorted(linked)[0]
        rid = sorted(emulator.state.tables["rfi"][p0])[0]
        previous = emulator.state.get("rfi", rid)["ball_in_court"]
        rec = _mutate(url, "update", "rfi", rid, assignee_id=_other_user(previous), cost_impact={"status": "yes_known", "value": 2500})
        _sync(clean_db, w.keyring, iid, RFIS)
        with notifying(w):
            wait_until(lambda: sum(a.status == "succeeded" for a in attempts(clean_db, route.id)) >= 2, what="both posted")
    what = f"RFI #{rec['full_number']} '{rec['subject']}'"
    assert sorted(m["text"] for m in w.slack.messages) == sorted([
        f"{what} assigned to {rec['ball_in_court']['name']} on project Riverside (was {previous['name']})",
        f"{what} on project Riverside: cost impact $2,500.00 (was to be determined); project's known cost impact now $2,500.00"])
    assert all(m["channel"] == "C0SITE0001" and m["blocks"][0]["type"] == "header" for m in w.slack.messages)
