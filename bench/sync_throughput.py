"""Pull-sync throughput: the hub's QuickBooks import beside a plain floor and dlt, on the same
emulator and PostgreSQL.

    .venv/bin/python bench/sync_throughput.py                   # 100,000 invoices + 10,000 vendors, then 10,000 invoices
    .venv/bin/python bench/sync_throughput.py --quick           # smoke run: 2,000 invoices, 500 vendors, then 500 invoices
    .venv/bin/python bench/sync_throughput.py --invoices 20000 --vendors 2000 --small 0 --skip-dlt

For each size, one QuickBooks emulator (emulators/quickbooks.py) runs in its own process
(uvicorn, one worker) with its per-realm rate limits (500/min, 10 concurrent) switched off
and no injected latency or faults, for every contender alike. Each contender then runs in its
own fresh subprocess, into its own fresh database on the same PostgreSQL server, one after
another (floor, dlt, hub: the hub last because it edits 1% of the invoices):

- `floor`: plain httpx (one keep-alive client), query pages of 1000 (`SELECT * FROM Invoice
  ORDERBY Id STARTPOSITION n MAXRESULTS 1000`), each page COPYed (psycopg 3) into temp staging
  tables (invoice headers, and lines as a child table), then one DELETE of vanished lines and
  one `INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO UPDATE` per table, one transaction;
- `dlt`: a `@dlt.resource(primary_key="Id", write_disposition="merge")` yielding the same
  pages (httpx) into dlt's postgres destination; nested `Line` becomes the child table
  `invoices__line` (dlt's default). dlt's default settings (only its anonymous telemetry is
  switched off);
- `hub`: the real code path, `hub.sync.engine.sync_stream` with the hub's own QuickBooks
  client (token refresh, client-side 500/min budget, retries), on a migrated database with a
  company and a QuickBooks integration connected to the emulator: `quickbooks/vendors` and
  `quickbooks/accounts` (reported apart), `quickbooks/invoices` full, then 1% of the invoices
  edited through the emulator (a line amount and the note: GET the invoice, POST
  /_emulator/mutate) and `quickbooks/invoices` again (incremental, CDC).

Each contender also loads the vendors and the chart of accounts first (the "reference"
phase), so the three do the same work; the headline figures are those of the invoices. Wall
times are measured inside the contender around each phase (not interpreter start-up or
imports); peak RSS is the contender process's VmHWM (its own high-water mark). CPU seconds of the contender, the
emulator and PostgreSQL (backends of the contender's database and background processes) are
recorded over each contender's run. Row counts are checked against the emulator's data.

When the hub misses a throughput target (or with --profile), one more hub run at the main
size under cProfile lists the top functions by cumulative time (not part of the figures).

Writes bench/results/sync_throughput.json and .md. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, ROOT, Child, cpu_seconds, cpu_split, fresh_database, free_port, log, machine,  # noqa: E402
                     plain, process_cpu, signals_as_exceptions, wait_http, write_json)
from webhook_ingest import wait_quiet  # noqa: E402

REALM = "9130350000000001"
CLIENT_ID, CLIENT_SECRET = "hub-demo", "hub-demo-secret"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
PAGE = 1000
BILL = "Bill"  # QuickBooks keeps vendor bills (the hub's payable invoices) in Bill
CONTENDERS = ("floor", "dlt", "hub")
TARGETS = {"hub_vs_dlt": 3.0, "hub_vs_floor": 0.60, "incremental_pct": 5.0, "rss_mb": 250.0, "rss_ratio": 1.5}


# ================================================================================================
# children
# ================================================================================================
def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, the high-water mark of its own address space. Not
    `ru_maxrss`: Linux carries that over from the forking parent across exec, so a child of
    a big parent would report at least the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return round(r.ru_utime + r.ru_stime, 2)


def _say(role: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]   {role}: {message}", flush=True)


def _qbo_pages(http, base: str, token: str, entity: str, where: str | None = None):
    """Query pages of `entity` by Id, 1000 at a time, as the QuickBooks API is read."""
    clause = f" WHERE {where}" if where else ""
    url = f"{base}/v3/company/{REALM}/query"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/text"}
    position = 1
    while True:
        response = http.post(url, params={"minorversion": "75"}, headers=headers,
                             content=f"SELECT * FROM {entity}{clause} ORDERBY Id STARTPOSITION {position} MAXRESULTS {PAGE}".encode())
        response.raise_for_status()
        rows = response.json()["QueryResponse"].get(entity, [])
        if rows:
            yield rows
        if len(rows) < PAGE:
            return
        position += PAGE


def _progress(role: str, what: str, done: int, total: int, t0: float, every: int) -> None:
    if total and (done // PAGE) % every == 0:
        _say(role, f"{what} {done:,}/{total:,} ({done / max(1e-9, time.perf_counter() - t0):,.0f}/s)")


# ---- emulator ----------------------------------------------------------------------------------
def child_emulator(args: argparse.Namespace) -> int:
    """Serve one QuickBooks emulator in the foreground until SIGTERM; limits off."""
    from emulators.quickbooks import create_emulator
    from emulators.serve import serve

    emulator = create_emulator(vendors=args.vendors, bills=args.invoices, invoices=0, accounts=args.accounts, realm_id=REALM,
                               clients={CLIENT_ID: CLIENT_SECRET})
    emulator.minute_window.limit = 10**9  # 500/min per realm: off for every contender alike
    emulator.concurrency.limit = 10**6  # 10 in flight per realm: off
    emulator.core.faults.reset()  # no latency, no injected errors (the default)
    with signals_as_exceptions():
        try:
            with serve(emulator.app, port=args.port) as url:
                print(f"quickbooks emulator at {url}: {args.invoices} invoices, {args.vendors} vendors, {args.accounts} accounts",
                      flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            return 0


# ---- fetch (calibration) ----------------------------------------------------------------------
def child_fetch(cfg: dict) -> dict:
    """Only fetch and parse the pages (no database): how fast the emulator serves them."""
    import httpx

    role, out = "fetch", {"phases": {}}
    with httpx.Client(timeout=60) as http:
        for phase, entities in (("reference", ("Vendor", "Account")), ("invoices_full", (BILL,))):
            t0, n = time.perf_counter(), 0
            for entity in entities:
                where = "Active IN (true, false)" if entity != BILL else None
                for page in _qbo_pages(http, cfg["base_url"], cfg["access_token"], entity, where):
                    n += len(page)
            out["phases"][phase] = {"wall_s": time.perf_counter() - t0, "records": n, "peak_rss_mb": _peak_rss_mb()}
            _say(role, f"{phase}: {n:,} records in {out['phases'][phase]['wall_s']:.2f} s")
    return out


# ---- floor -------------------------------------------------------------------------------------
FLOOR_DDL = """
CREATE TABLE floor_vendor (id text PRIMARY KEY, sync_token text, display_name text, company_name text, email text,
    phone text, tax_id text, address jsonb, active boolean, last_updated timestamptz);
CREATE TABLE floor_account (id text PRIMARY KEY, sync_token text, name text, account_type text, acct_num text,
    active boolean, last_updated timestamptz);
CREATE TABLE floor_invoice (id text PRIMARY KEY, sync_token text, doc_number text, txn_date date, due_date date,
    vendor_id text, customer_id text, total numeric(14,2), balance numeric(14,2), currency text, private_note text,
    last_updated timestamptz);
CREATE TABLE floor_invoice_line (invoice_id text NOT NULL REFERENCES floor_invoice (id) ON DELETE CASCADE,
    line_no integer NOT NULL, line_id text, detail_type text, description text, amount numeric(14,2), account_id text,
    PRIMARY KEY (invoice_id, line_no));
"""
FLOOR_COLUMNS = {
    "floor_vendor": ("id", "sync_token", "display_name", "company_name", "email", "phone", "tax_id", "address", "active",
                     "last_updated"),
    "floor_account": ("id", "sync_token", "name", "account_type", "acct_num", "active", "last_updated"),
    "floor_invoice": ("id", "sync_token", "doc_number", "txn_date", "due_date", "vendor_id", "customer_id", "total", "balance",
                      "currency", "private_note", "last_updated"),
    "floor_invoice_line": ("invoice_id", "line_no", "line_id", "detail_type", "description", "amount", "account_id"),
}
FLOOR_KEYS = {"floor_vendor": ("id",), "floor_account": ("id",), "floor_invoice": ("id",),
              "floor_invoice_line": ("invoice_id", "line_no")}


def _ref(value: Any) -> str | None:
    return value.get("value") if isinstance(value, dict) else None


def _floor_rows(entity: str, r: dict) -> tuple:
    updated = (r.get("MetaData") or {}).get("LastUpdatedTime")
    if entity == "Vendor":
        return (r["Id"], r.get("SyncToken"), r.get("DisplayName"), r.get("CompanyName"), (r.get("PrimaryEmailAddr") or {}).get("Address"),
                (r.get("PrimaryPhone") or {}).get("FreeFormNumber"), r.get("TaxIdentifier"), json.dumps(r.get("BillAddr") or {}),
                r.get("Active", True) is not False, updated)
    if entity == "Account":
        return (r["Id"], r.get("SyncToken"), r.get("Name"), r.get("AccountType"), r.get("AcctNum"), r.get("Active", True) is not False,
                updated)
    return (r["Id"], r.get("SyncToken"), r.get("DocNumber"), r.get("TxnDate"), r.get("DueDate"), _ref(r.get("VendorRef")),
            _ref(r.get("CustomerRef")), r.get("TotalAmt"), r.get("Balance"), _ref(r.get("CurrencyRef")), r.get("PrivateNote"), updated)


def _floor_line(invoice_id: str, n: int, line: dict) -> tuple:
    kind = line.get("DetailType")
    detail = line.get(kind) if isinstance(line.get(kind), dict) else {}
    return (invoice_id, line.get("LineNum") or n, line.get("Id"), kind, line.get("Description"), line.get("Amount"),
            _ref(detail.get("AccountRef")))


def _floor_merge(cur, table: str) -> int:
    cols, keys = FLOOR_COLUMNS[table], FLOOR_KEYS[table]
    listed = ", ".join(cols)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
    cur.execute(f"INSERT INTO {table} ({listed}) SELECT DISTINCT ON ({', '.join(keys)}) {listed} FROM stg_{table} "
                f"ORDER BY {', '.join(keys)}, seq DESC ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")
    return cur.rowcount


def _floor_load(conn, http, cfg: dict, entity: str, tables: tuple[str, ...], total: int, role: str) -> int:
    """Fetch every page of `entity`, COPY each into staging, then merge: one transaction."""
    base, token = cfg["base_url"], cfg["access_token"]
    where = "Active IN (true, false)" if entity in ("Vendor", "Account") else None
    done, seq, t0 = 0, 0, time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        for table in tables:
            cur.execute(f"CREATE TEMP TABLE stg_{table} (seq bigint, LIKE {table}) ON COMMIT DROP")  # no keys, no indexes
        main, lines = tables[0], (tables[1] if len(tables) > 1 else None)
        copy_main = f"COPY stg_{main} (seq, {', '.join(FLOOR_COLUMNS[main])}) FROM STDIN"
        copy_lines = f"COPY stg_{lines} (seq, {', '.join(FLOOR_COLUMNS[lines])}) FROM STDIN" if lines else ""
        for page in _qbo_pages(http, base, token, entity, where):
            seq += 1
            with cur.copy(copy_main) as copy:
                for r in page:
                    copy.write_row((seq, *_floor_rows(entity, r)))
            if lines:
                with cur.copy(copy_lines) as copy:
                    for r in page:
                        for n, line in enumerate(r.get("Line") or (), 1):
                            copy.write_row((seq, *_floor_line(r["Id"], n, line)))
            done += len(page)
            _progress(role, f"{entity} fetched + copied", done, total, t0, 20)
        if lines:  # lines of the staged invoices that are gone remotely
            cur.execute(f"DELETE FROM {lines} l USING (SELECT DISTINCT id FROM stg_{main}) s WHERE l.invoice_id = s.id AND NOT EXISTS "
                        f"(SELECT 1 FROM stg_{lines} x WHERE x.invoice_id = l.invoice_id AND x.line_no = l.line_no)")
        for table in tables:
            _floor_merge(cur, table)
    return done


def child_floor(cfg: dict) -> dict:
    import httpx
    import psycopg

    role = "floor"
    out: dict[str, Any] = {"phases": {}}
    with psycopg.connect(cfg["dsn"]) as conn, httpx.Client(timeout=60) as http:
        conn.execute(FLOOR_DDL)
        conn.commit()
        t0 = time.perf_counter()
        n_vendors = _floor_load(conn, http, cfg, "Vendor", ("floor_vendor",), cfg["vendors"], role)
        n_accounts = _floor_load(conn, http, cfg, "Account", ("floor_account",), cfg["accounts"], role)
        out["phases"]["reference"] = {"wall_s": time.perf_counter() - t0, "records": n_vendors + n_accounts,
                                      "vendors": n_vendors, "accounts": n_accounts, "peak_rss_mb": _peak_rss_mb()}
        _say(role, f"reference done: {n_vendors:,} vendors, {n_accounts} accounts in {out['phases']['reference']['wall_s']:.1f} s")
        t0 = time.perf_counter()
        n = _floor_load(conn, http, cfg, BILL, ("floor_invoice", "floor_invoice_line"), cfg["invoices"], role)
        out["phases"]["invoices_full"] = {"wall_s": time.perf_counter() - t0, "records": n, "peak_rss_mb": _peak_rss_mb()}
    return out


# ---- dlt ---------------------------------------------------------------------------------------
def child_dlt(cfg: dict) -> dict:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no anonymous telemetry calls (not a performance setting)
    import dlt
    import httpx

    role = "dlt"
    base, token = cfg["base_url"], cfg["access_token"]
    http = httpx.Client(timeout=60)
    counters = {"Vendor": 0, "Account": 0, BILL: 0}
    totals = {"Vendor": cfg["vendors"], "Account": cfg["accounts"], BILL: cfg["invoices"]}

    def pages(entity: str):
        where = "Active IN (true, false)" if entity in ("Vendor", "Account") else None
        t0 = time.perf_counter()
        for page in _qbo_pages(http, base, token, entity, where):
            counters[entity] += len(page)
            _progress(role, f"{entity} extracted", counters[entity], totals[entity], t0, 20)
            yield page

    @dlt.resource(name="vendors", primary_key="Id", write_disposition="merge")
    def vendors():
        yield from pages("Vendor")

    @dlt.resource(name="accounts", primary_key="Id", write_disposition="merge")
    def accounts():
        yield from pages("Account")

    @dlt.resource(name="invoices", primary_key="Id", write_disposition="merge")
    def invoices():
        yield from pages(BILL)

    out: dict[str, Any] = {"phases": {}, "dlt_version": dlt.__version__}
    with tempfile.TemporaryDirectory(prefix="bench_dlt_") as pipelines_dir:
        pipeline = dlt.pipeline(pipeline_name="bench_qbo", pipelines_dir=pipelines_dir, dataset_name="qbo",
                                destination=dlt.destinations.postgres(credentials=cfg["dsn"]))
        t0 = time.perf_counter()
        pipeline.run([vendors(), accounts()])
        out["phases"]["reference"] = {"wall_s": time.perf_counter() - t0, "records": counters["Vendor"] + counters["Account"],
                                      "vendors": counters["Vendor"], "accounts": counters["Account"], "peak_rss_mb": _peak_rss_mb()}
        _say(role, f"reference done: {counters['Vendor']:,} vendors, {counters['Account']} accounts in "
                   f"{out['phases']['reference']['wall_s']:.1f} s")
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        # pipeline.run = extract + normalize + load; timed step by step (same calls run() makes)
        pipeline.extract(invoices())
        stages["extract_s"] = time.perf_counter() - t0
        _say(role, f"invoices extracted in {stages['extract_s']:.1f} s; normalizing")
        t1 = time.perf_counter()
        pipeline.normalize()
        stages["normalize_s"] = time.perf_counter() - t1
        _say(role, f"normalized in {stages['normalize_s']:.1f} s; loading")
        t1 = time.perf_counter()
        pipeline.load()
        stages["load_s"] = time.perf_counter() - t1
        out["phases"]["invoices_full"] = {"wall_s": time.perf_counter() - t0, "records": counters[BILL],
                                          "peak_rss_mb": _peak_rss_mb(), **{k: round(v, 2) for k, v in stages.items()}}
        with pipeline.sql_client() as client:
            out["tables"] = sorted(r[0] for r in client.execute_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'qbo'"))
    http.close()
    return out


# ---- hub ---------------------------------------------------------------------------------------
def _mutate_invoices(cfg: dict, role: str) -> dict:
    """Edit 1% of the invoices as a QuickBooks user would: read each, change its first line's
    amount and its note, POST /_emulator/mutate. Not timed as part of any sync."""
    import httpx

    base, ids = cfg["base_url"], cfg["mutate_ids"]
    headers = {"Authorization": f"Bearer {cfg['access_token']}", "Accept": "application/json"}
    t0 = time.perf_counter()
    with httpx.Client(timeout=60) as http:
        for n, i in enumerate(ids, 1):
            invoice = http.get(f"{base}/v3/company/{REALM}/bill/{i}", headers=headers).raise_for_status().json()[BILL]
            lines = invoice["Line"]
            lines[0]["Amount"] = round(lines[0]["Amount"] + 1.25, 2)
            body = {"op": "update", "entity": BILL, "id": str(i), "fields": {"Line": lines, "PrivateNote": f"bench edit {n}"}}
            http.post(f"{base}/_emulator/mutate", json=body).raise_for_status()
    return {"changed": len(ids), "wall_s": round(time.perf_counter() - t0, 2)}


def child_hub(cfg: dict) -> dict:
    from hub import db
    from hub.crypto import Keyring
    from hub.providers import registry
    from hub.sync.engine import sync_stream

    role = "hub"
    engine = db.engine(cfg["dsn"])
    keyring = Keyring.from_env()
    iid = cfg["integration_id"]
    out: dict[str, Any] = {"phases": {}, "stream_results": {}}

    def run(key: str, label: str) -> dict:
        profiler = None
        if cfg.get("profile_dir") and label in ("vendors", "invoices_full"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        result = sync_stream(engine, keyring, iid, registry.stream(key))
        wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(cfg["profile_dir"]) / f"{label}.prof"))
        meta = result.as_metadata()
        out["stream_results"][label] = meta
        _say(role, f"{key} {result.mode}: {result.counts.created:,} created, {result.counts.updated:,} updated, "
                   f"{result.pages} pages, {wall:.2f} s ({meta.get('api_calls')} API calls, rate wait {meta.get('rate_wait_s')} s)")
        return {"wall_s": wall, "records": result.counts.created + result.counts.updated + result.counts.deleted,
                "pages": result.pages, "mode": result.mode, "peak_rss_mb": _peak_rss_mb()}

    vendors = run("quickbooks/vendors", "vendors")
    accounts = run("quickbooks/accounts", "accounts")
    out["phases"]["reference"] = {"wall_s": vendors["wall_s"] + accounts["wall_s"], "records": vendors["records"] + accounts["records"],
                                  "vendors": vendors["records"], "accounts": accounts["records"], "vendors_s": vendors["wall_s"],
                                  "accounts_s": accounts["wall_s"], "peak_rss_mb": _peak_rss_mb()}
    key = cfg["invoice_stream"]
    if key not in {s.key for s in registry.streams()}:
        out["missing_stream"] = key
        _say(role, f"stream {key} is not declared by any provider spec (hub/providers/registry.py); no invoice figures")
        return out

    out["phases"]["invoices_full"] = run(key, "invoices_full")
    if cfg["mutate_ids"]:
        _say(role, f"editing {len(cfg['mutate_ids']):,} invoices (1%) through the emulator")
        out["mutation"] = _mutate_invoices(cfg, role)
        out["phases"]["invoices_incremental"] = run(key, "invoices_incremental")
    engine.dispose()
    return out


def child_main(role: str, config_path: str, result_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    started = time.perf_counter()
    fn = {"fetch": child_fetch, "floor": child_floor, "dlt": child_dlt, "hub": child_hub}[role]
    out = fn(cfg)
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.update(peak_rss_mb=_peak_rss_mb(), children_peak_rss_mb=round(r.ru_maxrss / 1024, 1), cpu_s=_cpu_s(),
               children_cpu_s=round(r.ru_utime + r.ru_stime, 2), child_wall_s=round(time.perf_counter() - started, 2))
    for phase in out.get("phases", {}).values():
        phase["wall_s"] = round(phase["wall_s"], 3)
        if phase.get("records") and phase["wall_s"] > 0:
            phase["records_per_s"] = round(phase["records"] / phase["wall_s"], 1)
    Path(result_path).write_text(json.dumps(out))
    return 0


# ================================================================================================
# orchestrator
# ================================================================================================
def source_digests() -> dict[str, str]:
    """Which version of the hub's sync code was measured (the files change under development)."""
    import hashlib

    out = {}
    for rel in ("hub/sync/engine.py", "hub/sync/stream_spec.py", "hub/providers/quickbooks/streams.py", "hub/sync/invoices.py",
                "hub/sync/vendors.py", "hub/providers/quickbooks/client.py", "hub/providers/transport.py"):
        path = ROOT / rel
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "missing"
    return out


def expected_counts(invoices: int, seed: int = 0) -> dict[str, int]:
    """Invoice lines the emulator generates (1 to 3 per invoice, a pure function of the seed)."""
    from emulators.quickbooks import _h

    return {"invoices": invoices, "lines": sum(1 + (_h(seed, 4, i) >> 34) % 3 for i in range(1, invoices + 1))}


def start_emulator(invoices: int, vendors: int, accounts: int, logdir: Path) -> tuple[Child, str]:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "emulator", "--port", str(port),
            "--invoices", str(invoices), "--vendors", str(vendors), "--accounts", str(accounts)]
    child = Child("emulator", argv, dict(os.environ), logdir / f"emulator_{invoices}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_emulator/health", child, 60, "the QuickBooks emulator")
    return child, url


def grant(url: str) -> str:
    """A refresh token from the emulator's OAuth, as if a user had connected the company."""
    import httpx

    r = httpx.post(url + "/_emulator/oauth/grant", json={"client_id": CLIENT_ID, "subject": {"realmId": REALM}}, timeout=30)
    return r.raise_for_status().json()["refresh_token"]


def access_token(url: str) -> str:
    import httpx

    r = httpx.post(url + TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": grant(url)},
                   auth=(CLIENT_ID, CLIENT_SECRET), timeout=30)
    return r.raise_for_status().json()["access_token"]


def setup_hub(url, emulator_url: str) -> tuple[str, int]:
    """Migrate; a company and its QuickBooks integration pointed at the emulator, connected with
    a refresh token the emulator issued. Returns (HUB_SECRET_KEYS value, integration id)."""
    from hub import db, migrate
    from hub import integrations as store
    from hub.crypto import Keyring, generate_key

    migrate.upgrade(url)
    key = generate_key()
    keyring = Keyring([key])
    engine = db.engine(url)
    with engine.begin() as conn:
        company = store.create_company(conn, "Bench Builders")
        iid = store.add_integration(conn, keyring, company_id=company, provider="quickbooks", name="QuickBooks (bench)",
                                    config={"realm_id": REALM, "base_url": emulator_url, "token_url": emulator_url + TOKEN_PATH},
                                    credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                 "refresh_token": grant(emulator_url)}, active=True)
    engine.dispose()
    return key, iid


def stored_counts(dsn: str, contender: str) -> dict[str, int]:
    import psycopg

    queries = {
        "floor": ("SELECT count(*) FROM floor_vendor", "SELECT count(*) FROM floor_invoice", "SELECT count(*) FROM floor_invoice_line"),
        "dlt": ("SELECT count(*) FROM qbo.vendors", "SELECT count(*) FROM qbo.invoices", "SELECT count(*) FROM qbo.invoices__line"),
        "hub": ("SELECT count(*) FROM vendor", "SELECT count(*) FROM invoice", "SELECT count(*) FROM invoice_line"),
    }[contender]
    out = {}
    with psycopg.connect(dsn) as conn:
        for name, q in zip(("vendors", "invoices", "lines"), queries):
            try:
                out[name] = conn.execute(q).fetchone()[0]
            except psycopg.Error:
                conn.rollback()
                out[name] = None
    return out


def run_child(role: str, cfg: dict, env: dict[str, str], logdir: Path, tag: str, timeout: float, database: str,
              emulator_pid: int) -> dict:
    """One contender in its own process (own process group); its log is echoed as it runs.
    CPU of every process is read once a second, so a PostgreSQL backend that exits with the
    contender still counts (up to its last reading)."""
    config_path, result_path, log_path = logdir / f"{tag}.config.json", logdir / f"{tag}.result.json", logdir / f"{tag}.log"
    config_path.write_text(json.dumps(cfg))
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", role, "--config", str(config_path), "--result", str(result_path)]
    before, emu_before = process_cpu(), cpu_seconds(emulator_pid)
    seen = dict(before)  # pid -> last reading; backends that exit with the contender's connections keep their last one
    t0 = last_snap = time.perf_counter()
    child = Child(role, argv, env, log_path)
    offset = 0
    try:
        while True:
            done = not child.alive()
            if time.perf_counter() - last_snap >= 1.0:
                seen.update(process_cpu())
                last_snap = time.perf_counter()
            text = log_path.read_bytes()[offset:].decode(errors="replace") if log_path.exists() else ""
            if text:
                cut = len(text) if done else text.rfind("\n") + 1
                if cut > 0:
                    sys.stdout.write(text[:cut])
                    sys.stdout.flush()
                    offset += len(text[:cut].encode())
            if done:
                break
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{role} did not finish within {timeout:.0f} s:\n{child.tail()}")
            time.sleep(0.5)
    finally:
        child.stop()
    lifetime = time.perf_counter() - t0
    seen.update(process_cpu())
    after, emu_after = seen, cpu_seconds(emulator_pid)
    if child.proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{role} exited with {child.proc.returncode}:\n{child.tail(40)}")
    out = json.loads(result_path.read_text())
    split = cpu_split(before, after, {child.pid, emulator_pid, os.getpid()}, {database})
    out["process_lifetime_s"] = round(lifetime, 2)
    out["cpu_over_run_s"] = {"contender": out.get("cpu_s"), "emulator": round(emu_after - emu_before, 2),
                             "postgres": round(split["postgres"], 2), "other": round(split["other"], 2)}
    return out


def run_size(size: int, args, logdir: Path, expected: dict, contenders: list[str], profile_path: Path | None = None,
             only_profile: bool = False) -> dict:
    """Start an emulator with `size` invoices and run each contender against it."""
    log(f"=== {size:,} invoices, {args.vendors:,} vendors, {args.accounts} accounts: starting the emulator")
    emulator, emulator_url = start_emulator(size, args.vendors, args.accounts, logdir)
    results: dict[str, dict] = {}
    timeout = max(600.0, size / 100.0)  # 100 records/s would be a failure
    try:
        for contender in contenders:
            with fresh_database(f"bench_sync_{contender}") as url:
                dsn = plain(url)
                env = dict(os.environ)
                cfg = {"base_url": emulator_url, "dsn": dsn, "invoices": size, "vendors": args.vendors, "accounts": args.accounts}
                if contender in ("fetch", "floor", "dlt"):
                    cfg["access_token"] = access_token(emulator_url)
                    if contender == "dlt" and not url.password:  # dlt insists on a password; trust auth ignores it
                        cfg["dsn"] = plain(url.set(password="unused"))
                else:
                    keys, iid = setup_hub(url, emulator_url)
                    env["HUB_SECRET_KEYS"] = keys
                    env["HUB_DATABASE_URL"] = dsn
                    cfg.update(integration_id=iid, invoice_stream=args.hub_stream, access_token=access_token(emulator_url),
                               mutate_ids=list(range(1, size + 1, 100)) if not only_profile else [],  # 1%, spread evenly
                               profile_dir=str(profile_path) if profile_path else None)
                label = "hub (cProfile)" if only_profile else contender
                log(f"--- {label}: {size:,} invoices into database {url.database}")
                busy = None
                if args.quiet_wait > 0 and args.quiet_left > 0:
                    t0 = time.monotonic()
                    busy = wait_quiet(args.quiet_pct, min(args.quiet_wait, args.quiet_left))
                    args.quiet_left -= max(0.0, time.monotonic() - t0 - 1.0)
                result = run_child(contender, cfg, env, logdir, f"{contender}_{size}{'_profile' if only_profile else ''}",
                                   timeout, url.database, emulator.pid)
                result["machine_busy_before_pct"] = busy
                results[contender] = result
                if contender == "fetch":
                    inv = result["phases"]["invoices_full"]
                    log(f"--- fetch only: {inv['records_per_s']:,.0f} invoices/s, {inv['wall_s']:.2f} s; CPU s {result['cpu_over_run_s']}")
                    continue
                result["stored"] = stored_counts(dsn, contender)
                result["stored_ok"] = (result["stored"].get("invoices") == expected["invoices"]
                                       and result["stored"].get("lines") == expected["lines"]
                                       and result["stored"].get("vendors") == args.vendors)
                if contender == "hub" and "invoices_full" not in result.get("phases", {}):
                    result["stored_ok"] = None
                results[contender] = result
                inv = result.get("phases", {}).get("invoices_full")
                log(f"--- {label} done: " + (f"{inv['records_per_s']:,.0f} invoices/s, {inv['wall_s']:.2f} s; " if inv else "")
                    + f"peak RSS {result['peak_rss_mb']} MB; stored {result['stored']} "
                    f"(expected {expected['invoices']:,} invoices, {expected['lines']:,} lines, {args.vendors:,} vendors) "
                    f"-> {'ok' if result['stored_ok'] else 'MISMATCH' if result['stored_ok'] is False else 'n/a'}; "
                    f"CPU s {result['cpu_over_run_s']}")
                if not emulator.alive():
                    raise RuntimeError(f"the emulator died:\n{emulator.tail()}")
    finally:
        emulator.stop()
    return results


# ---- figures and verdicts -----------------------------------------------------------------------
def _inv(results: dict, size: int, contender: str) -> dict | None:
    return results.get(str(size), {}).get(contender, {}).get("phases", {}).get("invoices_full")


def summarize(results: dict, main: int, small: int | None) -> dict:
    s: dict[str, Any] = {}
    floor, dlt, hub = (_inv(results, main, c) for c in ("floor", "dlt", "hub"))
    if hub and floor:
        s["hub_vs_floor"] = round(hub["records_per_s"] / floor["records_per_s"], 3)
    if hub and dlt:
        s["hub_vs_dlt"] = round(hub["records_per_s"] / dlt["records_per_s"], 2)
    hub_main = results.get(str(main), {}).get("hub", {})
    incr = hub_main.get("phases", {}).get("invoices_incremental")
    if hub and incr:
        s["incremental_pct"] = round(100 * incr["wall_s"] / hub["wall_s"], 2)
        s["incremental_s"] = incr["wall_s"]
    if hub_main.get("peak_rss_mb"):
        s["hub_rss_mb"] = hub_main["peak_rss_mb"]
    hub_small = results.get(str(small), {}).get("hub", {}) if small else {}
    if hub_main.get("peak_rss_mb") and hub_small.get("peak_rss_mb") and hub_small.get("phases", {}).get("invoices_full"):
        s["rss_ratio"] = round(hub_main["peak_rss_mb"] / hub_small["peak_rss_mb"], 2)
    if small:
        s["rss_mb_by_contender"] = {c: [results.get(str(main), {}).get(c, {}).get("peak_rss_mb"),
                                        results.get(str(small), {}).get(c, {}).get("peak_rss_mb")]
                                    for c in ("fetch", *CONTENDERS) if c in results.get(str(main), {})}
    return s


def rss_line(s: dict, main: int, small: int | None) -> str:
    if not s.get("rss_mb_by_contender"):
        return ""
    return f"Peak RSS MB at {main:,} / {small:,} invoices: " + "; ".join(
        f"{c} {a} / {b}" + (f" ({a / b:.2f}x)" if a and b else "") for c, (a, b) in s["rss_mb_by_contender"].items()) + "."


def verdicts(s: dict, main: int, small: int | None) -> list[dict]:
    def v(name, value, ok, text):
        return {"target": name, "value": value, "met": ok, "text": text}

    out = []
    x = s.get("hub_vs_dlt")
    out.append(v("hub >= 3x dlt", x, None if x is None else x >= TARGETS["hub_vs_dlt"],
                 f"hub/dlt = {x}x" if x is not None else "not measured (dlt skipped or hub stream missing)"))
    x = s.get("hub_vs_floor")
    out.append(v("hub >= 60% of floor", x, None if x is None else x >= TARGETS["hub_vs_floor"],
                 f"hub/floor = {x * 100:.0f}%" if x is not None else "not measured"))
    x = s.get("incremental_pct")
    out.append(v("incremental (1% changed) < 5% of full", x, None if x is None else x < TARGETS["incremental_pct"],
                 f"incremental = {x}% of the full sync ({s.get('incremental_s')} s)" if x is not None else "not measured"))
    x = s.get("hub_rss_mb")
    out.append(v(f"hub peak RSS < 250 MB at {main:,}", x, None if x is None else x < TARGETS["rss_mb"],
                 f"hub peak RSS {x} MB" if x is not None else "not measured"))
    x = s.get("rss_ratio")
    out.append(v(f"hub peak RSS {main:,} / {small or 0:,} <= 1.5", x, None if x is None else x <= TARGETS["rss_ratio"],
                 f"ratio {x}" if x is not None else "not measured (no second size)"))
    return out


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "n/a"}[met]


def table(results: dict, sizes: list[int]) -> str:
    rows = ["| size | contender | phase | records | wall s | records/s | peak RSS MB | contender CPU s | emulator CPU s | PostgreSQL CPU s | other CPU s |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        for contender in ("fetch", *CONTENDERS):
            r = results.get(str(size), {}).get(contender)
            if not r:
                continue
            cpu = r.get("cpu_over_run_s", {})
            first = True
            for phase in ("reference", "invoices_full", "invoices_incremental"):
                p = r.get("phases", {}).get(phase)
                if not p:
                    continue
                tail = (f"{r['peak_rss_mb']} | {cpu.get('contender')} | {cpu.get('emulator')} | {cpu.get('postgres')} | "
                        f"{cpu.get('other')} |" if first else " | | | | |")
                rows.append(f"| {size:,} | {contender} | {phase.replace('_', ' ')} | {p['records']:,} | {p['wall_s']:.2f} | "
                            f"{p.get('records_per_s', 0):,.0f} | {tail}")
                first = False
    return "\n".join(rows)


def profile_summary(path: Path, limit: int = 30) -> list[dict]:
    import pstats

    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(filename)}:{line}({name})", "calls": nc, "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)})
    by_cum = sorted(rows, key=lambda r: r["cumtime_s"], reverse=True)[:limit]
    by_tot = sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[:limit]
    return [{"by": "cumulative", "rows": by_cum}, {"by": "own time", "rows": by_tot}]


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def write_markdown(path: Path, data: dict) -> None:
    m = data["machine"]
    lines = [
        "# Sync throughput",
        "",
        f"`{data['command']}`, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m.get('postgresql')} on {m.get('pg_host')} (synchronous_commit={m.get('pg_synchronous_commit')}, "
        f"fsync={m.get('pg_fsync')}), dlt {data.get('dlt_version') or 'not run'}. Emulator, contender and PostgreSQL share these "
        f"{m['nproc']} CPUs; the emulator runs in its own process with its rate limits off.",
        "",
        "Each contender: its own process and database; reference = vendors + accounts; invoices = all invoices with their "
        "lines (a child table). Wall time is measured inside the contender around each phase; peak RSS is the contender's "
        "VmHWM (high-water mark) over its whole run; CPU seconds are over the contender's whole run ('other' = processes "
        "that are neither the contender, the emulator nor PostgreSQL serving it: other work on the machine).",
        "",
        table(data["results"], data["sizes"]),
        "",
        "Targets (hub at the main size):",
        "",
        *[f"- **{_mark(v['met'])}**: {v['target']}: {v['text']}" for v in data["verdicts"]],
        "",
        rss_line(data["summary"], data["settings"]["invoices"], data["settings"]["small"] or None),
        "",
    ]
    checks = [f"{int(size):,} {c}: {r['stored']} ({'ok' if r['stored_ok'] else 'MISMATCH' if r['stored_ok'] is False else 'n/a'})"
              for size, by in data["results"].items() for c, r in by.items() if "stored" in r]
    lines += ["Rows stored (expected: " + "; ".join(f"{k}: {v['invoices']:,} invoices, {v['lines']:,} lines"
                                                   for k, v in data["expected"].items()) + f", {data['settings']['vendors']:,} vendors):", "",
              *[f"- {c}" for c in checks], ""]
    for size, by in data["results"].items():
        dl = by.get("dlt", {}).get("phases", {}).get("invoices_full")
        if dl and "normalize_s" in dl:
            lines.append(f"- dlt at {int(size):,}: extract {dl['extract_s']} s, normalize {dl['normalize_s']} s, load {dl['load_s']} s.")
        hub = by.get("hub", {})
        if hub.get("mutation"):
            lines.append(f"- hub at {int(size):,}: {hub['mutation']['changed']:,} invoices edited before the incremental sync "
                         f"(took {hub['mutation']['wall_s']} s, not counted); incremental API calls: "
                         f"{hub.get('stream_results', {}).get('invoices_incremental', {}).get('api_calls')}.")
    if data.get("profile"):
        lines += ["", f"## cProfile of the hub's full invoice sync ({data['profile']['size']:,} invoices, "
                  f"{data['profile']['invoices_full_wall_s']:.1f} s under the profiler; not in the figures)", "",
                  "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
        for r in data["profile"]["top"][0]["rows"][:25]:
            lines.append(f"| `{r['function']}` | {r['calls']:,} | {r['tottime_s']} | {r['cumtime_s']} |")
        lines += ["", "By own time:", "", "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
        for r in data["profile"]["top"][1]["rows"][:20]:
            lines.append(f"| `{r['function']}` | {r['calls']:,} | {r['tottime_s']} | {r['cumtime_s']} |")
        lines += ["", f"Vendors ({data['settings']['vendors']:,}, {data['profile']['vendors_wall_s']:.1f} s under the profiler), by own time:", "",
                  "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
        for r in data["profile"]["vendors_top"][1]["rows"][:15]:
            lines.append(f"| `{r['function']}` | {r['calls']:,} | {r['tottime_s']} | {r['cumtime_s']} |")
    lines.append("")
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--invoices", type=int, default=100_000, help="invoices at the main size (default 100,000)")
    ap.add_argument("--vendors", type=int, default=10_000, help="vendors, at every size (default 10,000)")
    ap.add_argument("--accounts", type=int, default=30, help="chart of accounts size (default 30)")
    ap.add_argument("--small", type=int, default=10_000, help="invoices at the second size, for the RSS ratio (default 10,000; 0: none)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 invoices, 500 vendors, second size 500")
    ap.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    ap.add_argument("--no-fetch", action="store_true", help="leave out the fetch-only calibration run (pages fetched and parsed, no database)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated, from floor, dlt, hub")
    ap.add_argument("--hub-stream", default="quickbooks/invoices", help="the hub's invoice stream key (default quickbooks/invoices)")
    ap.add_argument("--profile", action="store_true", help="always profile the hub (default: only when it misses a throughput target)")
    ap.add_argument("--no-profile", action="store_true", help="never profile the hub")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each contender, wait up to this many seconds for other processes to leave the CPUs (0: never)")
    ap.add_argument("--quiet-budget", type=float, default=240.0, help="at most this many seconds of such waiting in all")
    ap.add_argument("--quiet-pct", type=float, default=25.0, help="'quiet' means under this %% of one core busy (default 25)")
    ap.add_argument("--out", default=str(RESULTS / "sync_throughput"), help="results path without extension")
    # internal: the processes this script starts
    ap.add_argument("--child", choices=("emulator", "fetch", *CONTENDERS), help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child == "emulator":
        return child_emulator(args)
    if args.child:
        return child_main(args.child, args.config, args.result)

    if args.quick:
        args.invoices, args.vendors, args.small = 2_000, 500, 500
    args.quiet_left = args.quiet_budget
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender {c}")
    if args.skip_dlt and "dlt" in contenders:
        contenders.remove("dlt")
    contenders = [c for c in CONTENDERS if c in contenders]  # floor, dlt, hub: the hub edits invoices, so it runs last
    if not args.no_fetch:
        contenders.insert(0, "fetch")
    sizes = [args.invoices] + ([args.small] if args.small and args.small != args.invoices else [])
    command = "python bench/sync_throughput.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    started = time.monotonic()
    dlt_version = None
    if "dlt" in contenders:
        try:
            import importlib.metadata as md

            dlt_version = md.version("dlt")
        except Exception:
            log("dlt is not installed (pip install -e '.[bench]'); leaving it out")
            contenders.remove("dlt")
    log(f"sizes {', '.join(f'{s:,}' for s in sizes)} invoices; {args.vendors:,} vendors; contenders {', '.join(contenders)}")

    results: dict[str, dict] = {}
    expected: dict[str, dict] = {}
    profile: dict | None = None
    with signals_as_exceptions(), tempfile.TemporaryDirectory(prefix="bench_sync_") as tmp:
        logdir = Path(tmp)
        with fresh_database("bench_sync_info") as info_url:
            info = machine(info_url)
        log(f"PostgreSQL {info.get('postgresql')}, {info['nproc']} CPUs, Python {info['python']}")
        for size in sizes:
            expected[str(size)] = expected_counts(size)
            results[str(size)] = run_size(size, args, logdir, expected[str(size)], contenders)
        summary = summarize(results, args.invoices, args.small or None)
        checks = verdicts(summary, args.invoices, args.small or None)
        missed = any(v["met"] is False for v in checks[:2])
        if "hub" in contenders and not args.no_profile and (args.profile or missed) and _inv(results, args.invoices, "hub"):
            log("profiling the hub's full invoice sync (cProfile, an extra run; not in the figures)")
            path = logdir / "profile"
            path.mkdir()
            profiled = run_size(args.invoices, args, logdir, expected[str(args.invoices)], ["hub"], profile_path=path, only_profile=True)
            phases = profiled["hub"]["phases"]
            profile = {"size": args.invoices, "invoices_full_wall_s": phases["invoices_full"]["wall_s"],
                       "vendors_wall_s": phases["reference"]["vendors_s"], "top": profile_summary(path / "invoices_full.prof"),
                       "vendors_top": profile_summary(path / "vendors.prof", limit=20)}

    data = {
        "benchmark": "sync_throughput",
        "command": command,
        "machine": info,
        "dlt_version": dlt_version,
        "hub_sources_sha256": source_digests(),
        "settings": {"invoices": args.invoices, "vendors": args.vendors, "accounts": args.accounts, "small": args.small,
                     "page_size": PAGE, "contenders": contenders, "hub_stream": args.hub_stream,
                     "emulator": "own process, uvicorn 1 worker; per-realm 500/min and 10-concurrent limits off; no latency or faults",
                     "hub_client": "the hub's own QuickBooks client: client-side budget 500/min per realm kept (part of the hub)"},
        "sizes": sizes,
        "expected": expected,
        "results": results,
        "summary": summary,
        "verdicts": checks,
        "profile": profile,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    write_markdown(out.with_suffix(".md"), data)
    print()
    print(table(results, sizes))
    print()
    for v in checks:
        print(f"- {_mark(v['met'])}: {v['target']}: {v['text']}")
    print(rss_line(summary, args.invoices, args.small or None))
    if profile:
        print("\nhub cProfile, top by cumulative time:")
        for r in profile["top"][0]["rows"][:20]:
            print(f"  {r['cumtime_s']:>8.2f} s cum  {r['tottime_s']:>8.2f} s own  {r['calls']:>9,}  {r['function']}")
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {data['elapsed_s']} s")
    ok = all(r.get("stored_ok") is not False for by in results.values() for r in by.values())
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; processes stopped, databases dropped")
        sys.exit(130)
