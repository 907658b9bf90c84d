"""Procore REST API emulator: companies, projects, RFIs, submittals, daily logs and file
upload behind Procore's OAuth (90-minute access tokens, single-use refresh tokens), the
`Procore-Company-Id` header, `page`/`per_page` paging with `Total`/`Per-Page`/`Link`, list
`filters[...]` and the 3600/hour per-token rate limit. The hub never reaches the real Procore,
so this is the ground truth its client is tested against; facts follow providers.md section 3.

Choices where the reference is UNCONFIRMED (or silent), kept here so they are easy to change:
- Error bodies: every 4xx/5xx JSON body is `{"errors": "<message>"}`, a string (422 too, e.g.
  "Subject can't be blank"), so a client can always show `body["errors"]`. The over-limit 429
  is the documented plain text. 401 is `{"errors": "The access token expired"}` (or "... is
  invalid" / "... is missing") with `WWW-Authenticate: Bearer ... error="invalid_token"`.
  Injected 5xx: `{"errors": "<reason phrase>"}`. invalid_grant is the framework's RFC 6749 body.
- OAuth: access tokens live 5400 s (not the announced 15 min); refresh tokens never expire
  unless spent or revoked. `/oauth/revoke` kills the whole authorization (its access and refresh
  tokens). `/oauth/token/info` answers Doorkeeper's shape.
- OAuth connect: the consent page (emulators/oauth.py) has Approve and Deny only (Procore's
  grant is the user's, not a company's); `GET /rest/v1.0/companies` then lists this company
  and any `extra_companies` (id -> name: other companies of the user, without data; their
  calls answer 403), from which the app picks one.
- Company: a missing `Procore-Company-Id` -> 400 "Missing required header: Procore-Company-Id"
  (a malformed request, not a permission problem), non-numeric -> 400, another company -> 403
  "App is not connected to this company". `GET /rest/v1.0/projects` takes `company_id` from the
  query, else the header. Only `/me` and `/companies` need no company.
- Paging: default `per_page` 100; above 10,000 is clamped (`Per-Page: 10000`); a `page` or
  `per_page` that is not a positive integer falls back to 1 / 100 (Rails `to_i` leniency). Link
  rules are the api-pagination gem's (whose `Total`/`Per-Page` headers Procore's are): page>1
  has first+prev, page<last has last+next, in that order; one page -> no Link header. The doc's
  page-2 example without prev is taken as an omission.
- Date ranges: `a...b` inclusive; a bare date is its whole UTC day; an empty side is unbounded;
  one value without `...` means `a...a`; naive times are UTC; malformed -> 400. Timestamps have
  second resolution. Submittals accept `filters[updated_at]` too.
- Sort: `sort=<attr>` / `sort=-<attr>`, `sort[direction]=asc|desc` overrides; unknown
  attribute -> 400; default `id` ascending. Unknown filters are ignored.
- Recycle bin: recycled RFIs/submittals are left out of lists unless `filters[include_deleted]`
  is `with`/`true` (`only`: just recycled); show, PATCH or recycle of a recycled record -> 404,
  retrieve of an active one -> 404; recycle/retrieve answer 200 with the record.
- RFI create requires `subject` only (the reference also lists `rfi_manager_id`; the manager
  defaults to the connected user); `question.body` becomes `questions[0].plain_text_body`.
  Submittal create requires `title`.
- Edits (PATCH, admin `mutate` update; `updated_at` is touched): `assignee_id` sets an RFI's
  assignee(s) and ball in court; `ball_in_court_id` only who must act now (RFI: `ball_in_court`
  and `ball_in_courts`; submittal: `ball_in_court`, a list as v1.1 answers); `due_date` a date
  or null; RFI `cost_impact` / `schedule_impact` `{"status", "value"}` with status yes_known
  (value required: dollars / days), yes_unknown, no_impact, tbd or n_a (no value).
- Daily logs: the umbrella answers `{"manpower_logs": [...], "notes_logs": [...],
  "weather_logs": [...]}` (every key present, not paged); `.../manpower_logs` etc. are paged
  lists. `log_date`, or `start_date`/`end_date` (one alone is a one-day range; `filters[...]`
  spellings accepted); no date -> today's logs (UTC, emulator clock); no 13-week cap.
- Upload: `POST /rest/v1.0/files?project_id=` multipart `file[data]` (+ `file[name]`,
  `file[parent_id]`, `file[description]`) as Procore's legacy Create Project File, or `POST
  /rest/v1.0/projects/{id}/documents` with a `file` part; 201 with the file, its `size` and
  `sha256` (an emulator field; bytes are not kept). `GET /rest/v1.0/files?project_id=` lists.
- Rate limits: the framework's SlidingWindow, 3600 calls per 3600 s keyed by access token;
  `X-Rate-Limit-Reset` is when the oldest counted call leaves the window. Headers ride on every
  authenticated `/rest/` response (a 401 has no token to count against). Optional 10-second
  spike limit (`spike_limit`, off by default); headers report the limit with less left.
- Generated data: every record active; timestamps before today's UTC midnight, so any remote
  change is strictly newer; a project's daily log i is dated today - i//3 days with types
  cycling manpower/notes/weather (the first three are today's). Ids are sequential per entity
  from fixed bases; the seed drives everything else.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import threading
import time
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from emulators.clock import Clock
from emulators.core import ADMIN_PREFIX, EmulatorCore
from emulators.datagen import DataGen
from emulators.oauth import Consent, RefreshPolicy
from emulators.ratelimit import SlidingWindow, Verdict

RATE_LIMIT_BODY = "You have surpassed the max number of requests for an hour. Please wait until your limit resets."
DEFAULT_PER_PAGE, MAX_PER_PAGE = 100, 10_000
LOG_TYPES = ("manpower_logs", "notes_logs", "weather_logs")
ENTITIES = ("project", "rfi", "submittal", "daily_log")
_ID_BASE = {"project": 20_000, "rfi": 1_000_000, "submittal": 2_000_000, "daily_log": 3_000_000, "file": 4_000_000, "question": 5_000_000}
_RFI_STATUSES = ("open", "closed", "draft")
_SUB_STATUSES = {"draft": {"id": 1, "name": "Draft", "status": "draft"}, "open": {"id": 2, "name": "Open", "status": "open"},
                 "closed": {"id": 3, "name": "Closed", "status": "closed"}}
_TBD = {"status": "tbd", "value": None}  # shared: records are replaced key by key, never edited in place
# RFI cost_impact / schedule_impact statuses (`{"status", "value"}`; value in dollars / days);
# yes_known needs a value, the others carry none
_IMPACT_STATUSES = ("yes_known", "yes_unknown", "no_impact", "tbd", "n_a")
_FROZEN = {"id", "created_at", "updated_at", "deleted", "deleted_at", "number", "full_number", "log_type", "company"}
_PEOPLE = ("Ana Torres", "Ben Okafor", "Chloe Martin", "Dev Patel", "Erin Walsh", "Femi Adeyemi", "Grace Kim", "Hugo Silva")
_TOPICS = ("Door hardware", "Beam clearance", "Slab edge detail", "Window flashing", "Fire damper access", "Duct routing",
           "Rebar spacing", "Ceiling height", "Stair railing", "Roof drain size", "Curtain wall anchor", "Paint finish")
_PLACES = ("Level 1", "Level 2", "Level 3", "Roof", "Basement", "Lobby", "Stair B", "Grid C-4", "East wing", "Parking deck")
_SPECS = (("08 71 00", "Door Hardware"), ("03 30 00", "Cast-in-Place Concrete"), ("05 12 00", "Structural Steel Framing"),
          ("07 62 00", "Sheet Metal Flashing"), ("09 91 00", "Painting"), ("23 31 00", "HVAC Ducts"), ("08 44 13", "Glazed Curtain Walls"))
_KINDS = ("Medical Center", "Office Tower", "High School", "Parking Garage", "Library", "Warehouse", "Fire Station", "Apartments")
_SKY = ("Clear", "Partly Cloudy", "Overcast", "Rain", "Windy")
_NOTES = ("Concrete pour finished ahead of schedule", "Inspector on site for framing", "Crane down for maintenance",
          "Delivery of glazing units delayed", "Safety walk completed", "Site cleanup after storm")


class ApiError(Exception):
    """A 4xx the API answers as `{"errors": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _parse_bound(text: str, end: bool) -> float:
    text = text.strip().replace(" ", "+")  # an unencoded "+00:00" arrives as a space
    if len(text) == 10:
        start = _midnight(date.fromisoformat(text))
        return start + 86399 if end else start
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def parse_range(value: str, name: str) -> tuple[float, float]:
    """`a...b` (ISO 8601 dates or datetimes) -> inclusive epoch bounds."""
    low, sep, high = value.partition("...")
    if not sep:
        high = low
    try:
        return (_parse_bound(low, False) if low.strip() else -math.inf, _parse_bound(high, True) if high.strip() else math.inf)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date or datetime range 'start...end'") from None


def public(rec: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the API shows it (internal keys start with `_`)."""
    return {k: v for k, v in rec.items() if k[0] != "_"}


class ProcoreState:
    """The emulated company's data, and the remote changes a Procore user would make.

    Records are stored in their public shape plus internal `_project`, `_created`, `_updated`
    (epoch seconds) and `_deleted` keys; `tables[entity][project_id]` maps id -> record.
    Every method is thread-safe: tests mutate from their thread while the server reads.
    """

    def __init__(self, clock: Clock, company_id: int, company_name: str = "Hub Demo Builders"):
        self.clock, self.company_id, self.company_name = clock, company_id, company_name
        self.lock = threading.RLock()
        self.projects: dict[int, dict[str, Any]] = {}
        self.tables: dict[str, dict[int, dict[int, dict[str, Any]]]] = {"rfi": {}, "submittal": {}, "daily_log": {}}
        self.where: dict[str, dict[int, int]] = {"rfi": {}, "submittal": {}, "daily_log": {}}
        self.files: dict[int, dict[str, Any]] = {}
        self._next = dict(_ID_BASE)
        self.users = [{"id": 7000 + i, "login": f"{n.split()[0].lower()}@builders.example.com", "name": n} for i, n in enumerate(_PEOPLE)]
        self.me = self.users[0]  # the user who connected the app

    # ---- generation ------------------------------------------------------------------------
    def generate(self, seed: int, projects: int, rfis: int, submittals: int, daily_logs: int, today: date) -> None:
        """Fill the tables; the cyclic GC is paused meanwhile (it would spend half the time
        scanning the fresh, acyclic records)."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._generate(seed, projects, rfis, submittals, daily_logs, today)
        finally:
            if was_enabled:
                gc.enable()

    def _generate(self, seed: int, projects: int, rfis: int, submittals: int, daily_logs: int, today: date) -> None:
        gen = DataGen(seed)
        r, rnd = gen.random, gen.random.random
        anchor = _midnight(today)
        span = 365 * 86400
        for p in range(projects):
            addr, created = gen.address(), anchor - r.randint(span, 2 * span)
            pid = self._new_id("project")
            name = f"{addr['city']} {_KINDS[r.randrange(len(_KINDS))]} {p + 1}"
            self.projects[pid] = {
                "id": pid, "name": name, "display_name": f"P-{1001 + p} - {name}", "project_number": f"P-{1001 + p}",
                "active": True, "address": addr["line1"], "city": addr["city"], "state_code": addr["state"],
                "zip": addr["postal_code"], "country_code": "US", "start_date": iso(created)[:10], "completion_date": None,
                "company": {"id": self.company_id, "name": self.company_name},
                "created_at": iso(created), "updated_at": iso(created), "_created": created, "_updated": created, "_deleted": None,
            }
            for table in self.tables.values():
                table[pid] = {}
            for n in range(rfis):  # r.random() arithmetic: 100,000 RFIs in about a second
                c = anchor - 1 - int(rnd() * span)
                u, x, users = c + int(rnd() * (anchor - c)), rnd(), self.users
                self._insert("rfi", pid, self._rfi(pid, n + 1, f"{_TOPICS[int(rnd() * 12)]} at {_PLACES[int(rnd() * 10)]}",
                                                   "open" if x < 0.5 else "closed" if x < 0.85 else "draft",
                                                   users[int(rnd() * 8)], users[int(rnd() * 8)], c, u, 7 + int(rnd() * 15)))
            for n in range(submittals):
                c = anchor - 1 - int(rnd() * span)
                u, spec = c + int(rnd() * (anchor - c)), _SPECS[int(rnd() * len(_SPECS))]
                self._insert("submittal", pid, self._submittal(n + 1, f"{spec[1]} shop drawings", spec, _RFI_STATUSES[int(rnd() * 3)], c, u))
            for n in range(daily_logs):
                day = today - timedelta(days=n // 3)
                c = min(_midnight(day) + r.randint(6 * 3600, 18 * 3600), anchor - 1)
                self._insert("daily_log", pid, self._log(LOG_TYPES[n % 3], day, r, c))

    def _new_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind]

    def _insert(self, entity: str, pid: int, rec: dict[str, Any]) -> dict[str, Any]:
        rec["_project"] = pid
        self.tables[entity][pid][rec["id"]] = rec
        self.where[entity][rec["id"]] = pid
        return rec

    def _stamps(self, rec: dict[str, Any], created: int, updated: int) -> dict[str, Any]:
        rec.update(created_at=iso(created), updated_at=iso(updated), _created=created, _updated=updated, _deleted=None)
        return rec

    def _rfi(self, pid: int, number: int, subject: str, status: str, manager: dict, assignee: dict,
             created: int, updated: int, due_days: int, question: str | None = None) -> dict[str, Any]:
        rid = self._new_id("rfi")
        text = question or f"Please confirm: {subject.lower()}."
        return self._stamps({
            "id": rid, "number": str(number), "full_number": str(number), "prefix": None, "subject": subject,
            "status": status, "translated_status": status.title(), "private": False,
            "due_date": iso(created + due_days * 86400)[:10],
            "initiated_at": iso(created), "time_resolved": iso(updated) if status == "closed" else None,
            "deleted": False, "deleted_at": None, "created_by": self.me, "assignee": assignee, "assignees": [assignee],
            "ball_in_court": assignee, "ball_in_courts": [assignee], "rfi_manager": manager, "received_from": assignee,
            "responsible_contractor": None, "location_id": None, "location": None, "cost_code": None,
            "cost_impact": _TBD, "schedule_impact": _TBD,
            "project_stage": None, "reference": None, "custom_fields": {}, "sub_job": None,
            "questions": [{"id": self._new_id("question"), "plain_text_body": text, "body": f"<p>{text}</p>"}],
            "link": f"https://app.procore.com/{pid}/project/rfi/show/{rid}", "_number": number,
        }, created, updated)

    def _submittal(self, number: int, title: str, spec: tuple[str, str], status: str, created: int, updated: int) -> dict[str, Any]:
        return self._stamps({
            "id": self._new_id("submittal"), "number": str(number), "formatted_number": f"{spec[0]}-{number}", "revision": "0",
            "title": title, "status": _SUB_STATUSES[status], "type": {"id": 1, "name": "Shop Drawing"},
            "specification_section": {"id": 900 + _SPECS.index(spec), "number": spec[0], "description": spec[1]},
            "due_date": None, "received_date": None, "ball_in_court": [], "created_by": self.me, "deleted": False, "deleted_at": None,
            "_number": number,
        }, created, updated)

    def _log(self, log_type: str, day: date, r: Any, created: int) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": self._new_id("daily_log"), "date": day.isoformat(), "datetime": iso(_midnight(day) + 12 * 3600),
                               "created_by": self.me, "deleted_at": None, "log_type": log_type}
        if log_type == "manpower_logs":
            rec.update(num_workers=r.randint(2, 40), num_hours=8.0, notes="", vendor={"id": 880, "name": "Site Crew"})
        elif log_type == "notes_logs":
            rec.update(comment=_NOTES[r.randrange(len(_NOTES))], is_issue=r.random() < 0.2)
        else:
            rec.update(sky=_SKY[r.randrange(len(_SKY))], temperature_average=r.randint(20, 95), precipitation="None")
        return self._stamps(rec, created, created)

    # ---- lookups ------------------------------------------------------------------------------
    def project(self, pid: int) -> dict[str, Any]:
        rec = self.projects.get(pid)
        if rec is None:
            raise ApiError(404, f"Couldn't find Project with 'id'={pid}")
        return rec

    def get(self, entity: str, rid: int, pid: int | None = None, deleted: bool | None = False) -> dict[str, Any]:
        """One record; `deleted` False/True restricts to active/recycled, None takes either."""
        with self.lock:
            if entity == "project":
                return self.project(rid)
            pid = self.where[entity].get(rid) if pid is None else pid
            rec = self.tables[entity].get(pid, {}).get(rid) if pid is not None else None
            if rec is None or (deleted is not None and (rec["_deleted"] is not None) != deleted):
                raise ApiError(404, f"Couldn't find {entity.replace('_', ' ').title().replace(' ', '')} with 'id'={rid}")
            return rec

    def records(self, entity: str, pid: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.projects.values()) if entity == "project" else list(self.tables[entity].get(pid, {}).values())

    # ---- remote changes (also behind POST /_emulator/mutate) ----------------------------------
    def create(self, entity: str, project_id: int | None = None, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        fields, now = dict(fields or {}), int(self.clock.time())
        with self.lock:
            if entity == "project":
                pid = self._new_id("project")
                name = fields.pop("name", f"Project {pid}")
                rec = self._stamps({"id": pid, "name": name, "display_name": name, "project_number": None, "active": True,
                                    "address": None, "city": None, "state_code": None, "zip": None, "country_code": "US",
                                    "start_date": None, "completion_date": None,
                                    "company": {"id": self.company_id, "name": self.company_name}}, now, now)
            else:
                pid = int(self.project(int(project_id or 0))["id"])
                if entity == "rfi":
                    if not str(fields.get("subject") or "").strip():
                        raise ApiError(422, "Subject can't be blank")
                    number = 1 + max((r["_number"] for r in self.tables["rfi"][pid].values()), default=0)
                    question = fields.pop("question", None)
                    text = question.get("body") if isinstance(question, dict) else question
                    rec = self._rfi(pid, number, str(fields.pop("subject")), "open", self.me, self.me, now, now, 14, text)
                elif entity == "submittal":
                    if not str(fields.get("title") or "").strip():
                        raise ApiError(422, "Title can't be blank")
                    number = 1 + max((r["_number"] for r in self.tables["submittal"][pid].values()), default=0)
                    rec = self._submittal(number, str(fields.pop("title")), _SPECS[0], "draft", now, now)
                elif entity == "daily_log":
                    log_type = fields.pop("log_type", "notes_logs")
                    if log_type not in LOG_TYPES:
                        raise ApiError(422, f"log_type must be one of {', '.join(LOG_TYPES)}")
                    day = _date(fields.pop("date", None) or self.clock.now().date().isoformat(), "date")
                    rec = self._log(log_type, day, DataGen(now).random, now)
                else:
                    raise ApiError(400, f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")
            self._apply(entity, rec, fields)  # before inserting: a 422 leaves nothing behind
            if entity == "project":
                self.projects[pid] = rec
                for table in self.tables.values():
                    table[pid] = {}
            else:
                self._insert(entity, pid, rec)
            return rec

    def update(self, entity: str, id: int, fields: dict[str, Any], project_id: int | None = None) -> dict[str, Any]:
        with self.lock:
            rec = self.get(entity, int(id), project_id)
            candidate = dict(rec)
            self._apply(entity, candidate, fields)  # all or nothing
            rec.update(candidate)
            return self._touch(rec)

    def recycle(self, entity: str, id: int, project_id: int | None = None) -> dict[str, Any]:
        return self._set_deleted(entity, int(id), project_id, True)

    def retrieve(self, entity: str, id: int, project_id: int | None = None) -> dict[str, Any]:
        return self._set_deleted(entity, int(id), project_id, False)

    def mutate(self, op: str, entity: str, project_id: int | None = None, id: int | None = None,
               fields: dict[str, Any] | None = None) -> dict[str, Any]:
        if entity not in ENTITIES:
            raise ApiError(400, f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")
        project_id = _int(project_id, "project_id") if project_id is not None else None
        if op == "create":
            return self.create(entity, project_id, fields)
        if id is None:
            raise ApiError(400, f"{op} needs an id")
        if op == "update":
            return self.update(entity, id, fields or {}, project_id)
        if op in ("recycle", "retrieve"):
            return getattr(self, op)(entity, id, project_id)
        raise ApiError(400, f"unknown op {op!r}; known: create, update, recycle, retrieve")

    def _set_deleted(self, entity: str, rid: int, pid: int | None, deleted: bool) -> dict[str, Any]:
        with self.lock:
            if entity == "project":  # projects are deactivated, not recycled
                rec = self.project(rid)
                rec["active"] = not deleted
                return self._touch(rec)
            rec = self.get(entity, rid, pid, deleted=not deleted)
            now = int(self.clock.time())
            rec["_deleted"] = now if deleted else None
            rec["deleted_at"] = iso(now) if deleted else None
            if "deleted" in rec:
                rec["deleted"] = deleted
            return self._touch(rec)

    def _touch(self, rec: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock.time())
        rec["_updated"], rec["updated_at"] = now, iso(now)
        return rec

    def _user(self, uid: Any) -> dict[str, Any]:
        for user in self.users:
            if str(user["id"]) == str(uid):
                return user
        raise ApiError(422, f"User {uid} not found")

    def _apply(self, entity: str, rec: dict[str, Any], fields: dict[str, Any]) -> None:
        """Set fields the way Procore's forms do; keys the record lacks are ignored (as
        Rails' strong parameters drop them), a few input-only keys are translated."""
        for key, value in fields.items():
            if key in _FROZEN or key.startswith("_"):
                continue
            if entity == "rfi" and key == "status":
                if value not in _RFI_STATUSES:
                    raise ApiError(422, "Status is not included in the list")
                rec.update(status=value, translated_status=value.title(),
                           time_resolved=iso(self.clock.time()) if value == "closed" else None)
            elif entity == "rfi" and key in ("rfi_manager_id", "assignee_id"):
                user = self._user(value)
                rec.update({"rfi_manager": user} if key == "rfi_manager_id" else {"assignee": user, "assignees": [user], "ball_in_court": user, "ball_in_courts": [user]})
            elif entity in ("rfi", "submittal") and key == "ball_in_court_id":  # who must act now
                user = self._user(value)
                rec.update({"ball_in_court": user, "ball_in_courts": [user]} if entity == "rfi" else {"ball_in_court": [user]})
            elif entity in ("rfi", "submittal") and key == "due_date":
                rec["due_date"] = None if value in (None, "") else _date(value, "due_date").isoformat()
            elif entity == "rfi" and key in ("cost_impact", "schedule_impact"):
                rec[key] = _impact(key, value)
            elif entity == "rfi" and key == "question":
                text = value.get("body") if isinstance(value, dict) else value
                rec["questions"] = [{**rec["questions"][0], "plain_text_body": text, "body": f"<p>{text}</p>"}]
            elif entity == "submittal" and key in ("status", "status_id"):
                match = [s for s in _SUB_STATUSES.values() if str(value).lower() in (str(s["id"]), s["name"].lower())]
                if not match:
                    raise ApiError(422, "Status is not included in the list")
                rec["status"] = match[0]
            elif entity == "daily_log" and key == "date":
                rec["date"] = _date(value, "date").isoformat()
            elif key in rec:
                if key in ("subject", "title", "name") and not str(value or "").strip():
                    raise ApiError(422, f"{key.title()} can't be blank")
                rec[key] = value


def _impact(name: str, value: Any) -> dict[str, Any]:
    """A cost or schedule impact as Procore's RFI form sets it: `{"status", "value"}`."""
    label = name.replace("_", " ").capitalize()
    if not isinstance(value, dict) or value.get("status") not in _IMPACT_STATUSES:
        raise ApiError(422, f"{label} status is not included in the list")
    amount = value.get("value")
    if value["status"] != "yes_known":
        return {"status": value["status"], "value": None}
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)) or amount == "":
        raise ApiError(422, f"{label} value can't be blank")
    try:
        number = float(amount)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ApiError(422, f"{label} value is not a number")
    return {"status": "yes_known", "value": number}


def _date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, f"{name} must be a date YYYY-MM-DD") from None


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be an integer") from None


# Sort attributes per entity: name -> record key.
_SORTS = {
    "project": {"id": "id", "name": "name", "created_at": "_created", "updated_at": "_updated"},
    "rfi": {"id": "id", "number": "_number", "subject": "subject", "status": "status", "due_date": "due_date",
            "created_at": "_created", "updated_at": "_updated"},
    "submittal": {"id": "id", "number": "_number", "title": "title", "created_at": "_created", "updated_at": "_updated"},
    "daily_log": {"id": "id", "date": "date", "created_at": "_created", "updated_at": "_updated"},
}


class ProcoreEmulator:
    """The ASGI app (`.app`) over a `ProcoreState` (`.state`) and the framework core (`.core`)."""

    def __init__(self, *, company_id: int, clients: dict[str, str], hourly_limit: int = 3600, spike_limit: int | None = None,
                 extra_companies: dict[int, str] | None = None):
        self.company_id = company_id
        self.extra_companies = dict(extra_companies or {})
        self.core = EmulatorCore("procore", RefreshPolicy(access_ttl=5400, rotation="single_use"),
                                 token_response_extra=lambda server, grant: {"created_at": int(server.clock.time())})
        for client_id, secret in clients.items():
            self.core.oauth.register_client(client_id, secret)
        self.state = ProcoreState(self.core.clock, company_id)
        self.core.oauth.consent = Consent("Procore")
        self.hourly = SlidingWindow(self.core.clock, hourly_limit, 3600, "hourly")
        self.spike = SlidingWindow(self.core.clock, spike_limit or 1, 10, "spike")
        self.spike_enabled = bool(spike_limit)
        self.app = self.core.build_app(
            api_routes=self._routes(), oauth_token_path="/oauth/token", oauth_authorize_path="/oauth/authorize",
            is_api_path=lambda path: path.startswith("/rest/"), unauthorized_response=self._unauthorized,
            throttle_response=self._throttled, error_response=self._error, admin_routes=self._admin_routes())

    # ---- rate limits -------------------------------------------------------------------------
    def set_rate_limits(self, hourly_limit: int | None = None, spike_limit: int | None = None, reset: bool = False) -> dict[str, Any]:
        if hourly_limit is not None:
            self.hourly.limit = int(hourly_limit)
        if spike_limit is not None:
            self.spike.limit, self.spike_enabled = max(1, int(spike_limit)), int(spike_limit) > 0
        if reset:
            self.hourly.reset()
            self.spike.reset()
        return {"hourly_limit": self.hourly.limit, "spike_limit": self.spike.limit if self.spike_enabled else None}

    def _hit(self, key: str) -> Verdict:
        """Count a call against both windows; report the one nearer to its limit."""
        if self.spike_enabled:
            spike = self.spike.hit(key)
            hourly = self.hourly.hit(key) if spike.allowed else self.hourly.peek(key)
            if not spike.allowed or (hourly.allowed and spike.remaining < hourly.remaining):
                return spike
            return hourly
        return self.hourly.hit(key)

    def _rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {"X-Rate-Limit-Limit": str(verdict.limit), "X-Rate-Limit-Remaining": str(verdict.remaining),
                "X-Rate-Limit-Reset": str(math.ceil(verdict.reset_at))}

    # ---- provider-shaped responses ------------------------------------------------------------
    def _unauthorized(self, reason: str) -> Response:
        message = {"missing bearer token": "The access token is missing", "access token expired": "The access token expired"}.get(reason, "The access token is invalid")
        return JSONResponse({"errors": message}, status_code=401,
                            headers={"WWW-Authenticate": f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{message}"'})

    def _throttled(self, retry_after: str) -> Response:
        """The 429 the fault injector sends: same body and headers as a real over-limit."""
        now = self.core.clock.time()
        try:
            reset = now + float(retry_after)
        except ValueError:
            reset = parsedate_to_datetime(retry_after).timestamp()
        return PlainTextResponse(RATE_LIMIT_BODY, status_code=429, headers={
            "Retry-After": retry_after, "X-Rate-Limit-Limit": str(self.hourly.limit), "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(math.ceil(reset))})

    def _error(self, status: int) -> Response:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        return JSONResponse({"errors": phrase}, status_code=status)

    # ---- request pipeline ---------------------------------------------------------------------
    def _endpoint(self, handler: Callable[[Request], Any], company: str | None = "header") -> Callable[[Request], Any]:
        """Bearer token (401) -> rate limit (429) -> company (400/403) -> handler. `company` is
        "header" (Procore-Company-Id), "query" (`company_id`, else the header) or None."""

        async def endpoint(request: Request) -> Response:
            self.core.oauth.authenticate(request)  # raises Unauthorized -> the 401 above
            verdict = self._hit(request.headers["authorization"][7:].strip())
            headers = self._rate_headers(verdict)
            if not verdict.allowed:
                wait = max(1, math.ceil(verdict.reset_at - self.core.clock.time()))
                return PlainTextResponse(RATE_LIMIT_BODY, status_code=429, headers={**headers, "Retry-After": str(wait)})
            try:
                if company:
                    self._check_company(request.query_params.get("company_id") if company == "query" else None, request)
                response = await handler(request)
            except ApiError as exc:
                response = JSONResponse({"errors": exc.message}, status_code=exc.status)
            response.headers.update(headers)
            return response

        return endpoint

    def _check_company(self, explicit: str | None, request: Request) -> None:
        raw = explicit or request.headers.get("procore-company-id")
        if not raw:
            raise ApiError(400, "Missing required header: Procore-Company-Id")
        if _int(raw, "Procore-Company-Id") != self.company_id:
            raise ApiError(403, "App is not connected to this company")

    async def _body(self, request: Request, root: str) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Malformed JSON body") from None
        if not isinstance(body, dict) or not isinstance(body.get(root), dict):
            raise ApiError(400, f"param is missing or the value is empty: {root}")
        return body[root]

    # ---- listing: filters, sort, paging -------------------------------------------------------
    def _select(self, request: Request, entity: str, records: list[dict[str, Any]], deleted: str = "") -> list[dict[str, Any]]:
        q = request.query_params
        mode = deleted or q.get("filters[include_deleted]", "").lower()
        if mode not in ("with", "true", "only"):
            records = [r for r in records if r["_deleted"] is None]
        elif mode == "only":
            records = [r for r in records if r["_deleted"] is not None]
        ids = q.getlist("filters[id][]") + [v for raw in q.getlist("filters[id]") for v in raw.split(",") if v]
        if ids:
            wanted = {_int(v, "filters[id]") for v in ids}
            records = [r for r in records if r["id"] in wanted]
        for name, key in (("created_at", "_created"), ("updated_at", "_updated")):
            if q.get(f"filters[{name}]"):
                low, high = parse_range(q[f"filters[{name}]"], f"filters[{name}]")
                records = [r for r in records if low <= r[key] <= high]
        statuses = {s.lower() for s in q.getlist("filters[status]") + q.getlist("filters[status][]")}
        if statuses and entity == "rfi":
            records = [r for r in records if r["status"] in statuses]
        elif statuses and entity == "submittal":
            records = [r for r in records if r["status"]["name"].lower() in statuses]
        return self._sort(q, entity, records)

    def _sort(self, q: Any, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raw = q.get("sort") or q.get("sort[attribute]") or "id"
        desc, attr = raw.startswith("-"), raw.lstrip("-")
        direction = q.get("sort[direction]", "").lower()
        if direction:
            if direction not in ("asc", "desc"):
                raise ApiError(400, "sort[direction] must be asc or desc")
            desc = direction == "desc"
        key = _SORTS[entity].get(attr)
        if key is None:
            raise ApiError(400, f"Invalid sort attribute {attr!r}; allowed: {', '.join(_SORTS[entity])}")
        return sorted(records, key=lambda r: (r[key] is None, r[key] if r[key] is not None else "", r["id"]), reverse=desc)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """`page`/`per_page` slice with api-pagination's `Total`, `Per-Page` and `Link` headers."""
        q = request.query_params
        try:
            page = max(1, int(q.get("page", 1)))
        except ValueError:
            page = 1
        try:
            per_page = int(q.get("per_page", DEFAULT_PER_PAGE))
        except ValueError:
            per_page = DEFAULT_PER_PAGE
        per_page = min(MAX_PER_PAGE, per_page if per_page > 0 else DEFAULT_PER_PAGE)
        total, last = len(items), max(1, math.ceil(len(items) / per_page))
        body = [public(r) for r in items[(page - 1) * per_page: page * per_page]]
        links = []
        rels = ([("first", 1), ("prev", page - 1)] if page > 1 else []) + ([("last", last), ("next", page + 1)] if page < last else [])
        for rel, number in rels:
            links.append(f'<{request.url.include_query_params(page=number, per_page=per_page)}>; rel="{rel}"')
        headers = {"Total": str(total), "Per-Page": str(per_page)}
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(body, headers=headers)

    def _list(self, request: Request, entity: str, pid: int, deleted: str = "") -> Response:
        with self.state.lock:
            self.state.project(pid)
            return self._page(request, self._select(request, entity, self.state.records(entity, pid), deleted))

    # ---- handlers -----------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        return JSONResponse(self.state.me)

    async def companies(self, request: Request) -> Response:
        companies = {self.company_id: self.state.company_name, **self.extra_companies}
        return self._page(request, [{"id": cid, "name": name, "is_active": True, "logo_url": None, "my_company": False,
                                     "pcn_business_experience": False} for cid, name in companies.items()])

    async def list_projects(self, request: Request) -> Response:
        with self.state.lock:
            return self._page(request, self._select(request, "project", self.state.records("project", 0)))

    async def show_project(self, request: Request) -> Response:
        return JSONResponse(public(self.state.project(request.path_params["project_id"])))

    def _crud(self, entity: str) -> dict[str, Callable[[Request], Any]]:
        """List, recycle bin, show, create, update, recycle and retrieve for RFIs or submittals."""
        state = self.state

        async def index(request: Request) -> Response:
            return self._list(request, entity, request.path_params["project_id"])

        async def recycle_bin(request: Request) -> Response:
            return self._list(request, entity, request.path_params["project_id"], deleted="only")

        async def show(request: Request) -> Response:
            p = request.path_params
            state.project(p["project_id"])
            return JSONResponse(public(state.get(entity, p["id"], p["project_id"])))

        async def create(request: Request) -> Response:
            fields = await self._body(request, entity)
            return JSONResponse(public(state.create(entity, request.path_params["project_id"], fields)), status_code=201)

        async def update(request: Request) -> Response:
            fields, p = await self._body(request, entity), request.path_params
            state.project(p["project_id"])
            return JSONResponse(public(state.update(entity, p["id"], fields, p["project_id"])))

        def toggle(op: str) -> Callable[[Request], Any]:
            async def handler(request: Request) -> Response:
                p = request.path_params
                state.project(p["project_id"])
                return JSONResponse(public(getattr(state, op)(entity, p["id"], p["project_id"])))
            return handler

        return {"index": index, "recycle_bin": recycle_bin, "show": show, "create": create, "update": update,
                "recycle": toggle("recycle"), "retrieve": toggle("retrieve")}

    def _log_range(self, request: Request) -> tuple[str, str]:
        q = request.query_params
        if q.get("log_date"):
            day = _date(q["log_date"], "log_date").isoformat()
            return day, day
        start = q.get("start_date") or q.get("filters[start_date]")
        end = q.get("end_date") or q.get("filters[end_date]")
        if not start and not end:
            today = self.core.clock.now().date().isoformat()
            return today, today
        low, high = _date(start or end, "start_date").isoformat(), _date(end or start, "end_date").isoformat()
        if low > high:
            raise ApiError(400, "start_date must not be after end_date")
        return low, high

    def _logs(self, request: Request) -> list[dict[str, Any]]:
        low, high = self._log_range(request)
        pid = request.path_params["project_id"]
        self.state.project(pid)
        logs = self._select(request, "daily_log", self.state.records("daily_log", pid))
        return [r for r in logs if low <= r["date"] <= high]

    async def daily_logs(self, request: Request) -> Response:
        with self.state.lock:
            logs = self._logs(request)
            return JSONResponse({t: [public(r) for r in logs if r["log_type"] == t] for t in LOG_TYPES})

    def _typed_logs(self, log_type: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            with self.state.lock:
                return self._page(request, [r for r in self._logs(request) if r["log_type"] == log_type])
        return handler

    async def upload(self, request: Request) -> Response:
        """Multipart upload: stores name, size and sha256 (the bytes themselves are not kept)."""
        pid = request.path_params.get("project_id") or _int(request.query_params.get("project_id"), "project_id")
        self.state.project(pid)
        form = await request.form()
        upload = form.get("file[data]") or form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "file[data] must be a file part")
        data = await upload.read()
        now, name = int(self.core.clock.time()), str(form.get("file[name]") or upload.filename or "upload")
        with self.state.lock:
            fid = self.state._new_id("file")
            digest = hashlib.sha256(data).hexdigest()
            rec = self.state._stamps({
                "id": fid, "name": name, "parent_id": _int(form["file[parent_id]"], "file[parent_id]") if form.get("file[parent_id]") else None,
                "description": form.get("file[description]"), "size": len(data), "sha256": digest, "is_deleted": False,
                "content_type": upload.content_type, "created_by": self.state.me,
                "file_versions": [{"id": fid * 10 + 1, "number": 1, "size": len(data), "created_at": iso(now),
                                   "prostore_file": {"id": fid, "name": name, "filename": name, "size": len(data)}}],
            }, now, now)
            rec["_project"] = pid
            self.state.files[fid] = rec
        return JSONResponse(public(rec), status_code=201)

    async def list_files(self, request: Request) -> Response:
        pid = _int(request.query_params.get("project_id"), "project_id")
        self.state.project(pid)
        with self.state.lock:
            return self._page(request, [f for f in self.state.files.values() if f["_project"] == pid])

    # ---- routes ---------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        e, v0, project = self._endpoint, "/rest/v1.0", "/rest/v1.0/projects/{project_id:int}"
        routes = [
            Route(f"{v0}/me", e(self.me, company=None)),
            Route(f"{v0}/companies", e(self.companies, company=None)),
            Route(f"{v0}/projects", e(self.list_projects, company="query")),
            Route(project, e(self.show_project)),
            Route(f"{project}/daily_logs", e(self.daily_logs)),
            *[Route(f"{project}/{t}", e(self._typed_logs(t))) for t in LOG_TYPES],
            Route(f"{v0}/files", e(self.upload), methods=["POST"]),
            Route(f"{v0}/files", e(self.list_files), methods=["GET"]),
            Route(f"{project}/documents", e(self.upload), methods=["POST"]),
        ]
        for entity, plural, versions in (("rfi", "rfis", ("v1.0",)), ("submittal", "submittals", ("v1.1", "v1.0"))):
            h = self._crud(entity)
            for version in versions:
                base = f"/rest/{version}/projects/{{project_id:int}}/{plural}"
                routes += [Route(base + path, e(h[name]), methods=[method]) for path, name, method in (
                    ("", "index", "GET"), ("", "create", "POST"), ("/recycle_bin", "recycle_bin", "GET"), ("/{id:int}", "show", "GET"),
                    ("/{id:int}", "update", "PATCH"), ("/{id:int}/recycle", "recycle", "PATCH"), ("/{id:int}/retrieve", "retrieve", "PATCH"))]
        return routes

    def _admin_routes(self) -> list[Route]:
        """Procore-specific admin (`/_emulator/mutate`, `/_emulator/ratelimit`) and the OAuth
        extras the framework lacks (`/oauth/token/info`, `/oauth/revoke`)."""
        oauth = self.core.oauth

        async def mutate(request: Request) -> Response:
            try:
                body = await request.json()
                return JSONResponse(public(self.state.mutate(body.get("op", ""), body.get("entity", ""), body.get("project_id"),
                                                             body.get("id"), body.get("fields"))))
            except ApiError as exc:
                return JSONResponse({"errors": exc.message}, status_code=exc.status)
            except (ValueError, AttributeError, TypeError) as exc:
                return JSONResponse({"errors": f"bad request: {exc}"}, status_code=400)

        async def ratelimit(request: Request) -> Response:
            body = await request.json() if request.method == "POST" else {}
            return JSONResponse(self.set_rate_limits(body.get("hourly_limit"), body.get("spike_limit"), bool(body.get("reset"))))

        async def token_info(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("access_token", "")
            now = self.core.clock.time()
            with oauth._lock:
                record = oauth._access.get(token)
            if record is None or record.expires_at <= now:
                return JSONResponse({"error": "invalid_token", "error_description": "The access token is invalid"}, status_code=401)
            return JSONResponse({"resource_owner_id": self.state.me["id"], "scope": record.grant.scope.split(),
                                 "expires_in": int(record.expires_at - now), "application": {"uid": record.grant.client_id},
                                 "created_at": int(record.expires_at - oauth.policy.access_ttl)})

        async def revoke(request: Request) -> Response:
            """Revokes the whole authorization the token belongs to (its access and refresh
            tokens, found by their shared Grant); 200 `{}` whatever the token."""
            oauth.revoke_grant(str((await request.form()).get("token", "")))
            return JSONResponse({})

        return [Route(f"{ADMIN_PREFIX}/mutate", mutate, methods=["POST"]),
                Route(f"{ADMIN_PREFIX}/ratelimit", ratelimit, methods=["GET", "POST"]),
                Route("/oauth/token/info", token_info, methods=["GET"]),
                Route("/oauth/revoke", revoke, methods=["POST"])]


def create_emulator(*, projects: int = 2, rfis_per_project: int = 5, submittals_per_project: int = 5,
                    daily_logs_per_project: int = 5, seed: int = 0, company_id: int = 562949953421312,
                    clients: dict[str, str] | None = None, hourly_limit: int = 3600, spike_limit: int | None = None,
                    today: date | None = None, extra_companies: dict[int, str] | None = None) -> ProcoreEmulator:
    """A Procore emulator with generated data (same seed and `today` -> same records).

    `today` anchors generated timestamps and daily-log dates (default: the emulator clock's
    UTC date); `hourly_limit` / `spike_limit` shrink the rate limits for tests."""
    emulator = ProcoreEmulator(company_id=company_id, clients=clients if clients is not None else {"hub-demo": "hub-demo-secret"},
                               hourly_limit=hourly_limit, spike_limit=spike_limit, extra_companies=extra_companies)
    emulator.state.generate(seed, projects, rfis_per_project, submittals_per_project, daily_logs_per_project,
                            today or emulator.core.clock.now().date())
    return emulator


def dump(emulator: ProcoreEmulator) -> str:
    """Every record as canonical JSON (determinism checks, debugging)."""
    state = emulator.state
    with state.lock:
        data = {"projects": [public(p) for p in state.projects.values()],
                **{e: {str(pid): [public(r) for r in t.values()] for pid, t in state.tables[e].items()} for e in state.tables}}
    return json.dumps(data, sort_keys=True)
