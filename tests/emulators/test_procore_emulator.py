"""The Procore emulator over real HTTP: OAuth, company header, paging, filters, remote
changes, daily logs, uploads, rate limits and injected faults."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from emulators.procore import RATE_LIMIT_BODY, create_emulator, dump, iso
from emulators.serve import serve

COMPANY = 562949953421312
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}


@pytest.fixture(scope="module")
def emu():
    return create_emulator(projects=2, rfis_per_project=2500, submittals_per_project=30, daily_logs_per_project=9, seed=7)


@pytest.fixture(scope="module")
def http(emu):
    with serve(emu.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def pids(emu):
    return sorted(emu.state.projects)


def connect(client: httpx.Client) -> dict:
    """A refresh token as if a user connected the app, exchanged for tokens."""
    refresh = client.post("/_emulator/oauth/grant", json={"client_id": "hub-demo"}).json()["refresh_token"]
    response = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh, **CLIENT})
    assert response.status_code == 200, response.text
    return response.json()


def auth(tokens: dict, company: int | None = COMPANY) -> dict:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    if company is not None:
        headers["Procore-Company-Id"] = str(company)
    return headers


@pytest.fixture(scope="module")
def h(http):
    return auth(connect(http))


@pytest.fixture
def small():
    """A tiny emulator of its own, for tests that move its clock or exhaust its limits."""
    emulator = create_emulator(projects=1, rfis_per_project=3, hourly_limit=5)
    with serve(emulator.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield emulator, client


def active_ids(emu, entity: str, pid: int) -> list[int]:
    return sorted(r["id"] for r in emu.state.records(entity, pid) if r["_deleted"] is None)


# ---- OAuth ----------------------------------------------------------------------------------

def test_refresh_rotates_and_a_reused_refresh_token_is_invalid(http, emu):
    refresh = http.post("/_emulator/oauth/grant", json={"client_id": "hub-demo"}).json()["refresh_token"]
    first = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh, **CLIENT})
    body = first.json()
    assert first.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] == 5400
    assert abs(body["created_at"] - emu.core.clock.time()) < 5 and body["refresh_token"] != refresh
    reused = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh, **CLIENT})
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "The refresh token is invalid"}
    second = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"], **CLIENT})
    assert second.status_code == 200 and second.json()["access_token"] != body["access_token"]
    assert http.get("/rest/v1.0/me", headers=auth(second.json(), None)).status_code == 200


def test_authorization_code_flow_token_info_and_revoke(http):
    redirect = "http://localhost/callback"
    response = http.get("/oauth/authorize", params={"response_type": "code", "client_id": "hub-demo", "redirect_uri": redirect, "state": "s1"})
    assert response.status_code == 302
    code = httpx.URL(response.headers["location"]).params["code"]
    tokens = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, **CLIENT}).json()
    assert tokens["expires_in"] == 5400 and "created_at" in tokens
    info = http.get("/oauth/token/info", headers=auth(tokens, None)).json()
    assert info["application"] == {"uid": "hub-demo"} and 5390 <= info["expires_in"] <= 5400
    assert http.post("/oauth/revoke", data={"token": "nonsense", **CLIENT}).status_code == 200
    assert http.post("/oauth/revoke", data={"token": tokens["access_token"], **CLIENT}).status_code == 200
    assert http.get("/rest/v1.0/me", headers=auth(tokens, None)).status_code == 401
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **CLIENT})
    assert refreshed.json()["error"] == "invalid_grant"  # revoking the access token revoked its refresh token


def test_access_token_expires_after_90_minutes(small):
    emulator, client = small
    tokens = connect(client)
    assert client.get("/rest/v1.0/me", headers=auth(tokens, None)).status_code == 200
    emulator.core.clock.advance(5400 - 5)
    assert client.get("/rest/v1.0/me", headers=auth(tokens, None)).status_code == 200
    emulator.core.clock.advance(10)
    expired = client.get("/rest/v1.0/me", headers=auth(tokens, None))
    assert expired.status_code == 401 and expired.json() == {"errors": "The access token expired"}
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    missing = client.get("/rest/v1.0/companies")
    assert missing.status_code == 401 and "errors" in missing.json()
    # the refresh token still works after the access token died
    again = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **CLIENT})
    assert client.get("/rest/v1.0/me", headers=auth(again.json(), None)).status_code == 200


# ---- company header ----------------------------------------------------------------------------

def test_company_header_rules(http, h, pids):
    bare = {"Authorization": h["Authorization"]}
    companies = http.get("/rest/v1.0/companies", headers=bare)
    assert companies.status_code == 200 and companies.json()[0]["id"] == COMPANY
    assert http.get("/rest/v1.0/me", headers=bare).json()["login"]
    missing = http.get(f"/rest/v1.0/projects/{pids[0]}/rfis", headers=bare)
    assert missing.status_code == 400 and "Procore-Company-Id" in missing.json()["errors"]
    wrong = http.get(f"/rest/v1.0/projects/{pids[0]}/rfis", headers={**bare, "Procore-Company-Id": "42"})
    assert wrong.status_code == 403 and wrong.json() == {"errors": "App is not connected to this company"}
    assert http.get("/rest/v1.0/projects", params={"company_id": COMPANY}, headers=bare).status_code == 200
    assert http.get("/rest/v1.0/projects", params={"company_id": 42}, headers=bare).status_code == 403
    projects = http.get("/rest/v1.0/projects", headers=h).json()
    assert [p["id"] for p in projects][:2] == pids and projects[0]["company"]["id"] == COMPANY
    assert http.get("/rest/v1.0/projects/999/rfis", headers=h).status_code == 404


# ---- paging, filters, sort ---------------------------------------------------------------------

def test_paging_through_thousands_of_rfis_follows_link_headers(http, h, emu, pids):
    pid = pids[0]
    expected = active_ids(emu, "rfi", pid)
    seen, url, pages = [], f"/rest/v1.0/projects/{pid}/rfis?per_page=100", 0
    while url:
        response = http.get(url, headers=h)
        assert response.status_code == 200
        assert response.headers["total"] == str(len(expected)) and response.headers["per-page"] == "100"
        rels = {rel: str(link["url"]) for rel, link in response.links.items()}
        pages += 1
        if pages == 1:
            assert set(rels) == {"next", "last"} and "page=25" in rels["last"]
        elif pages == 2:
            assert set(rels) == {"first", "prev", "next", "last"} and "page=1" in rels["prev"]
        seen += [r["id"] for r in response.json()]
        url = rels.get("next")
    assert pages == 25 and set(rels) == {"first", "prev"}
    assert seen == expected and len(seen) == 2500
    big = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"per_page": 1000, "page": 3}, headers=h)
    assert [r["id"] for r in big.json()] == expected[2000:] and "next" not in big.links
    clamped = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"per_page": 50_000}, headers=h)
    assert clamped.headers["per-page"] == "10000" and len(clamped.json()) == 2500 and "link" not in clamped.headers
    default = http.get(f"/rest/v1.0/projects/{pid}/rfis", headers=h)
    assert default.headers["per-page"] == "100" and len(default.json()) == 100
    keys = default.json()[0].keys()
    assert {"id", "number", "subject", "status", "created_at", "updated_at", "rfi_manager", "questions", "deleted_at"} <= keys
    assert not any(k.startswith("_") for k in keys)


def test_updated_at_ranges_give_incremental_pulls_after_remote_edits(http, h, emu, pids):
    pid, clock = pids[1], emu.core.clock
    since = int(clock.time()) + 1
    old_range = {"filters[updated_at]": f"2000-01-01...{iso(since - 1)}", "per_page": 5000}
    # counted, not assumed: other tests of this module add RFIs to the shared emulator's project
    before = len(http.get(f"/rest/v1.0/projects/{pid}/rfis", params=old_range, headers=h).json())
    clock.advance(30)
    ids = active_ids(emu, "rfi", pid)
    emu.state.update("rfi", ids[10], {"subject": "Changed remotely"})
    emu.state.update("rfi", ids[20], {"status": "closed"}, project_id=pid)
    assert http.post("/_emulator/mutate", json={"op": "update", "entity": "rfi", "id": ids[30], "fields": {"due_date": "2030-01-01"}}).status_code == 200
    emu.state.recycle("rfi", ids[40])
    created = emu.state.create("rfi", pid, {"subject": "New from the field"})
    window = f"{iso(since)}...{iso(clock.time() + 1)}"
    pulled = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"filters[updated_at]": window}, headers=h)
    assert sorted(r["id"] for r in pulled.json()) == sorted([ids[10], ids[20], ids[30], created["id"]])
    assert pulled.headers["total"] == "4"
    withdel = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"filters[updated_at]": window, "filters[include_deleted]": "with"}, headers=h)
    assert ids[40] in {r["id"] for r in withdel.json()} and len(withdel.json()) == 5
    today = clock.now().date().isoformat()
    by_day = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"filters[updated_at]": f"{today}...{today}"}, headers=h)
    assert {ids[10], ids[20], ids[30], created["id"]} <= {r["id"] for r in by_day.json()}
    old = http.get(f"/rest/v1.0/projects/{pid}/rfis", params=old_range, headers=h)
    assert before >= 2500 and len(old.json()) == before - 4  # three edited and one recycled left the old range
    created_range = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"filters[created_at]": f"{iso(since)}..."}, headers=h)
    assert [r["id"] for r in created_range.json()] == [created["id"]]
    bad = http.get(f"/rest/v1.0/projects/{pid}/rfis", params={"filters[updated_at]": "yesterday...today"}, headers=h)
    assert bad.status_code == 400 and "errors" in bad.json()


def test_sort_and_other_filters(http, h, emu, pids):
    pid = pids[0]
    url = f"/rest/v1.0/projects/{pid}/rfis"
    desc = http.get(url, params={"sort": "-updated_at", "per_page": 500}, headers=h).json()
    stamps = [r["updated_at"] for r in desc]
    assert stamps == sorted(stamps, reverse=True)
    by_direction = http.get(url, params={"sort": "id", "sort[direction]": "desc", "per_page": 3}, headers=h).json()
    assert [r["id"] for r in by_direction] == active_ids(emu, "rfi", pid)[::-1][:3]
    assert http.get(url, params={"sort": "colour"}, headers=h).status_code == 400
    some = active_ids(emu, "rfi", pid)[5:8]
    picked = http.get(f"{url}?filters[id][]={some[0]}&filters[id][]={some[1]}&filters[id][]={some[2]}", headers=h).json()
    assert [r["id"] for r in picked] == some
    closed = http.get(url, params={"filters[status]": "closed", "per_page": 10_000}, headers=h).json()
    assert closed and all(r["status"] == "closed" for r in closed)
    assert len(closed) == sum(1 for r in emu.state.records("rfi", pid) if r["status"] == "closed" and r["_deleted"] is None)


# ---- RFIs, submittals, daily logs, files ---------------------------------------------------------

def test_rfi_create_update_recycle_and_retrieve(http, h, pids):
    url = f"/rest/v1.0/projects/{pids[1]}/rfis"
    created = http.post(url, json={"rfi": {"subject": "Anchor bolt layout", "question": {"body": "Which grid?"}}}, headers=h)
    assert created.status_code == 201
    rfi = created.json()
    assert rfi["subject"] == "Anchor bolt layout" and rfi["questions"][0]["plain_text_body"] == "Which grid?"
    assert http.post(url, json={"rfi": {"question": {"body": "no subject"}}}, headers=h).status_code == 422
    assert http.post(url, json={"subject": "unwrapped"}, headers=h).status_code == 400
    assert http.get(f"{url}/99999999", headers=h).json() == {"errors": "Couldn't find Rfi with 'id'=99999999"}
    patched = http.patch(f"{url}/{rfi['id']}", json={"rfi": {"status": "closed"}}, headers=h)
    assert patched.status_code == 200 and patched.json()["status"] == "closed" and patched.json()["time_resolved"]
    assert http.patch(f"{url}/{rfi['id']}", json={"rfi": {"status": "maybe"}}, headers=h).status_code == 422
    assert http.patch(f"{url}/{rfi['id']}/recycle", headers=h).json()["deleted_at"]
    assert http.get(f"{url}/{rfi['id']}", headers=h).status_code == 404
    assert rfi["id"] not in {r["id"] for r in http.get(url, params={"per_page": 10_000}, headers=h).json()}
    assert rfi["id"] in {r["id"] for r in http.get(f"{url}/recycle_bin", headers=h).json()}
    assert http.patch(f"{url}/{rfi['id']}/recycle", headers=h).status_code == 404
    assert http.patch(f"{url}/{rfi['id']}/retrieve", headers=h).json()["deleted_at"] is None
    assert http.get(f"{url}/{rfi['id']}", headers=h).json()["status"] == "closed"


def test_submittals_on_v1_1_and_v1_0(http, h, emu, pids):
    pid = pids[0]
    v11 = http.get(f"/rest/v1.1/projects/{pid}/submittals", headers=h)
    v10 = http.get(f"/rest/v1.0/projects/{pid}/submittals", headers=h)
    assert v11.status_code == 200 and v11.json() == v10.json() and v11.headers["total"] == "30"
    assert {"id", "number", "title", "status", "updated_at"} <= v11.json()[0].keys()
    target = v11.json()[3]["id"]
    since = int(emu.core.clock.time()) + 1
    emu.core.clock.advance(5)
    emu.state.update("submittal", target, {"status": "Closed"})
    changed = http.get(f"/rest/v1.1/projects/{pid}/submittals", params={"filters[updated_at]": f"{iso(since)}..."}, headers=h).json()
    assert [s["id"] for s in changed] == [target] and changed[0]["status"]["name"] == "Closed"
    assert http.post(f"/rest/v1.1/projects/{pid}/submittals", json={"submittal": {}}, headers=h).status_code == 422
    made = http.post(f"/rest/v1.1/projects/{pid}/submittals", json={"submittal": {"title": "Rebar shop drawings"}}, headers=h).json()
    assert made["number"] == "31"
    http.patch(f"/rest/v1.1/projects/{pid}/submittals/{made['id']}/recycle", headers=h)
    assert [s["id"] for s in http.get(f"/rest/v1.1/projects/{pid}/submittals/recycle_bin", headers=h).json()] == [made["id"]]


def test_daily_logs_date_rules(http, h, emu, pids):
    pid = pids[0]
    url = f"/rest/v1.0/projects/{pid}/daily_logs"
    today = emu.core.clock.now().date()
    todays = http.get(url, headers=h).json()
    assert set(todays) == {"manpower_logs", "notes_logs", "weather_logs"}
    assert [len(v) for v in todays.values()] == [1, 1, 1] and todays["notes_logs"][0]["date"] == today.isoformat()
    yesterday = (today - timedelta(days=1)).isoformat()
    one_day = http.get(url, params={"log_date": yesterday}, headers=h).json()
    assert all(log["date"] == yesterday for logs in one_day.values() for log in logs) and sum(map(len, one_day.values())) == 3
    span = http.get(url, params={"start_date": (today - timedelta(days=10)).isoformat(), "end_date": today.isoformat()}, headers=h).json()
    assert sum(map(len, span.values())) == 9
    assert http.get(url, params={"log_date": "31/12/2024"}, headers=h).status_code == 400
    assert http.get(url, params={"start_date": today.isoformat(), "end_date": yesterday}, headers=h).status_code == 400
    typed = http.get(f"/rest/v1.0/projects/{pid}/manpower_logs", params={"start_date": "2000-01-01", "end_date": today.isoformat(), "per_page": 2}, headers=h)
    assert typed.headers["total"] == "3" and len(typed.json()) == 2 and "next" in typed.links
    emu.state.create("daily_log", pid, {"log_type": "notes_logs", "comment": "Remote note"})
    assert [n["comment"] for n in http.get(url, headers=h).json()["notes_logs"]][-1] == "Remote note"


def test_document_upload_stores_name_size_and_sha256(http, h, emu, pids):
    pid, data = pids[0], b"%PDF-1.4 plan sheet A-101\n" * 100
    response = http.post("/rest/v1.0/files", params={"project_id": pid}, headers=h,
                         files={"file[data]": ("a101.pdf", data, "application/pdf")}, data={"file[name]": "A-101 Floor Plan.pdf"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "A-101 Floor Plan.pdf" and body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    alias = http.post(f"/rest/v1.0/projects/{pid}/documents", headers=h, files={"file": ("notes.txt", b"hello", "text/plain")})
    assert alias.status_code == 201 and alias.json()["name"] == "notes.txt" and alias.json()["size"] == 5
    assert http.post("/rest/v1.0/files", params={"project_id": pid}, headers=h, data={"file[name]": "x"}).status_code == 422
    listed = http.get("/rest/v1.0/files", params={"project_id": pid}, headers=h).json()
    assert {f["id"] for f in listed} == {body["id"], alias.json()["id"]}
    assert emu.state.files[body["id"]]["sha256"] == body["sha256"]


# ---- remote changes --------------------------------------------------------------------------

def test_admin_mutate_route(http, h, emu, pids):
    pid = pids[1]
    made = http.post("/_emulator/mutate", json={"op": "create", "entity": "rfi", "project_id": pid, "fields": {"subject": "From the admin", "status": "draft"}})
    assert made.status_code == 200 and made.json()["status"] == "draft"
    rid = made.json()["id"]
    before = made.json()["updated_at"]
    emu.core.clock.advance(3)
    updated = http.post("/_emulator/mutate", json={"op": "update", "entity": "rfi", "project_id": pid, "id": rid, "fields": {"subject": "Edited"}}).json()
    assert updated["subject"] == "Edited" and updated["updated_at"] > before
    assert http.post("/_emulator/mutate", json={"op": "recycle", "entity": "rfi", "id": rid}).json()["deleted"] is True
    assert http.post("/_emulator/mutate", json={"op": "retrieve", "entity": "rfi", "id": rid}).json()["deleted"] is False
    assert http.post("/_emulator/mutate", json={"op": "update", "entity": "rfi", "id": 1}).status_code == 404
    assert http.post("/_emulator/mutate", json={"op": "create", "entity": "rfi", "project_id": pid, "fields": {}}).status_code == 422
    assert http.post("/_emulator/mutate", json={"op": "explode", "entity": "rfi", "id": rid}).status_code == 400
    assert http.post("/_emulator/mutate", json={"op": "create", "entity": "widget"}).status_code == 400
    project = http.post("/_emulator/mutate", json={"op": "create", "entity": "project", "fields": {"name": "Remote Tower"}}).json()
    assert http.get(f"/rest/v1.0/projects/{project['id']}/rfis", headers=h).json() == []
    inactive = http.post("/_emulator/mutate", json={"op": "recycle", "entity": "project", "id": project["id"]}).json()
    assert inactive["active"] is False


def test_mutate_sets_people_dates_and_impacts_as_a_user_would(http, emu, pids):
    """What the hub's events (hub/sync/procore_events.py) watch: ball in court, due date, cost
    and schedule impact; each edit touches `updated_at`, bad values are refused whole."""
    def update(entity, rid, **fields):
        return http.post("/_emulator/mutate", json={"op": "update", "entity": entity, "id": rid, "fields": fields})

    rid = sorted(emu.state.tables["rfi"][pids[0]])[7]
    before = emu.state.get("rfi", rid)["updated_at"]
    emu.core.clock.advance(2)
    done = update("rfi", rid, ball_in_court_id=7004, due_date="2030-02-03", cost_impact={"status": "yes_known", "value": "1250.50"},
                  schedule_impact={"status": "yes_unknown", "value": 3}).json()
    assert done["ball_in_court"]["id"] == 7004 and [p["id"] for p in done["ball_in_courts"]] == [7004]
    assert done["assignee"]["id"] == emu.state.get("rfi", rid)["assignee"]["id"]  # the ball moves, the assignee stays
    assert (done["due_date"], done["cost_impact"], done["schedule_impact"]) == (
        "2030-02-03", {"status": "yes_known", "value": 1250.5}, {"status": "yes_unknown", "value": None})
    assert done["updated_at"] > before
    for fields in ({"cost_impact": {"status": "yes_known"}}, {"cost_impact": {"status": "maybe"}}, {"schedule_impact": "5"},
                   {"cost_impact": {"status": "yes_known", "value": "lots"}}, {"ball_in_court_id": 1}):
        assert update("rfi", rid, due_date="2031-01-01", **fields).status_code == 422
    assert update("rfi", rid, due_date="soon").status_code == 400
    assert emu.state.get("rfi", rid)["due_date"] == "2030-02-03"  # all or nothing
    sub = sorted(emu.state.tables["submittal"][pids[0]])[0]
    done = update("submittal", sub, ball_in_court_id=7002, due_date="2030-05-01").json()
    assert ([p["id"] for p in done["ball_in_court"]], done["due_date"]) == ([7002], "2030-05-01")
    assert update("submittal", sub, due_date=None).json()["due_date"] is None


def test_generator_is_deterministic_and_sized(emu):
    today = emu.core.clock.now().date()
    a = dump(create_emulator(projects=3, rfis_per_project=50, seed=11, today=today))
    b = dump(create_emulator(projects=3, rfis_per_project=50, seed=11, today=today))
    c = dump(create_emulator(projects=3, rfis_per_project=50, seed=12, today=today))
    assert a == b and a != c
    started = time.perf_counter()
    big = create_emulator(projects=20, rfis_per_project=5000, submittals_per_project=10, daily_logs_per_project=3)
    assert time.perf_counter() - started < 5
    assert sum(len(big.state.records("rfi", pid)) for pid in big.state.projects) == 100_000
    assert len({r["id"] for pid in big.state.projects for r in big.state.records("rfi", pid)}) == 100_000


# ---- rate limits and faults -----------------------------------------------------------------

def test_hourly_limit_429_with_headers(small, http, h):
    emulator, client = small
    assert http.get("/rest/v1.0/me", headers=h).headers["x-rate-limit-limit"] == "3600"
    tokens = connect(client)
    remaining = []
    for _ in range(5):
        response = client.get("/rest/v1.0/companies", headers=auth(tokens))
        assert response.status_code == 200
        remaining.append(int(response.headers["x-rate-limit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    over = client.get("/rest/v1.0/companies", headers=auth(tokens))
    assert over.status_code == 429 and over.text == RATE_LIMIT_BODY
    assert over.headers["content-type"].startswith("text/plain")
    reset = int(over.headers["x-rate-limit-reset"])
    assert over.headers["x-rate-limit-remaining"] == "0" and 3500 < int(over.headers["retry-after"]) <= 3600
    assert abs(reset - (emulator.core.clock.time() + int(over.headers["retry-after"]))) <= 2
    other = connect(client)  # the limit is per token
    assert client.get("/rest/v1.0/companies", headers=auth(other)).status_code == 200
    emulator.core.clock.advance(3601)
    assert client.get("/rest/v1.0/companies", headers=auth(tokens)).status_code == 200
    emulator.set_rate_limits(hourly_limit=100, spike_limit=2, reset=True)
    statuses = [client.get("/rest/v1.0/me", headers=auth(tokens)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.fixture
def faults(http):
    yield lambda **plan: http.post("/_emulator/faults", json=plan).raise_for_status()
    http.delete("/_emulator/faults")


def test_fault_injection_429_5xx_and_dropped_connection(http, h, emu, pids, faults):
    url = f"/rest/v1.0/projects/{pids[0]}/rfis"
    faults(burst_429=2, retry_after_s=7)
    for _ in range(2):
        throttled = http.get(url, headers=h)
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7" and throttled.text == RATE_LIMIT_BODY
        assert int(throttled.headers["x-rate-limit-reset"]) >= int(emu.core.clock.time()) + 6
    assert http.get("/oauth/token/info", headers=h).status_code == 200  # faults only hit /rest/
    assert http.get(url, headers=h).status_code == 200
    faults(burst_429=1, retry_after_s=30, retry_after_format="http-date")
    dated = http.get(url, headers=h)
    when = parsedate_to_datetime(dated.headers["retry-after"]).timestamp()
    assert dated.status_code == 429 and 25 <= when - emu.core.clock.time() <= 31
    faults(fail_next_5xx=1, status_5xx=502)
    failed = http.get(url, headers=h)
    assert failed.status_code == 502 and failed.json() == {"errors": "Bad Gateway"}
    faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url, params={"per_page": 500}, headers=h)
    assert http.get(url, headers=h).status_code == 200
    stats = http.get("/_emulator/stats").json()
    assert stats["faults_injected"]["429"] >= 3 and stats["faults_injected"]["drop"] >= 1
