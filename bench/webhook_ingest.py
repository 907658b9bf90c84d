"""Webhook ingest: the hub's receiver beside a bare floor, on the same PostgreSQL.

    .venv/bin/python bench/webhook_ingest.py                 # defaults: 15 s per point, 1/16/64 senders
    .venv/bin/python bench/webhook_ingest.py --seconds 5 --concurrency 16 --targets hub,floor

Targets, each served by uvicorn with ONE worker in its own subprocess (own process group):
- `hub`: `hub web run` (hub.web.app:app_from_env) on a fresh migrated database with an Uber
  Eats integration and its inbound endpoint; requests are signed `orders.notification` events
  with unique event ids (each stores an inbound_event row and an external_order row).
- `floor`: bench/ingest_floor.py, FLOOR_MODE=single: HMAC check + one INSERT (autocommit) per
  request through a pool of 8 psycopg 3 connections; 200 after the commit.
- `floor-group`: the same with group commit (2 writer connections; each batch is one
  transaction, every request answered after its batch's commit).
- `hmac` (calibration only): the floor app without a database (HTTP stack + HMAC).

Load generators, in separate processes (spawned once), N senders each sending one request at a
time, back to back, for a fixed window after a warm-up; only 200s count as successes; latency
is per request (send to full response):
- `raw`: a minimal keep-alive HTTP/1.1 client on asyncio/uvloop (default for the main points);
- `httpx`: httpx.AsyncClient on uvloop, in 1 or more processes.
The calibration runs the HMAC-only endpoint with httpx in 1 and 2 processes and with the raw
client, so the results say which client is the bottleneck on this machine.

After each point the rows stored for that point are counted and must equal the 200s received
(warm-up included); after each target a read-after-ack probe checks, request by request, that
an acknowledged row is already visible from another connection (never acknowledged before the
commit). CPU of client, server, PostgreSQL (this database's backends and its background
processes), kernel threads and any other process is sampled over each window.

Writes bench/results/webhook_ingest.json and .md. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import hashlib
import hmac
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (BENCH, RESULTS, ROOT, VENV_BIN, Child, fresh_database, free_port, log, machine,  # noqa: E402
                     cpu_split, plain, process_cpu, signals_as_exceptions, system_busy, summary, wait_http, write_json)

UE_CREDENTIALS = {"client_id": "bench-ue", "client_secret": "bench-ue-secret-0000000001"}
STORE_ID = "bench-store-001"
ALL_TARGETS = ("hub", "floor", "floor-group")


# ---- load generator (runs in worker processes) ------------------------------------------------
def _body(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "event_time": int(time.time()), "event_type": "orders.notification",
                       "meta": {"user_id": STORE_ID, "resource_id": f"{event_id}-o", "status": "pos"},
                       "resource_href": f"http://127.0.0.1:9/v2/eats/order/{event_id}-o"}, separators=(",", ":")).encode()


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; parses the status line and
    Content-Length only (the servers here answer with an empty or small body)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                self.close_after = True
            elif name == "transfer-encoding":
                waiter.set_exception(RuntimeError("chunked responses are not supported by the raw client"))
                return
        if len(self.buf) < end + 4 + length:
            return
        del self.buf[: end + 4 + length]
        waiter.set_result(int(lines[0].split(" ", 2)[1]))

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self, data: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def _load(client_kind: str, url: str, secret: str, senders: int, start_at: float, warmup: float, seconds: float,
                tag: str) -> dict:
    from urllib.parse import urlsplit

    import httpx

    key = secret.encode()
    measure_from, end = start_at + warmup, start_at + warmup + seconds
    latencies: list[float] = []
    errors: dict[str, int] = {}
    ok_total = 0
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()

    async def raw_connect() -> _RawConnection:
        _, proto = await loop.create_connection(_RawConnection, parts.hostname, parts.port)
        return proto

    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(10.0)) as client:
        async def sender(s: int) -> None:
            nonlocal ok_total
            conn: _RawConnection | None = None
            n = 0
            while True:
                sent_at = time.time()
                if sent_at >= end:
                    break
                event_id = f"{tag}-{s}-{n}"
                n += 1
                body = _body(event_id)
                signature = hmac.new(key, body, hashlib.sha256).hexdigest()
                t0 = time.perf_counter()
                try:
                    if client_kind == "httpx":
                        status = (await client.post(url, content=body, headers={"Content-Type": "application/json",
                                                                                 "X-Uber-Signature": signature})).status_code
                    else:
                        if conn is None or conn.lost or conn.close_after:
                            if conn is not None and conn.transport is not None:
                                conn.transport.close()
                            conn = await raw_connect()
                        request = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                                   f"X-Uber-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
                        async with asyncio.timeout(10.0):
                            status = await conn.request(request)
                except Exception as exc:  # connection errors, timeouts: errors, never successes
                    status = type(exc).__name__
                    if conn is not None:
                        conn.lost = True
                    await asyncio.sleep(0.05)  # a refused connection must not turn into a busy loop
                elapsed = time.perf_counter() - t0
                if status == 200:
                    ok_total += 1
                if sent_at >= measure_from:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1
            if conn is not None and conn.transport is not None:
                conn.transport.close()

        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late = max(0.0, -delay)
        tasks = [asyncio.create_task(sender(s)) for s in range(senders)]
        await asyncio.sleep(max(0.0, measure_from - time.time()))
        cpu0, wall0 = time.process_time(), time.time()
        await asyncio.gather(*tasks)
        cpu1, wall1 = time.process_time(), time.time()
    return {"latencies": latencies, "errors": errors, "ok_total": ok_total, "late_start_s": late,
            "client_cpu_s": cpu1 - cpu0, "client_wall_s": wall1 - wall0}


def load_worker(client_kind: str, url: str, secret: str, senders: int, start_at: float, warmup: float, seconds: float,
                tag: str) -> dict:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_load(client_kind, url, secret, senders, start_at, warmup, seconds, tag))


def run_load(pool: cf.ProcessPoolExecutor, client_kind: str, procs: int, url: str, secret: str, concurrency: int,
             warmup: float, seconds: float, tag: str, server_pid: int | None, database: str) -> dict:
    """`concurrency` senders split over `procs` client processes; merged results."""
    procs = max(1, min(procs, concurrency))
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    start_at = time.time() + 1.5  # workers are already running; give them time to be handed their task
    t_measure0 = start_at + warmup
    futures = [pool.submit(load_worker, client_kind, url, secret, n, start_at, warmup, seconds, f"{tag}-p{i}")
               for i, n in enumerate(shares)]
    mine = {os.getpid(), *(server_pid and [server_pid] or []), *pool._processes.keys()}  # noqa: SLF001
    # sample CPU (server, PostgreSQL, other processes, whole machine) over the measured window only
    time.sleep(max(0.0, t_measure0 - time.time()))
    snap0, busy0 = process_cpu(), system_busy()[0]
    time.sleep(max(0.0, t_measure0 + seconds - time.time()))
    snap1, busy1 = process_cpu(), system_busy()[0]
    parts = [f.result(timeout=seconds + warmup + 60) for f in futures]
    latencies = [x for p in parts for x in p["latencies"]]
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
    s = summary(latencies, scale=1000.0, digits=2)
    server_cpu = (snap1.get(server_pid, ("", 0.0))[1] - snap0.get(server_pid, ("", 0.0))[1]) if server_pid else None
    pct = lambda v: None if v is None else round(100 * v / seconds, 1)  # noqa: E731
    split = cpu_split(snap0, snap1, mine, {database})
    rps = len(latencies) / seconds
    return {
        "server_cpu_ms_per_request": round(1000 * server_cpu / len(latencies), 3) if server_cpu is not None and latencies else None,
        "client": client_kind, "concurrency": concurrency, "client_processes": procs, "seconds": seconds, "warmup_s": warmup,
        "ok": len(latencies), "requests_per_s": round(rps, 1),
        "latency_ms": {k: s[k] for k in ("p50", "p90", "p99", "max", "mean")},
        "errors": sum(errors.values()), "errors_by_status": errors,
        "ok_including_warmup": sum(p["ok_total"] for p in parts),
        "client_late_start_s": round(max(p["late_start_s"] for p in parts), 3),
        "cpu_pct": {  # percent of ONE core over the measured window (the machine has nproc cores)
            "client": pct(sum(p["client_cpu_s"] for p in parts)),
            "server": pct(server_cpu),
            "postgres": pct(split["postgres"]),
            "kernel_threads": pct(split["kernel"]),
            "other_processes": pct(split["other"]),
            "machine_busy": pct(busy1 - busy0),
        },
    }


def wait_quiet(limit_pct: float, max_wait: float) -> float:
    """Wait (at most max_wait s) until the machine, measured over 1 s, uses under limit_pct of
    one core: other work on the box (a test run) would skew the point. Returns the last reading."""
    deadline = time.monotonic() + max_wait
    warned = False
    while True:
        b0 = system_busy()[0]
        time.sleep(1.0)
        busy = 100 * (system_busy()[0] - b0)
        if busy < limit_pct or time.monotonic() > deadline:
            if busy >= limit_pct:
                log(f"  machine still busy ({busy:.0f}% of a core used by other processes); measuring anyway")
            return round(busy, 1)
        if not warned:
            log(f"  machine busy ({busy:.0f}% of a core used by other processes); waiting up to {max_wait:.0f} s for it to calm down")
            warned = True


# ---- setup --------------------------------------------------------------------------------------
def setup_hub_database(url) -> tuple[str, int, int]:
    """Migrate, create a company, an Uber Eats integration and its inbound endpoint.
    Returns (HUB_SECRET_KEYS value, integration id, endpoint id)."""
    from hub import db, migrate
    from hub import integrations as store
    from hub.crypto import Keyring, generate_key
    from hub.inbound.provider_endpoints import create_inbound

    migrate.upgrade(url)
    key = generate_key()
    keyring = Keyring([key])
    engine = db.engine(url)
    with engine.begin() as conn:
        company = store.create_company(conn, "Bench Pizza")
        integration_id = store.add_integration(conn, keyring, company_id=company, provider="ubereats", name="Uber Eats (bench)",
                                               credentials=UE_CREDENTIALS, config={"store_id": STORE_ID}, active=True)
        endpoint_id = create_inbound(conn, keyring, integration_id)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bench_floor_event (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, "
            "payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())")
    engine.dispose()
    return key, integration_id, endpoint_id


def stored_rows(dsn: str, target: str, tag: str, integration_id: int) -> dict[str, int]:
    import psycopg

    pattern = tag + "-%"
    with psycopg.connect(dsn) as conn:
        if target == "hub":
            events = conn.execute("SELECT count(*) FROM inbound_event WHERE integration_id = %s AND event_id LIKE %s",
                                  (integration_id, pattern)).fetchone()[0]
            orders = conn.execute("SELECT count(*) FROM external_order WHERE integration_id = %s AND external_id LIKE %s",
                                  (integration_id, pattern)).fetchone()[0]
            return {"inbound_event": events, "external_order": orders}
        if target == "hmac":
            return {}
        return {"bench_floor_event": conn.execute("SELECT count(*) FROM bench_floor_event WHERE event_id LIKE %s",
                                                  (pattern,)).fetchone()[0]}


def read_after_ack_probe(url: str, secret: str, dsn: str, target: str, integration_id: int, n: int = 200) -> dict:
    """Send n requests one by one; after each 200, look for the row from another connection
    at once. A row missing at that moment would mean a 200 before the commit."""
    import httpx
    import psycopg

    if target == "hmac":
        return {}
    tag = f"probe{uuid.uuid4().hex[:8]}"
    missing = ok = 0
    if target == "hub":
        query = "SELECT count(*) FROM external_order e JOIN inbound_event i ON i.event_id = %s AND i.integration_id = e.integration_id " \
                "WHERE e.integration_id = %s AND e.external_id = %s"
    else:
        query = "SELECT count(*) FROM bench_floor_event WHERE event_id = %s"
    with httpx.Client(timeout=10) as client, psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            event_id = f"{tag}-{i}"
            body = _body(event_id)
            sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            r = client.post(url, content=body, headers={"Content-Type": "application/json", "X-Uber-Signature": sig})
            if r.status_code != 200:
                continue
            ok += 1
            args = (event_id, integration_id, f"{event_id}-o") if target == "hub" else (event_id,)
            if conn.execute(query, args).fetchone()[0] != 1:
                missing += 1
    return {"requests": n, "acknowledged": ok, "missing_right_after_ack": missing}


# ---- servers ------------------------------------------------------------------------------------
def start_server(target: str, dsn: str, secret_keys: str, secret: str, logdir: Path) -> tuple[Child, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DAGSTER_", "FLOOR_"))}
    if target == "hub":
        env.update(HUB_DATABASE_URL=dsn, HUB_SECRET_KEYS=secret_keys, HUB_STATE_DIR=str(logdir / "hub_state"))
        argv = [str(VENV_BIN / "hub"), "web", "run", "--port", str(port)]
    else:
        env.update(FLOOR_DATABASE_URL=dsn, FLOOR_SECRET=secret,
                   FLOOR_MODE={"floor": "single", "floor-group": "group", "hmac": "hmac"}[target])
        argv = [str(VENV_BIN / "uvicorn"), "ingest_floor:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    child = Child(target, argv, env, logdir / f"{target}.log", cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, 30, f"{target} server")
    return child, base


# ---- report -------------------------------------------------------------------------------------
def table(points: list[dict]) -> str:
    lines = ["| target | client | procs | senders | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors | rows = 200s "
             "| CPU % client / server / postgres / other |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for p in points:
        l, cpu = p["latency_ms"], p["cpu_pct"]
        rows = "-" if p.get("rows_match") is None else ("yes" if p["rows_match"] else f"NO {p['rows']}")
        target = p["target"] + (" (again)" if p.get("role") == "repeat" else "")
        lines.append(f"| {target} | {p['client']} | {p['client_processes']} | {p['concurrency']} | {p['requests_per_s']:,.0f} | "
                     f"{l['p50']} | {l['p90']} | {l['p99']} | {l['max']} | {p['errors']} | {rows} | "
                     f"{cpu['client']} / {cpu['server']} / {cpu['postgres']} / {cpu['other_processes']} |")
    return "\n".join(lines)


def find(points: list[dict], target: str, client: str, c: int, role: str = "main") -> dict | None:
    return next((p for p in points if p["target"] == target and p["client"] == client and p["concurrency"] == c
                 and p["role"] == role), None)


def verdict(points: list[dict], headline_client: str) -> list[str]:
    out = []
    hub, floor, group = (find(points, t, headline_client, 16) for t in ("hub", "floor", "floor-group"))
    rounds = {t: [p["requests_per_s"] for p in points if p["target"] == t and p["client"] == headline_client
                  and p["concurrency"] == 16 and p["role"] in ("main", "repeat")] for t in ("hub", "floor")}
    if hub and floor and len(rounds["hub"]) > 1 and len(rounds["hub"]) == len(rounds["floor"]):
        med = {t: statistics.median(v) for t, v in rounds.items()}
        wins = sum(h >= f for h, f in zip(rounds["hub"], rounds["floor"]))
        n = len(rounds["hub"])
        out.append(f"Over {n} rounds at 16 senders ({headline_client} client; hub and floor alternating, servers restarted): "
                   f"hub median {med['hub']:,.0f} requests/s (range {min(rounds['hub']):,.0f}-{max(rounds['hub']):,.0f}), "
                   f"floor median {med['floor']:,.0f} (range {min(rounds['floor']):,.0f}-{max(rounds['floor']):,.0f}): "
                   f"hub at {100 * med['hub'] / med['floor']:.0f}% of the floor, ahead in {wins} of {n} rounds; "
                   f"target 'at least the floor' {'MET' if med['hub'] >= med['floor'] else 'NOT MET'} on the medians.")
        p99s = [p["latency_ms"]["p99"] for p in points if p["target"] == "hub" and p["client"] == headline_client
                and p["concurrency"] == 16 and p["role"] in ("main", "repeat")]
        out.append(f"Hub p99 at 16 senders, every round: {', '.join(str(v) for v in p99s)} ms: target 'under 50 ms' "
                   f"{'MET' if all(v is not None and v < 50 for v in p99s) else 'NOT MET'}.")
    elif hub and floor:
        out.append(f"At 16 senders ({headline_client} client) the hub receiver does {hub['requests_per_s']:,.0f} requests/s, "
                   f"{100 * hub['requests_per_s'] / floor['requests_per_s']:.0f}% of the single-insert floor's "
                   f"{floor['requests_per_s']:,.0f}: target 'at least the floor' "
                   f"{'MET' if hub['requests_per_s'] >= floor['requests_per_s'] else 'NOT MET'}.")
        p99 = hub["latency_ms"]["p99"]
        out.append(f"Hub p99 at 16 senders: {p99} ms (floor: {floor['latency_ms']['p99']} ms): target 'under 50 ms' "
                   f"{'MET' if p99 is not None and p99 < 50 else 'NOT MET'}.")
    if group and floor:
        out.append(f"Group-commit floor at 16 senders: {group['requests_per_s']:,.0f} requests/s, p99 {group['latency_ms']['p99']} ms.")
    bad = [p for p in points if p.get("rows_match") is False]
    out.append("Stored rows equal the 200s received at every point (warm-up included)." if not bad
               else "ROW MISMATCH at " + ", ".join(f"{p['target']}/{p['client']}@{p['concurrency']}" for p in bad))
    busy = [p for p in points if (p["cpu_pct"]["other_processes"] or 0) > 20]
    if busy:
        out.append("Other processes on the machine used over 20% of a core during: "
                   + ", ".join(f"{p['target']}/{p['client']}@{p['concurrency']} ({p['cpu_pct']['other_processes']}%)" for p in busy)
                   + "; those points are pessimistic.")
    return out


def client_note(points: list[dict]) -> str:
    h1, h2, raw = (find(points, "hmac", k, 16, "calibration") for k in ("httpx", "httpx2", "raw"))
    if not (h1 and raw):
        return "no calibration run"
    text = (f"HMAC-only endpoint (no database) at 16 senders: httpx.AsyncClient, 1 process: {h1['requests_per_s']:,.0f} requests/s "
            f"with the client at {h1['cpu_pct']['client']}% of a core and the server at {h1['cpu_pct']['server']}%")
    if h2:
        text += (f"; httpx, 2 processes: {h2['requests_per_s']:,.0f} requests/s, client {h2['cpu_pct']['client']}%, "
                 f"server {h2['cpu_pct']['server']}%")
    text += (f"; raw asyncio HTTP/1.1 client, 1 process: {raw['requests_per_s']:,.0f} requests/s, client {raw['cpu_pct']['client']}%, "
             f"server {raw['cpu_pct']['server']}%. ")
    if h1["cpu_pct"]["client"] and h1["cpu_pct"]["client"] > 80 and raw["requests_per_s"] > 1.3 * h1["requests_per_s"]:
        text += ("One httpx process is the bottleneck (a full core for a few hundred requests/s), and a second one takes the "
                 "CPU the servers need on this machine, so the headline figures use the raw client; httpx figures at 16 "
                 "senders are kept beside them for comparison.")
    return text


def server_note(m: dict) -> str:
    """How every target is served: the same uvicorn settings for the hub and the floors."""
    packages = m.get("packages") or {}
    extras = [f"{name} {packages[name]}" for name in ("uvloop", "httptools") if packages.get(name)]
    return (f"uvicorn {packages.get('uvicorn', '?')}, one worker, own process, default loop and HTTP parser "
            f"({', '.join(extras) or 'asyncio, h11'}), no access log; the same for every target.")


def load_note(points: list[dict]) -> str:
    """Machine load from other work during the measured windows ('other' CPU column)."""
    other = [p["cpu_pct"]["other_processes"] or 0 for p in points]
    before = [p["machine_busy_before_pct"] for p in points if p.get("machine_busy_before_pct") is not None]
    if not other:
        return "Machine load: no points."
    text = (f"Machine load from other processes during the measured windows: median {statistics.median(other):g}%, "
            f"max {max(other)}% of one core")
    if before:
        text += f"; busy just before a point (1 s reading): max {max(before)}% of one core"
    return text + "."


def write_markdown(path: Path, data: dict) -> None:
    m = data["machine"]
    lines = [
        "# Webhook ingest",
        "",
        f"`{data['command']}`, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m.get('postgresql')} on {m.get('pg_host')} (synchronous_commit={m.get('pg_synchronous_commit')}, "
        f"fsync={m.get('pg_fsync')}). Load generator, servers and PostgreSQL share these {m['nproc']} CPUs.",
        "",
        f"Each point: {data['settings']['warmup_s']:g} s warm-up, then {data['settings']['seconds']:g} s measured. N senders each "
        "send one signed Uber Eats `orders.notification` at a time (unique event ids); only 200s count; latency is send to "
        "full response. Servers: " + server_note(m) + " Client `raw` is a minimal keep-alive HTTP/1.1 client, "
        "`httpx2` is httpx.AsyncClient in 2 processes (see 'Load generator' below). CPU % is of one core over the measured "
        "window ('other' = processes that are neither the benchmark's, PostgreSQL's nor kernel threads: another workload "
        "on the machine). Rows marked '(again)' are the extra rounds of the headline pair (hub and floor at 16 senders, "
        "alternating, each on a freshly started server): on this shared 2-CPU machine one 15 s point varies by 10-20% "
        "from run to run, so the verdict compares medians.",
        "",
        table(data["points"]),
        "",
        "Server CPU per acknowledged request at 16 senders: " + "; ".join(
            f"{p['target']} {p['server_cpu_ms_per_request']} ms" for p in data["points"]
            if p["concurrency"] == 16 and p["client"] == data["settings"]["client"] and p["role"] == "main") + ".",
        "",
        *[f"- {v}" for v in data["verdict"]],
        "",
        load_note(data["points"]),
        "",
        "Read-after-ack probe (after each target's points: sequential requests, each acknowledged row looked up at once "
        "from another connection):",
        "",
        *[f"- {t}: {p}" for t, p in data["probes"].items()],
        "",
        f"Load generator: {data['client_note']}",
        "",
    ]
    path.write_text("\n".join(lines))


# ---- main ---------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="measured seconds per point (default 15)")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each point (default 2)")
    ap.add_argument("--concurrency", default="1,16,64", help="comma-separated sender counts (default 1,16,64)")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS), help=f"comma-separated, from {', '.join(ALL_TARGETS)}")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator for the main points (default raw: see the calibration)")
    ap.add_argument("--client-procs", type=int, default=1, help="load generator processes for the main points (default 1)")
    ap.add_argument("--httpx-procs", type=int, default=2, help="processes for the httpx comparison point at 16 senders (default 2; 0: none)")
    ap.add_argument("--calibration-seconds", type=float, default=8.0, help="measured seconds of each calibration point (default 8)")
    ap.add_argument("--no-calibration", action="store_true", help="skip the HMAC-only runs that compare the load generators")
    ap.add_argument("--quiet-wait", type=float, default=15.0,
                    help="before each point, wait up to this many seconds for other processes to stop using the CPUs (0: never)")
    ap.add_argument("--quiet-budget", type=float, default=45.0, help="at most this many seconds of such waiting in all")
    ap.add_argument("--quiet-pct", type=float, default=25.0, help="'quiet' means under this %% of one core busy (default 25)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measure the headline pair (hub and floor, 16 senders) this many times in all, alternating, "
                         "servers restarted each time; the verdict uses the median (default 3; 1: once)")
    ap.add_argument("--out", default=str(RESULTS / "webhook_ingest"), help="results path without extension")
    args = ap.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in ALL_TARGETS + ("hmac",):
            ap.error(f"unknown target {t}")

    # (target, client label, client kind, processes, sender counts, role)
    plan: list[tuple[str, str, str, int, list[int], str]] = []
    if not args.no_calibration:
        plan += [("hmac", "httpx", "httpx", 1, [16], "calibration"), ("hmac", "httpx2", "httpx", 2, [16], "calibration"),
                 ("hmac", "raw", "raw", 1, [16], "calibration")]
    for t in targets:
        plan.append((t, args.client, args.client, args.client_procs, concurrencies, "main"))
        if args.httpx_procs and 16 in concurrencies and args.client != "httpx":
            plan.append((t, f"httpx{args.httpx_procs if args.httpx_procs > 1 else ''}", "httpx", args.httpx_procs, [16], "main"))
    if 16 in concurrencies and "hub" in targets and "floor" in targets:
        for _ in range(max(0, args.rounds - 1)):  # extra rounds of the headline pair: run-to-run spread
            plan += [("hub", args.client, args.client, args.client_procs, [16], "repeat"),
                     ("floor", args.client, args.client, args.client_procs, [16], "repeat")]
    expected = sum(len(p[4]) * ((args.seconds if p[5] != "calibration" else min(args.seconds, args.calibration_seconds)) + args.warmup + 3)
                   for p in plan)
    log(f"{sum(len(p[4]) for p in plan)} points; expect about {expected / 60:.1f} min plus start-up "
        f"(and at most {args.quiet_budget:g} s waiting for other processes to leave the CPUs)")

    command = "python bench/webhook_ingest.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    started = time.monotonic()
    points: list[dict] = []
    probes: dict[str, dict] = {}
    children: list[Child] = []
    quiet_left = args.quiet_budget
    workers = max(2, args.client_procs, args.httpx_procs)
    with signals_as_exceptions(), tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        logdir = Path(tmp)
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        completed = False
        try:
            with fresh_database("hub_bench_ingest") as url:
                dsn = plain(url)
                info = machine(url)
                log(f"database {url.database} on {url.host}:{url.port}, PostgreSQL {info.get('postgresql')}; "
                    f"{info['nproc']} CPUs; migrating and creating the inbound endpoint")
                secret_keys, integration_id, endpoint_id = setup_hub_database(url)
                secret = UE_CREDENTIALS["client_secret"]
                list(pool.map(time.sleep, [0.5] * workers))  # spawn every client process now

                current: tuple[str, Child, str] | None = None
                for i, (target, label, kind, procs, concs, role) in enumerate(plan):
                    if current is None or current[0] != target:
                        if current is not None:
                            current[1].stop()
                            children.remove(current[1])
                        log(f"starting {target} server (uvicorn, 1 worker)")
                        child, base = start_server(target, dsn, secret_keys, secret, logdir)
                        children.append(child)
                        current = (target, child, base)
                    child, path = current[1], f"{current[2]}/webhooks/ubereats/{endpoint_id}"
                    for c in concs:
                        tag = f"{target}-{label}-c{c}-{uuid.uuid4().hex[:6]}"
                        log(f"  {target} [{role}]: {c} sender(s), {label} client x{procs}, {args.warmup:g} s warm-up + "
                            f"{args.seconds if role != 'calibration' else min(args.seconds, args.calibration_seconds):g} s")
                        quiet = None
                        if args.quiet_wait > 0 and quiet_left > 0:
                            t0 = time.monotonic()
                            quiet = wait_quiet(args.quiet_pct, min(args.quiet_wait, quiet_left))
                            quiet_left -= max(0.0, time.monotonic() - t0 - 1.0)
                        seconds = args.seconds if role != "calibration" else min(args.seconds, args.calibration_seconds)
                        point = run_load(pool, kind, procs, path, secret, c, args.warmup, seconds, tag, child.pid, url.database)
                        point.update(target=target, client=label, role=role, machine_busy_before_pct=quiet)
                        if target != "hmac":
                            time.sleep(0.2)
                            point["rows"] = stored_rows(dsn, target, tag, integration_id)
                            point["rows_match"] = all(v == point["ok_including_warmup"] for v in point["rows"].values())
                        points.append(point)
                        l = point["latency_ms"]
                        log(f"  {target:<11} {label:<6} c={c:<3} {point['requests_per_s']:>7,.0f} req/s  p50 {l['p50']}  p90 {l['p90']}  "
                            f"p99 {l['p99']}  max {l['max']} ms  errors {point['errors']}  cpu% {point['cpu_pct']}"
                            + (f"  rows {point['rows']} vs 200s {point['ok_including_warmup']}"
                               f" -> {'ok' if point['rows_match'] else 'MISMATCH'}" if "rows" in point else ""))
                        if not child.alive():
                            raise RuntimeError(f"{target} server died:\n{child.tail()}")
                    last_of_target = i + 1 == len(plan) or plan[i + 1][0] != target
                    if last_of_target and role == "main" and target != "hmac":
                        probes[target] = read_after_ack_probe(path, secret, dsn, target, integration_id)
                        log(f"  {target}: read-after-ack probe {probes[target]}")
            completed = True
        finally:
            for child in list(children):
                child.stop()
            if not completed:  # interrupted or failed: do not wait for the client processes' windows to end
                for process in list(pool._processes.values()):  # noqa: SLF001
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)

    data = {
        "benchmark": "webhook_ingest",
        "command": command,
        "machine": info,
        "settings": {"seconds": args.seconds, "warmup_s": args.warmup, "concurrency": concurrencies, "targets": targets,
                     "client": args.client, "client_processes": args.client_procs, "httpx_processes": args.httpx_procs,
                     "floor_pool_size": 8, "floor_group_writers": 2, "floor_group_max_batch": 128, "rounds": args.rounds},
        "points": points,
        "probes": probes,
        "verdict": verdict(points, args.client),
        "client_note": client_note(points),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    write_markdown(out.with_suffix(".md"), data)
    print()
    print(table(points))
    print()
    for v in data["verdict"]:
        print("-", v)
    print("- load generator:", data["client_note"])
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {data['elapsed_s']} s")
    return 0 if not any(p.get("rows_match") is False for p in points) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped, database dropped")
        sys.exit(130)
