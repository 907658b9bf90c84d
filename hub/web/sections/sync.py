""""Sync now" tab (and the hub card's quick action): launch the provider's sync job for this
integration's partition on the Dagster webserver, through hub/sync/sync_now.py and its
GraphQL client (hub/sync/dagster_api.py), the same path as `hub sync now`, so the run is
like a scheduled one and shows in the Dagster UI. The page then follows the run: a small
fragment, polled by htmx every two seconds until the run ends, shows its status, its steps
and the records its sync_log rows counted, with the link to the run in the Dagster UI
(HUB_DAGSTER_URL, as for the CLI).

A run is followed by the id in the page's address; the fragment shows it only if Dagster
says it is this integration's sync job on this integration's partition (404 otherwise), so
no one reads another company's run by guessing its id. Dagster unreachable, an integration
that is disabled or has no sync job, a partition the sensor has not added yet: each is a
clear message and nothing is launched."""

from __future__ import annotations

import re
from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub.errors import HubError
from hub.providers import registry
from hub.redact import redact
from hub.schema import sync_log
from hub.sync import sync_now
from hub.sync.dagster_api import DagsterApi
from hub.web import times
from hub.web.sections import Section
from hub.web.sections.common import HOME, done, integration_get, tab_url

KEY = "sync"
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
POLL = "2s"
LAUNCH_TIMEOUT_S = 15.0  # a page waits for the launch; a dead Dagster answers within this
PROGRESS_TIMEOUT_S = 5.0
# a page keeps asking an unreachable Dagster this many times (two seconds apart, each
# waiting up to PROGRESS_TIMEOUT_S), then stops and says so: it does not poll forever
MAX_MISSES = 10
RECENT_ROWS = 200  # recent runs are found among the integration's newest sync_log rows
RECENT_RUNS = 5
STATUS_TONE = {"SUCCESS": "ok", "FAILURE": "bad", "CANCELED": "bad", "CANCELING": "bad", "STARTED": "busy",
               "STARTING": "busy", "QUEUED": "busy", "NOT_STARTED": "neutral", "MANAGED": "neutral"}
STATUS_TEXT = {"SUCCESS": "Succeeded", "FAILURE": "Failed", "CANCELED": "Canceled", "CANCELING": "Canceling",
               "STARTED": "Running", "STARTING": "Starting", "QUEUED": "Queued", "NOT_STARTED": "Not started"}


def _api(timeout: float) -> DagsterApi:
    return DagsterApi(sync_now.dagster_url(), timeout=timeout)


def recent_runs(conn: Connection, integration_id: int, tz_name: str) -> list[dict]:
    """The last few Dagster runs that wrote this integration's sync_log, newest first, from
    its newest rows only (a bounded read of the history index); records count the syncs,
    not the data-quality checks."""
    newest = (sa.select(sync_log.c.dagster_run_id, sync_log.c.sync_type, sync_log.c.status, sync_log.c.started_at,
                        sync_log.c.records_processed, sync_log.c.records_failed)
              .where(sync_log.c.integration_id == integration_id)
              .order_by(sync_log.c.started_at.desc(), sync_log.c.id.desc()).limit(RECENT_ROWS).subquery())
    rows = conn.execute(
        sa.select(newest.c.dagster_run_id, sa.func.min(newest.c.started_at).label("started"),
                  # a data-quality check that found bad rows is not a failed sync (the history lists it)
                  sa.func.count().filter(newest.c.status == "failed", newest.c.sync_type != "check").label("failed_steps"),
                  sa.func.count().filter(newest.c.status == "started").label("open_steps"),
                  sa.func.sum(newest.c.records_processed).filter(newest.c.sync_type != "check").label("records"),
                  sa.func.sum(newest.c.records_failed).filter(newest.c.sync_type != "check").label("failed"))
        .where(newest.c.dagster_run_id.is_not(None)).group_by(newest.c.dagster_run_id)
        .order_by(sa.func.min(newest.c.started_at).desc(), newest.c.dagster_run_id).limit(RECENT_RUNS)).all()
    return [{"run_id": r.dagster_run_id, "started": {"relative": times.relative(r.started), "exact": times.exact(r.started, tz_name),
                                                      "iso": times.iso(r.started)},
             "outcome": "running" if r.open_steps else "failed" if r.failed_steps else "completed",
             "records": int(r.records or 0), "failed": int(r.failed or 0)} for r in rows]


def load(conn, context, row, spec, query) -> dict:
    run_id = query.get("run") or ""
    syncs = bool(spec and spec.syncs)
    return {
        "syncs": syncs, "active": row.is_active, "can_launch": syncs and row.is_active,
        "job": sync_now.job_name(row.provider) if syncs else None,
        "run_id": run_id if RUN_ID.fullmatch(run_id) else None, "bad_run": bool(run_id) and not RUN_ID.fullmatch(run_id),
        "dagster_url": sync_now.dagster_url().rstrip("/"), "recent": recent_runs(conn, row.id, context.company.timezone),
    }


def launch_action(pages, request: Request, context, row, data: FormData) -> Response:
    """Launch the sync job; back to the hub (`next`) or the tab with a message when refused."""
    back = data.get("next")
    from_hub = back == HOME

    def refused(text: str) -> Response:
        pages.flash(request, text, "bad")
        return RedirectResponse(HOME if from_hub else tab_url(row.id, KEY), status_code=303)

    spec = registry.providers().get(row.provider)
    if spec is None or not spec.syncs:
        return refused(f"{row.name} has nothing to sync.")
    if not row.is_active:
        return refused(f"{row.name} is disabled: enable it, then sync.")
    try:
        with _api(LAUNCH_TIMEOUT_S) as api:
            run_id = sync_now.launch(api, pages.engine, row.id)
    except HubError as exc:
        return refused(f"The sync of {row.name} did not start: {redact(str(exc))}")
    started = f"Sync of {row.name} started (run {run_id[:8]})."
    if KEY not in spec.pages:  # a provider whose page has no sync tab: back to the hub
        pages.flash(request, started + " Follow it in the Dagster UI.")
        return RedirectResponse(HOME, status_code=303)
    return done(pages, request, row.id, KEY, started, query=f"run={run_id}")


def _run_records(conn: Connection, integration_id: int, run_id: str) -> list[sa.Row]:
    return conn.execute(
        sa.select(sync_log.c.action, sync_log.c.status, sync_log.c.records_processed, sync_log.c.records_failed)
        .where(sync_log.c.dagster_run_id == run_id, sync_log.c.integration_id == integration_id,
               sync_log.c.sync_type != "check")  # records synced; the checks' rows count rows checked
        .order_by(sync_log.c.started_at, sync_log.c.id)).all()


def _misses(request: Request) -> int:
    """How many polls in a row found Dagster unreachable (the fragment counts them in its URL)."""
    raw = str(request.query_params.get("miss") or "0")
    return min(int(raw), MAX_MISSES) if raw.isdigit() else 0


def progress_fragment(pages, request: Request, context, row) -> Response:
    """Where the run stands (htmx polls this until the run ends)."""
    run_id = str(request.query_params.get("run") or "")
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, "No such run.")
    misses = _misses(request)
    values = {"run_id": run_id, "integration": row, "url": None, "error": None, "poll": None, "misses": 0}
    try:
        with _api(PROGRESS_TIMEOUT_S) as api:
            progress = api.run_progress(run_id)
            url = api.run_url(run_id)
    except HubError as exc:
        # Dagster may be back at the next poll; after MAX_MISSES in a row the page stops asking
        misses += 1
        values.update(error=redact(str(exc)), misses=misses, poll=POLL if misses < MAX_MISSES else None)
        return pages.render(request, "sections/sync_progress.html", ctx=context, csrf=context.csrf, **values)
    if not sync_now.is_run_of(progress, row.provider, row.id):
        raise HTTPException(404, "No such run.")
    with pages.engine.connect() as conn:
        records = _run_records(conn, row.id, run_id)
    values.update(
        url=url, status=progress.status, status_text=STATUS_TEXT.get(progress.status, progress.status.title()),
        tone=STATUS_TONE.get(progress.status, "neutral"), finished=progress.finished,
        steps=[{"key": key, "status": (status or "PENDING").replace("_", " ").lower()} for key, status in progress.steps],
        records=records, processed=sum(r.records_processed for r in records), failed=sum(r.records_failed for r in records),
        poll=None if progress.finished else POLL,
    )
    return pages.render(request, "sections/sync_progress.html", ctx=context, csrf=context.csrf, **values)


def routes(pages) -> list[Route]:
    base = HOME + "/{integration_id:int}/" + KEY
    return [
        Route(base + "/now", pages.integration_action(partial(launch_action, pages)), methods=["POST"]),
        Route(base + "/progress", integration_get(pages, partial(progress_fragment, pages)), methods=["GET"]),
    ]


SECTION = Section(key=KEY, label="Sync now", template="sections/sync.html", load=load, routes=routes)
