"""Webhook-to-accepted latency of delivery orders, end to end, as the marketplace sees it.

    .venv/bin/python bench/order_latency.py                    # 5 orders/s for 120 s
    .venv/bin/python bench/order_latency.py --rate 2 --seconds 30

What runs (everything on 127.0.0.1, everything stopped at the end, also on Ctrl-C or an error):
- fresh databases on the bench server: the hub's (migrated) and Dagster's, dropped at the end;
- the Uber Eats and DoorDash emulators, served in this process (`emulators.serve.serve`);
- the hub web app (`hub web run`, uvicorn, one worker) in a subprocess, with one company, an
  Uber Eats and a DoorDash integration pointed at the emulators and their inbound endpoints
  (the emulators' order webhooks are routed to them);
- `dagster dev -w workspace.yaml` in its own process group with its own DAGSTER_HOME (a temp
  dir holding a copy of dagster.yaml), DAGSTER_PG_URL (the fresh Dagster database),
  HUB_DATABASE_URL and HUB_SECRET_KEYS: its daemon runs `new_orders_sensor`, which launches
  `process_orders_job` runs that accept the orders at the emulators.

After a warm-up order per marketplace (the first run launch is not measured), an
`emulators.order_driver.OrderDriver` places `--rate` orders/s for `--seconds`, alternating
Uber Eats and DoorDash; then the script waits (at most `--drain` s) for the stragglers.
Latency is the emulators' own `accepted_at - notified_at` per order (`notified_at`: when the
successful order webhook was sent). It is broken down per order with the hub's
`external_order.created_at` (webhook stored) and `synced_at` (claimed by a run), and Dagster's
run events (RUN_ENQUEUED by the sensor, RUN_START when the run process is up).

Writes bench/results/order_latency.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, ROOT, VENV_BIN, Child, fresh_database, free_port, log, machine, plain,  # noqa: E402
                     signals_as_exceptions, summary, system_busy, wait_http, write_json)

UE = {"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"}  # the emulators' defaults
DD = {"developer_id": "demo-dev", "key_id": "demo-key", "signing_secret": "ZGVtby1zaWduaW5nLXNlY3JldA",
      "webhook_token": "demo-webhook-token-0001"}
JOB = "process_orders_job"
SENSOR = "new_orders_sensor"


# ---- setup --------------------------------------------------------------------------------------
def setup_hub(url, uber_url: str, door_url: str) -> tuple[str, dict[str, int], dict[str, int]]:
    from hub import db, migrate
    from hub import integrations as store
    from hub.crypto import Keyring, generate_key
    from hub.inbound.provider_endpoints import create_inbound

    migrate.upgrade(url)
    key = generate_key()
    keyring = Keyring([key])
    engine = db.engine(url)
    with engine.begin() as conn:
        company = store.create_company(conn, "Bella Pizza (bench)")
        ids = {
            "ubereats": store.add_integration(conn, keyring, company_id=company, provider="ubereats", name="Uber Eats (bench)",
                                              credentials=UE, config={"store_id": "bella-001", "base_url": uber_url,
                                                                      "token_url": uber_url + "/oauth/v2/token"}, active=True),
            "doordash": store.add_integration(conn, keyring, company_id=company, provider="doordash", name="DoorDash (bench)",
                                              credentials=DD, config={"store_id": "601135", "base_url": door_url}, active=True),
        }
        endpoints = {name: create_inbound(conn, keyring, integration_id) for name, integration_id in ids.items()}
    engine.dispose()
    return key, ids, endpoints


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DAGSTER_"))}
    env.update(extra)
    return env


# ---- measurement --------------------------------------------------------------------------------
class Marketplaces:
    """The two emulators and the orders placed on them (measured ones and warm-ups)."""

    def __init__(self, uber, door):
        self.by_name = {"ubereats": uber, "doordash": door}

    def record(self, provider: str, order_id: str) -> dict:
        emulator = self.by_name[provider]
        with emulator.state.lock:
            rec = dict(emulator.state.orders[order_id])
            rec.pop("order", None)
            created_event = next((emulator.state.events.get(e) for e in rec.get("events", [])), None)
            rec["webhook"] = dict(created_event) if created_event else None
        return rec

    def done(self, provider: str, order_id: str) -> bool:
        rec = self.record(provider, order_id)
        return bool(rec["accepted_at"] or rec["denied_at"] or rec["canceled_at"])


def provider_of(target_name: str) -> str:
    return "ubereats" if "uber" in target_name.lower() else "doordash"


def dagster_runs(instance) -> list[dict]:
    """process_orders_job runs with their lifecycle events (epoch seconds)."""
    import dagster as dg

    wanted = {
        dg.DagsterEventType.RUN_ENQUEUED: "enqueued", dg.DagsterEventType.RUN_DEQUEUED: "dequeued",
        dg.DagsterEventType.RUN_STARTING: "starting", dg.DagsterEventType.RUN_START: "started",
        dg.DagsterEventType.STEP_START: "step_started", dg.DagsterEventType.RUN_SUCCESS: "succeeded",
        dg.DagsterEventType.RUN_FAILURE: "failed",
    }
    runs = []
    for record in instance.get_run_records(dg.RunsFilter(job_name=JOB)):
        run = record.dagster_run
        item = {"run_id": run.run_id, "status": run.status.value, "created": record.create_timestamp.timestamp(),
                "tags": {k: v for k, v in run.tags.items() if k in ("orders_waiting", "events_waiting", "dagster/run_key")}}
        for entry in instance.all_logs(run.run_id, of_type=set(wanted)):
            name = wanted[entry.dagster_event.event_type]
            item.setdefault(name, entry.timestamp)
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            meta = entry.dagster_event.event_specific_data.materialization.metadata
            item["accepted"] = int(meta["accepted"].value) if "accepted" in meta else None
        item["ended"] = item.get("succeeded") or item.get("failed")
        runs.append(item)
    return sorted(runs, key=lambda r: r["created"])


def sensor_ticks(dagster_dsn: str, since: float) -> list[dict]:
    """new_orders_sensor ticks (from Dagster's job_ticks table) after `since`."""
    import psycopg

    ticks = []
    with psycopg.connect(dagster_dsn) as conn:
        for (body,) in conn.execute("SELECT tick_body FROM job_ticks ORDER BY id"):
            data = json.loads(body)
            if data.get("job_name") != SENSOR or data.get("timestamp", 0) < since:
                continue
            ticks.append({"timestamp": data["timestamp"], "status": data.get("status", {}).get("__enum__", data.get("status")),
                          "runs": len(data.get("run_ids") or [])})
    return ticks


def hub_orders(hub_dsn: str) -> dict[str, dict]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(hub_dsn, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT e.external_id, e.status, e.processed, extract(epoch from e.created_at) AS stored, "
                            "extract(epoch from e.synced_at) AS claimed, e.order_id, i.provider "
                            "FROM external_order e JOIN integration i ON i.id = e.integration_id").fetchall()
    return {r["external_id"]: {k: (float(v) if k in ("stored", "claimed") and v is not None else v) for k, v in r.items()}
            for r in rows}


def claiming_run(runs: list[dict], claimed: float | None) -> dict | None:
    """The run that was executing when the order was claimed (the latest one that had started)."""
    if claimed is None:
        return None
    candidates = [r for r in runs if r.get("started") is not None and r["started"] <= claimed + 0.05
                  and (r.get("ended") is None or claimed <= r["ended"] + 0.05)]
    return max(candidates, key=lambda r: r["started"]) if candidates else None


def analyse(placed: list[tuple[str, str, float]], markets: Marketplaces, hub: dict[str, dict], runs: list[dict],
            ticks: list[dict], window: tuple[float, float]) -> dict:
    latencies, never, denied, rows = [], [], [], []
    segments = {k: [] for k in ("webhook_to_stored", "stored_to_run_enqueued", "run_queued", "run_launch",
                                "run_started_to_claimed", "claimed_to_accepted")}
    for target, order_id, _ in placed:
        provider = provider_of(target)
        rec = markets.record(provider, order_id)
        notified, accepted = rec.get("notified_at"), rec.get("accepted_at")
        h = hub.get(order_id, {})
        if rec.get("denied_at"):
            denied.append(order_id)
        if not (notified and accepted):
            never.append({"order_id": order_id, "provider": provider, "state": rec["state"], "notified": bool(notified),
                          "stored": bool(h), "hub_status": h.get("status")})
            continue
        latency = accepted - notified
        latencies.append(latency)
        run = claiming_run(runs, h.get("claimed"))
        row = {"provider": provider, "order_id": order_id, "latency_s": round(latency, 3)}
        if h.get("stored") is not None and h.get("claimed") is not None and run is not None:
            t0 = notified
            t1 = max(t0, h["stored"])
            t2 = max(t1, run.get("enqueued", run["created"]))
            t2b = max(t2, run.get("starting") or run.get("dequeued") or t2)
            t3 = max(t2b, run["started"])
            t4 = max(t3, h["claimed"])
            t5 = max(t4, accepted)
            parts = dict(zip(segments, (t1 - t0, t2 - t1, t2b - t2, t3 - t2b, t4 - t3, t5 - t4)))
            for k, v in parts.items():
                segments[k].append(v)
            row.update({k: round(v, 3) for k, v in parts.items()}, run_id=run["run_id"][:8])
        rows.append(row)

    in_window = [r for r in runs if r.get("started") and window[0] - 5 <= r["started"] <= window[1]]
    launch = [r["started"] - r.get("enqueued", r["created"]) for r in in_window if r.get("started")]
    queued = [r["starting"] - r["enqueued"] for r in in_window if r.get("starting") and r.get("enqueued")]
    spawn = [r["started"] - r["starting"] for r in in_window if r.get("starting") and r.get("started")]
    durations = [r["ended"] - r["started"] for r in in_window if r.get("ended") and r.get("started")]
    batch = [r["accepted"] for r in in_window if r.get("accepted") is not None]
    tick_gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(ticks, ticks[1:])]
    by_provider = {}
    for provider in ("ubereats", "doordash"):
        vals = [r["latency_s"] for r in rows if r["provider"] == provider]
        by_provider[provider] = summary(vals, digits=3)
    seg_summary = {k: summary(v, digits=3) for k, v in segments.items()}
    total_mean = sum(s["mean"] or 0 for s in seg_summary.values()) or 1.0
    for s in seg_summary.values():
        s["share_of_mean_pct"] = round(100 * (s["mean"] or 0) / total_mean, 1)
    return {
        "orders_placed": len(placed),
        "accepted": len(latencies),
        "never_accepted": len(never),
        "never_accepted_orders": never[:50],
        "denied": len(denied),
        "latency_s": summary(latencies, digits=3),
        "latency_s_by_provider": by_provider,
        "breakdown_s": seg_summary,
        "runs": {
            "count": len(in_window),
            "failed": sum(1 for r in in_window if r.get("failed")),
            "orders_accepted_per_run": summary(batch, digits=1),
            "launch_s_enqueued_to_started": summary(launch, digits=3),
            "queued_s_enqueued_to_starting": summary(queued, digits=3),
            "spawn_s_starting_to_started": summary(spawn, digits=3),
            "duration_s_started_to_ended": summary(durations, digits=3),
        },
        "sensor": {"ticks": len(ticks), "tick_gap_s": summary(tick_gaps, digits=2),
                   "ticks_launching_a_run": sum(1 for t in ticks if t["runs"])},
        "orders": rows,
        "runs_detail": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in in_window],
    }


# ---- report -------------------------------------------------------------------------------------
LABELS = {
    "webhook_to_stored": "webhook sent -> row stored (receiver)",
    "stored_to_run_enqueued": "stored -> run enqueued (sensor notices, submits)",
    "run_queued": "enqueued -> dequeued and launching (run queue daemon)",
    "run_launch": "launching -> run started (new process, imports, code load)",
    "run_started_to_claimed": "run started -> order claimed (step start, earlier orders of the batch)",
    "claimed_to_accepted": "claimed -> accepted at the marketplace (fetch, POS order, accept call)",
}


def markdown(data: dict) -> str:
    m, r = data["machine"], data["result"]
    lat = r["latency_s"]
    lines = [
        "# Order latency: webhook to accepted",
        "",
        f"`{data['command']}`, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m.get('postgresql')}, Dagster {m.get('packages', {}).get('dagster')}. Emulators, hub web app, "
        "`dagster dev` (webserver, daemon, code server, run processes) and PostgreSQL share these CPUs.",
        "",
        f"{r['orders_placed']} orders placed at {data['settings']['rate']:g}/s for {data['settings']['seconds']:g} s "
        f"(Uber Eats and DoorDash in turn), then up to {data['settings']['drain_s']:g} s for stragglers "
        f"(waited {data['drain_waited_s']} s). Latency = the emulators' `accepted_at - notified_at`.",
        "",
        "| orders | accepted | never accepted | p50 s | p90 s | p99 s | max s | mean s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['orders_placed']} | {r['accepted']} | {r['never_accepted']} | {lat['p50']} | {lat['p90']} | {lat['p99']} | "
        f"{lat['max']} | {lat['mean']} |",
        "",
        "By marketplace: " + "; ".join(f"{p}: p50 {s['p50']} s, p99 {s['p99']} s, max {s['max']} s (n={s['n']})"
                                       for p, s in r["latency_s_by_provider"].items()) + ".",
        "",
        f"Target: accept p99 under 30 s -> {'MET' if lat['p99'] is not None and lat['p99'] < 30 and r['never_accepted'] == 0 else 'NOT MET'}.",
        "",
        "## Where the time goes (per order; segments add up to the latency)",
        "",
        "| segment | p50 s | p90 s | max s | mean s | share of mean |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {LABELS[k]} | {s['p50']} | {s['p90']} | {s['max']} | {s['mean']} | {s['share_of_mean_pct']}% |"
          for k, s in r["breakdown_s"].items()],
        "",
        f"Runs of `{JOB}` during the measurement: {r['runs']['count']} ({r['runs']['failed']} failed); orders accepted per run "
        f"p50 {r['runs']['orders_accepted_per_run']['p50']}, max {r['runs']['orders_accepted_per_run']['max']}; launch "
        f"(enqueued -> started) p50 {r['runs']['launch_s_enqueued_to_started']['p50']} s, max "
        f"{r['runs']['launch_s_enqueued_to_started']['max']} s (in the queue p50 {r['runs']['queued_s_enqueued_to_starting']['p50']} s, "
        f"process start p50 {r['runs']['spawn_s_starting_to_started']['p50']} s); run duration p50 {r['runs']['duration_s_started_to_ended']['p50']} s, "
        f"max {r['runs']['duration_s_started_to_ended']['max']} s. `{SENSOR}` ticks recorded: {r['sensor']['ticks']}, gap p50 "
        f"{r['sensor']['tick_gap_s']['p50']} s, max {r['sensor']['tick_gap_s']['max']} s; "
        f"{r['sensor']['ticks_launching_a_run']} launched a run. Machine CPU busy while orders were placed: "
        f"{data['machine_busy_pct_while_driving']}% of one core (of {m['nproc'] * 100}%).",
        "",
        f"Checks: {data['checks']}",
        "",
        f"Warm-up (not measured): {data['warmup']}",
        "",
    ]
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=5.0, help="orders per second (default 5)")
    ap.add_argument("--seconds", type=float, default=120.0, help="how long to place orders (default 120)")
    ap.add_argument("--drain", type=float, default=90.0, help="at most this long to wait for stragglers (default 90)")
    ap.add_argument("--startup-timeout", type=float, default=150.0, help="dagster dev + first run, at most (default 150)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "order_latency"), help="results path without extension")
    args = ap.parse_args()
    command = "python bench/order_latency.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from emulators import doordash as doordash_emulator
    from emulators import ubereats as ubereats_emulator
    from emulators.order_driver import OrderDriver
    from emulators.serve import serve

    started = time.monotonic()
    driver: OrderDriver | None = None
    with signals_as_exceptions(), ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_orders_")))
        hub_url = stack.enter_context(fresh_database("hub_bench_orders"))
        dagster_db = stack.enter_context(fresh_database("dagster_bench_orders"))
        hub_dsn, dagster_dsn = plain(hub_url), plain(dagster_db)
        dagster_pg_url = dagster_db.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        info = machine(hub_url)
        log(f"databases {hub_url.database} and {dagster_db.database} on {hub_url.host}:{hub_url.port}")

        uber = ubereats_emulator.create_emulator(seed=args.seed)
        door = doordash_emulator.create_emulator(seed=args.seed)
        stack.callback(uber.close)
        stack.callback(door.close)
        uber_url = stack.enter_context(serve(uber.app))
        door_url = stack.enter_context(serve(door.app))
        uber.base_url, door.base_url = uber_url, door_url
        log(f"emulators: Uber Eats {uber_url}, DoorDash {door_url}")

        secret_keys, ids, endpoints = setup_hub(hub_url, uber_url, door_url)
        hub_env = {"HUB_DATABASE_URL": hub_dsn, "HUB_SECRET_KEYS": secret_keys, "HUB_STATE_DIR": str(tmp / "hub_state")}

        web_port = free_port()
        web = Child("hub web", [str(VENV_BIN / "hub"), "web", "run", "--port", str(web_port)], child_env(hub_env), tmp / "web.log")
        stack.callback(web.stop)
        web_base = f"http://127.0.0.1:{web_port}"
        wait_http(f"{web_base}/healthz", web, 30, "hub web app")
        uber.set_webhook_url(f"{web_base}/webhooks/ubereats/{endpoints['ubereats']}")
        door.set_webhook_url(f"{web_base}/webhooks/doordash/{endpoints['doordash']}")
        stack.callback(uber.set_webhook_url, None)
        stack.callback(door.set_webhook_url, None)
        log(f"hub web app {web_base} (pid {web.pid}); webhooks routed to endpoints {endpoints}")

        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        dagster_env = {**hub_env, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_pg_url}
        dagster_port = free_port()
        t_dagster = time.monotonic()
        dagster = Child("dagster dev", [str(VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                                        "-p", str(dagster_port)], child_env(dagster_env), tmp / "dagster.log")
        stack.callback(dagster.stop, 20.0)
        log(f"dagster dev starting (pid/pgid {dagster.pid}, UI port {dagster_port}, DAGSTER_HOME {home})")
        wait_http(f"http://127.0.0.1:{dagster_port}/server_info", dagster, args.startup_timeout, "dagster dev")
        log(f"dagster webserver up after {time.monotonic() - t_dagster:.1f} s; warm-up: one order per marketplace")

        os.environ["DAGSTER_PG_URL"] = dagster_pg_url  # for the instance this process reads runs from
        import dagster as dg

        instance = dg.DagsterInstance.from_config(str(home))
        stack.callback(instance.dispose)
        markets = Marketplaces(uber, door)

        # warm-up: the daemon must be ticking and a first run must have launched before we measure
        t_warm = time.monotonic()
        warm = [("ubereats", uber.place_order()["id"]), ("doordash", door.place_order()["id"])]
        deadline = time.monotonic() + args.startup_timeout
        while not all(markets.done(p, o) for p, o in warm):
            if not dagster.alive():
                raise RuntimeError(f"dagster dev exited:\n{dagster.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up orders not accepted within {args.startup_timeout:.0f} s:\n{dagster.tail()}")
            time.sleep(0.5)
        warm_latency = [round(markets.record(p, o)["accepted_at"] - markets.record(p, o)["notified_at"], 2) for p, o in warm]
        warmup = {"orders": len(warm), "accepted_after_s": round(time.monotonic() - t_warm, 1), "latency_s": warm_latency,
                  "dagster_startup_s": round(t_warm - t_dagster, 1)}
        log(f"warm-up done: {warmup}")

        # the measurement
        log(f"placing {args.rate:g} orders/s for {args.seconds:g} s (Uber Eats and DoorDash in turn)")
        t_start = time.time()
        busy0 = system_busy()[0]
        driver = OrderDriver([uber, door], rate=args.rate, duration_s=args.seconds, seed=args.seed).start()
        stack.callback(driver.stop)
        last = 0.0
        drain_started = None
        drain_deadline = None
        while True:
            time.sleep(1.0)
            with driver._lock:  # noqa: SLF001 (a consistent copy of the driver's rows)
                placed = list(driver.orders)
            done = sum(1 for t, o, _ in placed if markets.done(provider_of(t), o))
            if not dagster.alive():
                raise RuntimeError(f"dagster dev exited:\n{dagster.tail()}")
            if not web.alive():
                raise RuntimeError(f"hub web app exited:\n{web.tail()}")
            now = time.monotonic()
            if now - last >= 10:
                runs = instance.get_runs_count(dg.RunsFilter(job_name=JOB))
                log(f"  t={time.time() - t_start:5.0f} s  placed {len(placed)}  accepted/answered {done}  waiting {len(placed) - done}  "
                    f"runs so far {runs}" + ("  (draining)" if drain_started else ""))
                last = now
            if driver.running:
                continue
            if drain_started is None:
                busy_driving = round(100 * (system_busy()[0] - busy0) / (time.time() - t_start), 1)
                drain_started, drain_deadline = now, now + args.drain
                log(f"driver finished: {driver.placed} placed ({driver.placed_by}), {len(driver.errors)} errors; "
                    f"waiting up to {args.drain:g} s for the rest")
            if done == len(placed) or now > drain_deadline:
                break
        drain_waited = round(time.monotonic() - drain_started, 1)
        t_end = time.time()
        uber.wait_idle(5)
        door.wait_idle(5)
        time.sleep(1.0)  # let the last run write its end events

        log("collecting the emulators' records, external_order rows, Dagster runs and sensor ticks")
        runs = dagster_runs(instance)
        ticks = sensor_ticks(dagster_dsn, t_start)
        hub = hub_orders(hub_dsn)
        with driver._lock:  # noqa: SLF001
            placed = list(driver.orders)
        result = analyse(placed, markets, hub, runs, ticks, (t_start, t_end))
        placed_ids = {o for _, o, _ in placed}
        stored = [h for k, h in hub.items() if k in placed_ids]
        checks = {
            "driver_errors": len(driver.errors),
            "external_order_rows_for_placed_orders": len(stored),
            "processed": sum(1 for h in stored if h["processed"]),
            "with_pos_order": sum(1 for h in stored if h["order_id"]),
            "hub_status_counts": {s: sum(1 for h in stored if h["status"] == s) for s in sorted({h["status"] for h in stored})},
            "webhook_sends_uber": len(uber.state.deliveries), "webhook_sends_doordash": len(door.state.deliveries),
            "webhooks_not_2xx": sum(1 for d in uber.state.deliveries + door.state.deliveries
                                    if not (d["status"] and 200 <= d["status"] < 300)),
        }
        log("stopping dagster dev (process group), the hub web app and the emulators; dropping the databases")

    data = {
        "benchmark": "order_latency",
        "command": command,
        "machine": info,
        "settings": {"rate": args.rate, "seconds": args.seconds, "drain_s": args.drain, "seed": args.seed,
                     "sensor_minimum_interval_s": 2, "executor": "in_process", "run_launcher": "default (a process per run)"},
        "warmup": warmup,
        "drain_waited_s": drain_waited,
        "machine_busy_pct_while_driving": busy_driving,
        "checks": checks,
        "result": result,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    out.with_suffix(".md").write_text(markdown(data))
    lat = result["latency_s"]
    print()
    print(f"orders {result['orders_placed']}, accepted {result['accepted']}, never accepted {result['never_accepted']}; "
          f"accepted_at - notified_at: p50 {lat['p50']} s  p90 {lat['p90']} s  p99 {lat['p99']} s  max {lat['max']} s")
    for k, s in result["breakdown_s"].items():
        print(f"  {LABELS[k]:<75} p50 {s['p50']}  p90 {s['p90']}  max {s['max']}  ({s['share_of_mean_pct']}% of mean)")
    print(f"  runs {result['runs']['count']}, orders/run p50 {result['runs']['orders_accepted_per_run']['p50']}, "
          f"launch p50 {result['runs']['launch_s_enqueued_to_started']['p50']} s; checks {checks}")
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {data['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped and the databases dropped")
        sys.exit(130)
