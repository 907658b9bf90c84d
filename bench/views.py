"""Server time of the settings pages on a big dataset, beside /healthz in the same run.

    .venv/bin/python bench/views.py      # --integrations 1000 --companies 50 --rows 1000000 --requests 400

On a fresh database on the bench server (bench/_common.py; or `--reuse NAME`, a database an
earlier `--keep` run left), migrated to head, it seeds
- `--companies` companies with `--integrations` integrations spread evenly over them, of
  every provider the registry knows, stored through `hub.integrations.add_integration`
  (validated and encrypted as the CLI stores them), with statuses, last syncs and errors;
- `--rows` sync_log rows, by one `INSERT ... SELECT generate_series` statement, over the
  integrations of the providers that sync: 90 days of history, skewed so a few hold most
  rows (the busiest about 6%, ~58,000 rows, ~20,000 in the last 30 days: an hourly sync of
  many streams), and the busiest of all is the measured company's, of a provider whose page
  has a history tab (when one has): the worst case; 5% failed, with an error; then
  `VACUUM ANALYZE`, as autovacuum would leave a table that size;
- one admin of the first company, signed in through the real login form (GET /login for
  the CSRF token, POST the form, 303 to the hub page).

It serves the hub web app (`hub web run`: `hub.web.app.create_app` under uvicorn, one
worker, own process group) and times, with one keep-alive client sending one request at a
time, rounds in which every target gets one request in a shuffled order:
- `/healthz`: no session, no database: the floor of HTTP, the client and uvicorn;
- the hub page `/settings/integrations` (the company's 20 integrations, grouped);
- the overview tab of that busiest integration;
- its sync history `/settings/integrations/<id>/history` when the app has that section
  (detected by a GET answering 200; otherwise a line says it is absent and it is left out).
Before the rounds it waits (`--quiet-wait`, 120 s at most) for other processes to leave
the CPUs, and it records how much CPU they used during the rounds: on a shared machine
the latencies are only as good as that figure. Only 200s count; anything else stops the
run. Then, per target, a block of requests with the server's and PostgreSQL's CPU per
request. Finally, with the same app in this process: each page's CPU per request called
straight as ASGI (load on the machine barely moves it, unlike latency), a cProfile of it,
and every statement it runs replayed under EXPLAIN (ANALYZE, BUFFERS): its statement
count, their time inside PostgreSQL and the plan of the slowest. So a slow page shows
whether its time goes to SQL (indexes) or to Python.

Prints a table and writes bench/results/views.json and .md (`--out` for another stem).
Nothing in tests/ asserts these timings; tests/test_bench_views.py runs a tiny dataset.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, ROOT, VENV_BIN, Child, cpu_seconds, cpu_split, fresh_database, free_port, log, machine,  # noqa: E402
                     percentile, plain, process_cpu, server_url, signals_as_exceptions, wait_http, write_json)
from webhook_ingest import wait_quiet  # noqa: E402

PASSWORD = "bench-views-password"
ADMIN = "admin@bench-views.example"
TIMEZONES = ("America/New_York", "America/Chicago", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "UTC")
TARGET_MS = 50.0
HOME = "/settings/integrations"

# (action, direction, entity_type, sync_type): what the accounting syncs write to sync_log
SYNC_KINDS = (
    ("import_vendors", "inbound", "vendor", "incremental"),
    ("import_accounts", "inbound", "gl_account", "incremental"),
    ("import_bills", "inbound", "invoice", "incremental"),
    ("export_invoices", "outbound", "invoice", "incremental"),
    ("export_vendors", "outbound", "vendor", "incremental"),
    ("reconcile", "inbound", "invoice", "full"),
)


# ---- seeding ------------------------------------------------------------------------------------
def seed(url, companies: int, integrations: int, rows: int, keys: str) -> dict:
    """Companies, integrations (through the hub's own store), the admin, and the sync_log rows
    (one set-based statement). Returns what was made."""
    import sqlalchemy as sa

    from hub import db
    from hub import integrations as store
    from hub.auth import users
    from hub.crypto import Keyring
    from hub.providers import registry
    from hub.schema import integration

    keyring = Keyring([keys])
    specs = sorted(registry.providers().values(), key=lambda s: s.name)
    rng = random.Random(12)
    engine = db.engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        company_ids = [store.create_company(conn, f"Bench Company {c + 1:03d}", TIMEZONES[c % len(TIMEZONES)])
                       for c in range(companies)]
        for i in range(integrations):
            spec = specs[(i // companies) % len(specs)]  # each company gets every provider in turn
            company_id = company_ids[i % companies]
            credentials = {f.name: f"bench-{f.name}-{i:06d}" for f in spec.credentials}
            config = {f.name: f"{i:06d}" for f in spec.config if f.required}
            store.add_integration(conn, keyring, company_id=company_id, provider=spec.name,
                                  name=f"{spec.display_name} {i // companies + 1}", config=config, credentials=credentials)
        user_id = users.create_user(conn, ADMIN, PASSWORD)
        users.grant(conn, user_id, company_ids[0], "admin")
        ids = list(conn.scalars(sa.select(integration.c.id).order_by(integration.c.id)))
        # statuses as a fleet shows them: most connected, some failing, a few new or off
        for integration_id in ids:
            roll = rng.random()
            status = "connected" if roll < 0.75 else "error" if roll < 0.87 else "pending" if roll < 0.95 else "disconnected"
            values = {"status": status, "is_active": rng.random() > 0.05}
            if status == "error":
                values["error_message"] = ("HTTPStatusError: 401 Unauthorized for url https://api.example/v3/company/"
                                           f"{integration_id}/query (the refresh token was revoked; reconnect)")
            conn.execute(sa.update(integration).where(integration.c.id == integration_id).values(**values))
    log(f"seeded {companies} companies, {integrations} integrations, 1 admin in {time.perf_counter() - t0:.1f} s")

    import psycopg

    t0 = time.perf_counter()
    syncing = list(registry.syncing_providers())  # sync_log rows belong to integrations that sync
    # the busiest of all (the skew's first id) is the measured company's, of a provider whose
    # page has a history tab when one has: the worst case for the page measured
    shown = [name for name in syncing if "history" in registry.get(name).pages] or syncing
    kinds = ", ".join(f"ROW('{a}', '{d}', '{e}', '{t}')::bench_sync_kind" for a, d, e, t in SYNC_KINDS)
    with psycopg.connect(plain(url), autocommit=True) as pg:
        pg.execute("CREATE TYPE bench_sync_kind AS (action text, direction text, entity_type text, sync_type text)")
        # integration = ids[floor(n * r^2)]: the first ids get most rows (r^2 skews toward 0);
        # started_at over 90 days; 5% failed with an error; the newest 0.05% still running
        pg.execute(f"""
            WITH ids AS (SELECT array_agg(id ORDER BY (company_id = %s AND provider = ANY(%s)) DESC, id) AS a
                         FROM integration WHERE provider = ANY(%s)),
                 kinds AS (SELECT ARRAY[{kinds}] AS k),
                 g AS (SELECT n, random() AS r, random() AS f, random() AS w, 90 * random() AS age_days,
                              1 + floor(random() * {len(SYNC_KINDS)})::int AS kind
                       FROM generate_series(1, %s) AS n)
            INSERT INTO sync_log (integration_id, sync_type, action, direction, entity_type, status,
                                  records_processed, records_failed, errors, details, dagster_run_id,
                                  started_at, completed_at)
            SELECT ids.a[1 + floor(array_length(ids.a, 1) * g.r * g.r)::int],
                   (kinds.k[g.kind]).sync_type, (kinds.k[g.kind]).action, (kinds.k[g.kind]).direction,
                   (kinds.k[g.kind]).entity_type,
                   CASE WHEN g.age_days < 0.045 AND g.f < 0.01 THEN 'started' WHEN g.f < 0.05 THEN 'failed' ELSE 'completed' END,
                   floor(g.w * 500)::int,
                   CASE WHEN g.f < 0.05 THEN 1 + floor(g.w * 20)::int ELSE 0 END,
                   CASE WHEN g.f < 0.05 THEN jsonb_build_array(jsonb_build_object(
                            'record', 'INV-' || g.n, 'message', 'ValidationError: the account of category '
                            || (g.n %% 40) || ' is not mapped')) ELSE '[]'::jsonb END,
                   jsonb_build_object('pages', 1 + g.n %% 7),
                   md5(g.n::text),
                   now() - g.age_days * interval '1 day',
                   CASE WHEN g.age_days < 0.045 AND g.f < 0.01 THEN NULL
                        ELSE now() - g.age_days * interval '1 day' + (5 + g.w * 300) * interval '1 second' END
            FROM g, ids, kinds
        """, (company_ids[0], shown, syncing, rows))
        pg.execute("DROP TYPE bench_sync_kind")
        log(f"inserted {rows:,} sync_log rows in {time.perf_counter() - t0:.1f} s")
        t1 = time.perf_counter()
        pg.execute("""UPDATE integration SET last_sync_at = s.last
                      FROM (SELECT integration_id, max(completed_at) AS last FROM sync_log GROUP BY integration_id) s
                      WHERE s.integration_id = integration.id""")
        pg.execute("VACUUM ANALYZE")
        log(f"last_sync_at set and VACUUM ANALYZE in {time.perf_counter() - t1:.1f} s")
    return dataset(url)


def dataset(url) -> dict:
    """What the database holds, and the integration the integration pages are measured on:
    the first company's busiest (most sync_log rows)."""
    import psycopg

    from hub.providers import registry

    with psycopg.connect(plain(url)) as pg:
        company_id = pg.execute("SELECT m.company_id FROM membership m JOIN app_user u ON u.id = m.user_id "
                                "WHERE u.email = %s", (ADMIN,)).fetchone()[0]
        ranked = pg.execute("""SELECT i.id, i.provider, count(s.id) FROM integration i
                               LEFT JOIN sync_log s ON s.integration_id = i.id
                               WHERE i.company_id = %s GROUP BY i.id ORDER BY count(s.id) DESC, i.id""",
                            (company_id,)).fetchall()
        # the busiest whose page has a history tab, when a provider's page has one
        specs = registry.providers()
        busiest = next((r for r in ranked if specs.get(r[1]) and "history" in specs[r[1]].pages), ranked[0])
        return {
            "companies": pg.execute("SELECT count(*) FROM company").fetchone()[0],
            "integrations": pg.execute("SELECT count(*) FROM integration").fetchone()[0],
            "sync_log_rows": pg.execute("SELECT count(*) FROM sync_log").fetchone()[0],
            "company_id": company_id,
            "company_integrations": pg.execute("SELECT count(*) FROM integration WHERE company_id = %s",
                                               (company_id,)).fetchone()[0],
            "integration_id": busiest[0],
            "integration_provider": busiest[1],
            "integration_sync_log_rows": busiest[2],
            "integration_sync_log_rows_30d": pg.execute(
                "SELECT count(*) FROM sync_log WHERE integration_id = %s AND started_at > now() - interval '30 days'",
                (busiest[0],)).fetchone()[0],
        }


# ---- the server and the client ----------------------------------------------------------------
def start_hub(dsn: str, keys: str, logdir: Path) -> tuple[Child, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DAGSTER_"))}
    env.update(HUB_DATABASE_URL=dsn, HUB_SECRET_KEYS=keys, HUB_STATE_DIR=str(logdir / "hub_state"))
    child = Child("hub", [str(VENV_BIN / "hub"), "web", "run", "--port", str(port)], env, logdir / "hub.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, 60, "hub web app")
    return child, base


CSRF_INPUT = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def sign_in(client: httpx.Client) -> None:
    """The real login form: its CSRF token from the page, the form posted, 303 to the hub."""
    page = client.get("/login")
    match = CSRF_INPUT.search(page.text)
    if page.status_code != 200 or not match:
        raise RuntimeError(f"GET /login answered {page.status_code} without a CSRF token")
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": match[1]})
    if answer.status_code != 303 or answer.headers.get("location") != HOME:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.headers.get('location')}")


def targets_of(client: httpx.Client, data: dict, history_query: str) -> tuple[dict[str, str], str]:
    """The pages to time, by label, and the line about the history page (present or not)."""
    integration_id = data["integration_id"]
    targets = {"/healthz": "/healthz", "hub page": HOME, "overview tab": f"{HOME}/{integration_id}/overview"}
    history = f"{HOME}/{integration_id}/history" + (f"?{history_query}" if history_query else "")
    probe = client.get(history)
    if probe.status_code == 200:
        targets["history tab"] = history
        line = f"history page present: {history} answered 200, measured"
    else:
        line = (f"history page ABSENT: {history} answered {probe.status_code} "
                "(the app has no history section yet), not measured")
    for label, path in targets.items():
        answer = client.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{label} {path} answered {answer.status_code}, not 200 (signed in?)")
    return targets, line


def timed_get(client: httpx.Client, path: str) -> float:
    t0 = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - t0
    if answer.status_code != 200:
        raise RuntimeError(f"{path} answered {answer.status_code}")
    return elapsed


def interleaved(client: httpx.Client, targets: dict[str, str], requests: int, warmup: int) -> dict[str, list[float]]:
    """`warmup` + `requests` rounds; every round sends each target one request, in a shuffled
    order, so a noisy moment on the shared machine hits every target alike."""
    rng = random.Random(7)
    times: dict[str, list[float]] = {label: [] for label in targets}
    labels = list(targets)
    for round_ in range(warmup + requests):
        rng.shuffle(labels)
        for label in labels:
            elapsed = timed_get(client, targets[label])
            if round_ >= warmup:
                times[label].append(elapsed)
    return times


def cpu_blocks(client: httpx.Client, targets: dict[str, str], server: Child, database: str, n: int) -> dict[str, dict]:
    """Per target, `n` requests in a row: wall, the server process's CPU and PostgreSQL's
    (backends of the bench database and the server's background processes) per request."""
    out = {}
    for label, path in targets.items():
        before, c0, t0 = process_cpu(), cpu_seconds(server.pid), time.perf_counter()
        for _ in range(n):
            timed_get(client, path)
        wall, server_cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - c0
        split = cpu_split(before, process_cpu(), {server.pid, os.getpid()}, {database})
        out[label] = {"requests": n, "wall_ms": round(wall / n * 1000, 2), "server_cpu_ms": round(server_cpu / n * 1000, 2),
                      "postgres_cpu_ms": round(split["postgres"] / n * 1000, 2)}
    return out


# ---- the statements the pages run ---------------------------------------------------------------
async def asgi_get(app, path: str, cookie: str) -> int:
    """One GET straight into the ASGI app (no HTTP parser, no client library: what the
    process spends is the app's own), with the session cookie; returns the status."""
    status = 0
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    route, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": route, "raw_path": route.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie.encode())],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
    await app(scope, receive, send)
    return status


def in_process(url, keys: str, targets: dict[str, str], n: int, top: int) -> dict[str, dict]:
    """The same app (`create_app`), in this process, signed in through its login form, on an
    engine that records every statement. Per page: the statements it runs with their
    parameters (for EXPLAIN), its CPU per request over `n` requests called straight as ASGI
    (every thread of the process counted: the pages do their database work in the thread
    pool), and a cProfile of `n` more, the thread-pool hops made inline so the profiler,
    which sees one thread, sees the whole request; its `top` functions by own time."""
    import sqlalchemy as sa

    import hub.web.pages
    from hub import db
    from hub.web.app import create_app
    from hub.web.session import COOKIE_NAME, WebSettings

    engine = db.engine(url)  # configured as the served app's (pool, pre-ping)
    recorded: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        recorded.append((statement, parameters))

    checkouts = [0]

    def checkout(dbapi_connection, record_, proxy):
        checkouts[0] += 1

    sa.event.listen(engine, "before_cursor_execute", record)
    sa.event.listen(engine.pool, "checkout", checkout)  # each: a pre-ping round trip, and a rollback at checkin

    os.environ["HUB_SECRET_KEYS"] = keys
    app = create_app(engine, settings=WebSettings(secret="bench-views-in-process"))

    async def inline(func, *args, **kwargs):
        return func(*args, **kwargs)

    async def drive() -> dict[str, dict]:
        out: dict[str, dict] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            page = await client.get("/login")
            answer = await client.post("/login", data={"email": ADMIN, "password": PASSWORD,
                                                       "csrf_token": CSRF_INPUT.search(page.text)[1]})
            if answer.status_code != 303:
                raise RuntimeError(f"in-process sign-in answered {answer.status_code}")
            cookie = f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"
        for label, path in targets.items():
            for _ in range(5):  # caches warm, as in the timed run
                await asgi_get(app, path, cookie)
            recorded.clear()
            checkouts[0] = 0
            if await asgi_get(app, path, cookie) != 200:
                raise RuntimeError(f"in-process {path} did not answer 200")
            statements, connections = list(recorded), checkouts[0]
            c0 = time.process_time()
            for _ in range(n):
                await asgi_get(app, path, cookie)
            cpu_ms = (time.process_time() - c0) / n * 1000
            profile = ""
            if label != "/healthz":
                profiler = cProfile.Profile()
                saved = hub.web.pages.run_in_threadpool
                hub.web.pages.run_in_threadpool = inline
                try:
                    profiler.enable()
                    for _ in range(n):
                        await asgi_get(app, path, cookie)
                    profiler.disable()
                finally:
                    hub.web.pages.run_in_threadpool = saved
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
                site = str(Path(httpx.__file__).parent.parent) + "/"
                profile = "\n".join(line.replace(site, "").replace(str(ROOT) + "/", "")
                                    for line in text.getvalue().splitlines() if line.strip())
            out[label] = {"statements": statements, "connections": connections, "cpu_ms": round(cpu_ms, 2), "profile": profile}
        await app.state.committer.close()
        return out

    try:
        return asyncio.run(drive())
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        sa.event.remove(engine.pool, "checkout", checkout)
        engine.dispose()


EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


def explain(url, statements: dict[str, list[tuple[str, object]]]) -> dict[str, dict]:
    """Per page: its statements' count and their execution time inside PostgreSQL (EXPLAIN
    ANALYZE, summed), and the plan of its slowest statement."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for label, found in statements.items():
                plans = []
                for statement, parameters in found:
                    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                        continue
                    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
                    plan = "\n".join(r[0] for r in rows)
                    match = EXECUTION.search(plan)
                    plans.append((float(match[1]) if match else 0.0, " ".join(statement.split()), plan))
                conn.rollback()
                slowest = max(plans, default=(0.0, "", ""))
                out[label] = {"statements": len(found), "explained": len(plans),
                              "execution_ms": round(sum(p[0] for p in plans), 3),
                              "slowest_ms": round(slowest[0], 3), "slowest_statement": slowest[1], "slowest_plan": slowest[2]}
    finally:
        engine.dispose()
    return out


# ---- report -------------------------------------------------------------------------------------
def summarize(times: dict[str, list[float]]) -> dict[str, dict]:
    out = {}
    for label, values in times.items():
        ordered = sorted(v * 1000 for v in values)
        out[label] = {"n": len(ordered), "p50_ms": round(percentile(ordered, 50), 2),
                      "p95_ms": round(percentile(ordered, 95), 2), "p99_ms": round(percentile(ordered, 99), 2),
                      "max_ms": round(ordered[-1], 2)}
    return out


def table(summary: dict[str, dict], targets: dict[str, str], cpu: dict[str, dict]) -> str:
    floor = summary["/healthz"]["p50_ms"]
    lines = ["| page | path | p50 ms | p95 ms | p99 ms | max ms | p50 minus /healthz | server CPU ms | PostgreSQL CPU ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in summary.items():
        c = cpu.get(label, {})
        lines.append(f"| {label} | `{targets[label]}` | {s['p50_ms']} | **{s['p95_ms']}** | {s['p99_ms']} | {s['max_ms']} | "
                     f"{s['p50_ms'] - floor:.2f} | {c.get('server_cpu_ms', '-')} | {c.get('postgres_cpu_ms', '-')} |")
    return "\n".join(lines)


def verdicts(summary: dict[str, dict]) -> list[str]:
    out = []
    for label in ("hub page", "history tab"):
        if label in summary:
            p95 = summary[label]["p95_ms"]
            out.append(f"{label}: p95 {p95} ms, target under {TARGET_MS:.0f} ms: {'met' if p95 < TARGET_MS else 'MISSED'}")
        else:
            out.append(f"{label}: not measured (absent)")
    return out


def markdown(result: dict, table_text: str) -> str:
    m, d = result["machine"], result["dataset"]
    lines = [
        "# Settings pages: server time on a big dataset",
        "",
        f"`python bench/views.py`, {m['date']}: {m['nproc']} CPUs, Python {m['python']}, PostgreSQL {m.get('postgresql', '?')}. "
        f"{d['companies']} companies, {d['integrations']:,} integrations, {d['sync_log_rows']:,} sync_log rows; signed in as "
        f"an admin of a company with {d['company_integrations']} integrations; integration pages of its busiest, "
        f"{d['integration_id']} ({d['integration_provider']}, {d['integration_sync_log_rows']:,} sync_log rows, "
        f"{d['integration_sync_log_rows_30d']:,} in the last 30 days).",
        "",
        f"{result['requests']} interleaved rounds (after {result['warmup']} warm-up rounds), one keep-alive client, "
        "one request at a time, over loopback; times from the send to the full response. CPU columns: a separate "
        f"block of {result['cpu_requests']} requests per page. Other processes on the machine used "
        f"{result['cpu_pct_during_rounds']['other']}% of a core during the rounds.",
        "",
        table_text,
        "",
        result["history"],
        "",
        *[f"- {v}" for v in result["verdicts"]],
    ]
    lines += ["", "Where a request's time goes: the app's CPU per request (the same app in the bench process, called "
              "straight as ASGI, no HTTP), and inside PostgreSQL each statement the page runs, replayed once under "
              "EXPLAIN ANALYZE:", "",
              "| page | app CPU ms | pool checkouts | statements | PostgreSQL execution ms, all | slowest ms | slowest statement |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for label, e in result["explain"].items():
        text = e["slowest_statement"]
        lines.append(f"| {label} | {e['app_cpu_ms']} | {e['connections']} | {e['statements']} | {e['execution_ms']} | {e['slowest_ms']} | "
                     f"`{text[:140]}{'…' if len(text) > 140 else ''}` |")
    for label, profile in result["profiles"].items():
        lines += ["", f"Profile of the {label} (cProfile, in process, thread-pool hops inline; top by own time):", "",
                  "```", profile, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--companies", type=int, default=50)
    ap.add_argument("--integrations", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=1_000_000, help="sync_log rows")
    ap.add_argument("--requests", type=int, default=400, help="measured rounds (each page once per round)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--cpu-requests", type=int, default=200, help="requests per page in the CPU blocks")
    ap.add_argument("--profile-requests", type=int, default=100, help="in-process requests per page (CPU, profile)")
    ap.add_argument("--profile-top", type=int, default=12, help="functions listed per page profile")
    ap.add_argument("--quiet-wait", type=float, default=120.0,
                    help="wait up to this many seconds for other processes to leave the CPUs before the rounds")
    ap.add_argument("--quiet-pct", type=float, default=25.0, help="'quiet' means under this %% of one core busy")
    ap.add_argument("--history-query", default="", help="a query string for the history page, e.g. status=failed")
    ap.add_argument("--keep", action="store_true", help="keep the database (its name is printed) for --reuse")
    ap.add_argument("--reuse", metavar="DATABASE", help="a database an earlier --keep run seeded (migrated to head again)")
    ap.add_argument("--out", default=str(RESULTS / "views"), help="results stem: <out>.json and <out>.md")
    args = ap.parse_args(argv)
    if args.integrations < args.companies or args.companies < 1:
        ap.error("--integrations must be at least --companies, and --companies at least 1")

    from hub import db, migrate
    from hub.crypto import generate_key

    with signals_as_exceptions(), ExitStack() as stack:
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_views_")))
        if args.reuse:
            url = server_url().set(database=args.reuse)
            keys = stored_key(url)
            migrate.upgrade(url)
            data = dataset(url)
        else:
            if args.keep:
                url = server_url().set(database=f"hub_bench_views_{int(time.time())}")
                db.ensure_database(url)
            else:
                url = stack.enter_context(fresh_database("hub_bench_views"))
            keys = generate_key()
            migrate.upgrade(url)
            data = seed(url, args.companies, args.integrations, args.rows, keys)
            if args.keep:
                store_key(url, keys)
                log(f"kept database {url.database} (next time: --reuse {url.database}; drop it when done)")
        info = machine(url)
        log(f"dataset: {data}")
        server, base = start_hub(plain(url), keys, logdir)
        stack.callback(server.stop)
        with httpx.Client(base_url=base, timeout=30) as client:
            sign_in(client)
            targets, history_line = targets_of(client, data, args.history_query)
            log(history_line)
            quiet = wait_quiet(args.quiet_pct, args.quiet_wait) if args.quiet_wait > 0 else None
            log(f"timing {len(targets)} targets: {args.warmup} warm-up + {args.requests} rounds")
            before, t0 = process_cpu(), time.perf_counter()
            times = interleaved(client, targets, args.requests, args.warmup)
            split = cpu_split(before, process_cpu(), {server.pid, os.getpid()}, {url.database})
            busy = {k: round(v / (time.perf_counter() - t0) * 100) for k, v in split.items()}
            log(f"CPU of a core during the rounds: postgres {busy['postgres']}%, other processes {busy['other']}%")
            log(f"CPU blocks: {args.cpu_requests} requests per target")
            cpu = cpu_blocks(client, targets, server, url.database, args.cpu_requests)
        server.stop()
        log(f"in process: statements, CPU per request and a profile of each page ({args.profile_requests} requests)")
        inside = in_process(url, keys, targets, args.profile_requests, args.profile_top)
        log("EXPLAIN ANALYZE of every statement each page runs")
        plans = explain(url, {label: page["statements"] for label, page in inside.items()})
        for label, page in inside.items():
            plans[label]["app_cpu_ms"] = page["cpu_ms"]
            plans[label]["connections"] = page["connections"]
        profiles = {label: page["profile"] for label, page in inside.items() if page["profile"]}
        summary = summarize(times)
        table_text = table(summary, targets, cpu)
        result = {"benchmark": "views", "machine": info, "database": url.database, "dataset": data, "requests": args.requests, "warmup": args.warmup,
                  "cpu_requests": args.cpu_requests, "targets": targets, "history": history_line, "latency": summary,
                  "cpu": cpu, "cpu_pct_during_rounds": busy, "quiet_before_rounds_pct": quiet, "verdicts": verdicts(summary),
                  "explain": plans, "profiles": profiles}
        out = Path(args.out)
        write_json(out.with_suffix(".json"), result)
        out.with_suffix(".md").write_text(markdown(result, table_text))
        print()
        print(table_text)
        print()
        print(history_line)
        for line in result["verdicts"]:
            print(line)
        print("\nin process, per page: app CPU ms per request, pool checkouts; inside PostgreSQL: statements, execution ms, slowest ms")
        for label, e in plans.items():
            print(f"  {label:<14} {e['app_cpu_ms']:>7} {e['connections']:>3} {e['statements']:>4} {e['execution_ms']:>8} {e['slowest_ms']:>8}  "
                  f"{e['slowest_statement'][:100]}")
        log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def store_key(url, keys: str) -> None:
    """A kept database carries its own HUB_SECRET_KEYS value, for --reuse (bench data only)."""
    import psycopg

    with psycopg.connect(plain(url), autocommit=True) as pg:
        pg.execute("CREATE TABLE bench_views_key (value text NOT NULL)")
        pg.execute("INSERT INTO bench_views_key VALUES (%s)", (keys,))


def stored_key(url) -> str:
    import psycopg

    with psycopg.connect(plain(url)) as pg:
        return pg.execute("SELECT value FROM bench_views_key").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
