"""The nightly fan-out at scale: N integrations over QuickBooks, Xero and Procore due at one tick.

    .venv/bin/python bench/nightly_fanout.py                       # 1,000 integrations, both modes
    .venv/bin/python bench/nightly_fanout.py --integrations 300 --mode per-run
    .venv/bin/python bench/nightly_fanout.py --integrations 90 --mode per-run --outage xero

What runs (everything on 127.0.0.1, stopped at the end, also on Ctrl-C or an error):
- three emulator processes, one per provider, each serving one emulator PER ACCOUNT behind a
  router (bench/fanout_accounts.py): every integration is its own QuickBooks realm, Xero
  organisation or Procore company with its own small generated data (the demo's sizes: 25
  vendors, 40 bills, 10 sales invoices, 20 accounts; Procore 3 projects with 30 records
  each), OAuth grant and per-account rate limits (on, as the emulators have them);
- per mode, fresh databases on the bench server: the hub's (migrated; N integrations stored
  through `add_integration`, spread over `--companies` companies in five time zones, each
  company's sync hour set to its local hour at the tick, so every integration is due at the
  same UTC instant; each Procore integration's three projects linked) and Dagster's;
- Dagster as deployed: a DAGSTER_HOME holding deploy/dagster.yaml unchanged (QueuedRunCoordinator
  with its limits: 24 runs at once, one per partition, 8 per sync schedule; pools of 8 per
  provider; run monitoring), `dagster code-server start` serving the code location (runs are
  its subprocesses: DefaultRunLauncher) and `dagster-daemon run` (schedules, run queue,
  sensors, monitoring).

The tick: the daemon's own scheduler fires it. Its clock alone is moved (this script's
`--child daemon` patches `get_current_datetime` in dagster._scheduler.scheduler, nothing else)
so that a fixed top of the hour (`--tick-at`, default the next 07:00 UTC: 02:00 in New York)
arrives at a real minute boundary shortly after start; the schedules are evaluated through the
code server at that time, request their runs (run keys "<partition>:<local date>" after the
lookup of existing keys), and the queue, the launches and the runs happen in real time.

Modes:
- `per-run` (production): one run per integration, `<provider>_sync_job`.
- `batched` (prototype, bench/fanout_batched.py): the sync schedules replaced by batch
  schedules that put the same due integrations into 8 runs per provider (as many processes at
  once as per-run's per-schedule limit); a batch run executes each integration's
  `<provider>_sync_job` in-process, one after another, each still its own run record.

Measured, from the run storage (runs, run tags, event log) and the hub's sync_log: wall time of
the batch (the tick's start to the last run's end), integrations per minute, peak runs in
progress per provider (from run start/end times), per run: queue wait, launch (RUN_STARTING to
RUN_START: a new process, its imports, the code location), setup (to the first step), time in
steps (the useful work: imports, checks, exports, reconciliation) and between them, teardown;
CPU seconds by process group (run processes, daemon, emulators, PostgreSQL, other); peak RSS
of the run processes; failures. Also the import cost of one run process (calibration).

`--outage PROVIDER` makes that provider answer 503 to every API call during the batch: its
runs must fail (bounded retries, sync_log errors) while the others succeed.

Writes bench/results/nightly_fanout.json and .md (`--out` for another stem).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, ROOT, VENV_BIN, Child, fresh_database, free_port, log, machine, plain,  # noqa: E402
                     signals_as_exceptions, summary, system_busy, wait_http, write_json)

PROVIDERS = ("quickbooks", "xero", "procore")
SCHEDULES = {"quickbooks": "quickbooks_nightly_schedule", "xero": "xero_nightly_schedule", "procore": "procore_hourly_schedule"}
TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London")
LOCATION = "integrations_hub"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
# the event types read, as stored (run events keep their old PIPELINE_ names in the event log)
EVENT_TYPES = {"PIPELINE_ENQUEUED": "RUN_ENQUEUED", "PIPELINE_DEQUEUED": "RUN_DEQUEUED", "PIPELINE_STARTING": "RUN_STARTING",
               "PIPELINE_START": "RUN_START", "PIPELINE_SUCCESS": "RUN_SUCCESS", "PIPELINE_FAILURE": "RUN_FAILURE",
               "PIPELINE_CANCELED": "RUN_CANCELED", "STEP_START": "STEP_START", "STEP_SUCCESS": "STEP_SUCCESS",
               "STEP_FAILURE": "STEP_FAILURE"}


# ---- children ---------------------------------------------------------------------------------
def child_emulator(args: argparse.Namespace) -> int:
    """One provider's accounts behind the router, in the foreground until SIGTERM."""
    import fanout_accounts

    from emulators.serve import serve

    t0 = time.perf_counter()
    router = fanout_accounts.build(args.provider, args.accounts)
    with signals_as_exceptions():
        try:
            with serve(router, port=args.port) as url:
                print(f"{args.provider}: {args.accounts} accounts at {url} (built in {time.perf_counter() - t0:.1f} s)", flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def child_daemon(args: argparse.Namespace) -> int:
    """`dagster-daemon run` whose scheduler alone sees the clock moved by --clock-offset seconds."""
    from dagster._daemon.cli import main as daemon_main  # first: dagster._daemon imports the scheduler module itself
    import dagster._scheduler.scheduler as scheduler

    real, offset = scheduler.get_current_datetime, timedelta(seconds=args.clock_offset)

    def moved(*a, **kw):
        return real(*a, **kw) + offset

    scheduler.get_current_datetime = moved
    print(f"scheduler clock moved by {args.clock_offset:+.0f} s: it reads {moved().isoformat()}", flush=True)
    sys.argv = ["dagster-daemon", "run", "-w", args.workspace]
    daemon_main()
    return 0


# ---- process trees and CPU ----------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, float, float, int] | None:
    """(ppid, own CPU s, reaped children's CPU s, RSS bytes) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = raw.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(f[1]), (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick, int(f[21]) * os.sysconf("SC_PAGE_SIZE")


def tree(root: int) -> dict[int, tuple[int, float, float, int]]:
    """The live processes under `root` (itself included)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (s := _stat(int(entry.name))):
            stats[int(entry.name)] = s
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in stats and pid not in found:
            found[pid] = stats[pid]
            frontier.extend(p for p, s in stats.items() if s[0] == pid)
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree, including children that ended and were reaped inside it."""
    return sum(own + reaped for _, own, reaped, _ in tree(root).values())


def tree_rss_mb(root: int) -> float:
    return sum(rss for *_, rss in tree(root).values()) / 2**20


def run_processes(root: int) -> int:
    """Run workers under the code server: its spawned multiprocessing children."""
    n = 0
    for pid in tree(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            n += 1
    return n


def postmaster_pid() -> int | None:
    """The local PostgreSQL server's postmaster (its tree's CPU includes ended backends)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(f"/proc/{entry.name}/comm").read_text().strip() in ("postgres", "postmaster"):
                s = _stat(int(entry.name))
                if s and Path(f"/proc/{s[0]}/comm").read_text().strip() not in ("postgres", "postmaster"):
                    return int(entry.name)
        except OSError:
            continue
    return None


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---- seeding ----------------------------------------------------------------------------------
def split(n: int) -> dict[str, int]:
    """N integrations over the three providers, as evenly as possible (QuickBooks first)."""
    base, extra = divmod(n, len(PROVIDERS))
    return {p: base + (1 if i < extra else 0) for i, p in enumerate(PROVIDERS)}


def seed(url, keyring, bases: dict[str, str], counts: dict[str, int], companies: int, tick: datetime) -> dict:
    """Companies in five time zones, each with its sync hour at the tick's local hour; the
    integrations spread over them round-robin; every Procore integration's projects linked."""
    import httpx

    import fanout_accounts
    from hub import db
    from hub import integrations as store
    from hub.sync.procore_link import import_project, remote_projects

    engine = db.engine(url)
    t0 = time.perf_counter()
    ids: dict[str, list[int]] = {p: [] for p in PROVIDERS}
    with engine.begin() as conn:
        company_ids = []
        for c in range(companies):
            tz = TIMEZONES[c % len(TIMEZONES)]
            company_ids.append((store.create_company(conn, f"Fanout Company {c + 1:04d}", tz), tick.astimezone(ZoneInfo(tz)).hour))
        k = 0
        for provider in PROVIDERS:
            tokens = httpx.post(bases[provider] + "/_router/grants", json={"client_id": fanout_accounts.CLIENT_ID},
                                timeout=60).raise_for_status().json()["refresh_tokens"]
            for n in range(counts[provider]):
                company_id, hour = company_ids[k % companies]
                k += 1
                config = {**fanout_accounts.integration_config(provider, bases[provider], n), "sync": {"hour": hour}}
                credentials = {"client_id": fanout_accounts.CLIENT_ID, "client_secret": fanout_accounts.CLIENT_SECRET,
                               "refresh_token": tokens[n]}
                ids[provider].append(store.add_integration(conn, keyring, company_id=company_id, provider=provider,
                                                           name=f"{provider} {n}", config=config, credentials=credentials,
                                                           active=True))
    seeded_s = time.perf_counter() - t0

    def link(integration_id: int) -> int:
        projects = remote_projects(engine, keyring, integration_id)
        for p in projects:
            import_project(engine, keyring, integration_id, p.procore_id)
        return len(projects)

    t1 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        linked = sum(pool.map(link, ids["procore"]))
    log(f"seeded {sum(counts.values()):,} integrations over {companies} companies in {seeded_s:.1f} s; "
        f"linked {linked} Procore projects in {time.perf_counter() - t1:.1f} s")
    engine.dispose()
    return ids


# ---- Dagster ----------------------------------------------------------------------------------
def write_home(home: Path, grpc_port: int, granularity: str | None) -> Path:
    """deploy/dagster.yaml, unchanged unless `granularity` replaces its pools' granularity."""
    import yaml

    home.mkdir(parents=True)
    text = (ROOT / "deploy" / "dagster.yaml").read_text()
    if granularity:
        config = yaml.safe_load(text)
        config["concurrency"]["pools"]["granularity"] = granularity
        text = yaml.safe_dump(config, sort_keys=False)
    (home / "dagster.yaml").write_text(text)
    workspace = home / "workspace.yaml"
    workspace.write_text(textwrap.dedent(f"""\
        load_from:
          - grpc_server:
              host: 127.0.0.1
              port: {grpc_port}
              location_name: {LOCATION}
        """))
    return workspace


def wait_grpc(port: int, child: Child, timeout: float) -> float:
    from dagster._grpc.client import DagsterGrpcClient

    import socket

    t0 = time.monotonic()
    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass  # listening: only now ask gRPC (it prints every refused connection)
            if client.health_check_query() == "SERVING":
                return time.monotonic() - t0
        except Exception:
            pass
        if not child.alive():
            raise RuntimeError(f"the code server exited:\n{child.tail()}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"the code server did not serve within {timeout:.0f} s:\n{child.tail()}")
        time.sleep(0.5)


def next_tick_at(text: str | None) -> datetime:
    if text:
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    at = now.replace(hour=7, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def run_counts(conn) -> dict[str, dict[str, int]]:
    rows = conn.execute("SELECT pipeline_name, status, count(*) FROM runs GROUP BY 1, 2").fetchall()
    out: dict[str, dict[str, int]] = {}
    for job, status, n in rows:
        out.setdefault(job, {})[status] = n
    return out


def progress_line(counts: dict, mode: str, elapsed: float, expected: dict[str, int]) -> str:
    parts = []
    for p in PROVIDERS:
        c = counts.get(f"{p}_sync_job", {})
        done = sum(c.get(s, 0) for s in TERMINAL)
        running = c.get("STARTED", 0) + c.get("STARTING", 0)
        queued = c.get("QUEUED", 0) + c.get("NOT_STARTED", 0)
        fail = c.get("FAILURE", 0)
        parts.append(f"{p} {done}/{expected[p]} done ({fail} failed), {running} running, {queued} queued")
        if mode == "batched":
            b = counts.get(f"{p}_batch_job", {})
            parts[-1] += f", batches {sum(b.get(s, 0) for s in TERMINAL)}/{sum(b.values())} done"
    done_all = sum(sum(counts.get(f"{p}_sync_job", {}).get(s, 0) for s in TERMINAL) for p in PROVIDERS)
    rate = done_all / elapsed * 60 if elapsed > 0 else 0
    return f"t={elapsed:6.0f}s  {rate:5.1f}/min  load {loadavg()[0]:.1f}  | " + "; ".join(parts)


# ---- analysis ---------------------------------------------------------------------------------
def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in intervals], key=lambda x: (x[0], x[1]))
    peak = cur = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    return peak


def gather(dagster_url: str, hub_url: str) -> tuple[dict, dict]:
    """Run records with tags and their relevant events (Dagster's storage); sync_log per run."""
    import psycopg

    runs: dict[str, dict] = {}
    with psycopg.connect(dagster_url) as conn:
        for run_id, job, status, start, end, created in conn.execute(
                "SELECT run_id, pipeline_name, status, start_time, end_time, extract(epoch from create_timestamp) FROM runs"):
            runs[run_id] = {"job": job, "status": status, "start": start, "end": end, "created": float(created),
                            "tags": {}, "events": {}, "steps": {}}
        for run_id, key, value in conn.execute(
                "SELECT run_id, key, value FROM run_tags WHERE key IN ('dagster/partition', 'dagster/schedule_name', "
                "'dagster/run_key', 'bench/batch_run', 'bench/night_key')"):
            if run_id in runs:
                runs[run_id]["tags"][key] = value
        for run_id, kind, step, ts in conn.execute(
                "SELECT run_id, dagster_event_type, step_key, extract(epoch from timestamp) FROM event_logs "
                "WHERE dagster_event_type = ANY(%s) ORDER BY id", (list(EVENT_TYPES),)):
            r = runs.get(run_id)
            if r is None:
                continue
            ts, kind = float(ts), EVENT_TYPES[kind]
            if kind.startswith("STEP_"):
                s = r["steps"].setdefault(step, {})
                s["start" if kind == "STEP_START" else "end"] = ts
                if kind == "STEP_FAILURE":
                    s["failed"] = True
            else:
                r["events"].setdefault(kind, ts)
        # why a run failed, in Dagster's words (the sync_log has the hub's when a sync step failed)
        for run_id, body in conn.execute(
                "SELECT run_id, event FROM event_logs WHERE dagster_event_type IN ('STEP_FAILURE', 'PIPELINE_FAILURE') ORDER BY id"):
            r = runs.get(run_id)
            if r is None or "failure" in r:
                continue
            data = json.loads(body).get("dagster_event") or {}
            error = ((data.get("event_specific_data") or {}).get("error") or {})
            r["failure"] = f"{data.get('step_key') or 'run'}: {(error.get('message') or data.get('message') or '').strip()[:300]}"
        ticks = []
        for status, created, updated, body in conn.execute(
                "SELECT status, extract(epoch from create_timestamp), extract(epoch from update_timestamp), tick_body "
                "FROM job_ticks WHERE type = 'SCHEDULE'"):
            data = json.loads(body)
            ticks.append({"schedule": data.get("job_name") or data.get("instigator_name"), "status": status, "created": float(created),
                          "updated": float(data.get("end_timestamp") or updated),
                          "timestamp": data.get("timestamp"), "runs": len(data.get("run_ids") or []),
                          "skip_reason": data.get("skip_reason"), "error": (data.get("error") or {}).get("message")})
    sync: dict[str, dict] = {}
    with psycopg.connect(hub_url) as conn:
        for run_id, n, seconds, failed, error in conn.execute(
                "SELECT dagster_run_id, count(*), sum(extract(epoch from completed_at - started_at)), "
                "count(*) FILTER (WHERE status = 'failed'), "
                "(array_agg(errors::text ORDER BY id) FILTER (WHERE status = 'failed'))[1] "
                "FROM sync_log WHERE dagster_run_id IS NOT NULL GROUP BY 1"):
            sync[run_id] = {"rows": n, "seconds": float(seconds or 0), "failed": failed, "error": error}
    return runs, {"ticks": ticks, "sync": sync}


def run_phases(r: dict) -> dict | None:
    """Seconds of one run's phases, from its events; None for a run that never started."""
    ev, steps = r["events"], [s for s in r["steps"].values() if "start" in s and "end" in s]
    end = ev.get("RUN_SUCCESS") or ev.get("RUN_FAILURE") or ev.get("RUN_CANCELED") or r["end"]
    start = ev.get("RUN_START") or r["start"]
    if start is None or end is None:
        return None
    in_steps = sum(s["end"] - s["start"] for s in steps)
    first = min((s["start"] for s in steps), default=end)
    last = max((s["end"] for s in steps), default=end)
    enqueued, starting = ev.get("RUN_ENQUEUED"), ev.get("RUN_STARTING")
    out = {
        "queue_s": (starting - enqueued) if enqueued and starting else None,  # waiting for a slot (limits) and the dequeuer
        "launch_s": (start - starting) if starting else None,  # RUN_STARTING -> RUN_START: new process, imports, code location
        "setup_s": first - start,  # RUN_START -> first step: resources, plan
        "steps_s": in_steps,  # the useful work
        "between_steps_s": max(0.0, (last - first) - in_steps),  # Dagster bookkeeping between steps
        "teardown_s": end - last,  # last step -> run end event
        "run_s": end - (starting or start),  # launch -> end
        "steps": len(steps),
    }
    return out


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


def analyse(mode: str, runs: dict, extra: dict, counts: dict[str, int], tick_real: float, cpu: dict, peaks: dict) -> dict:
    sync_runs = {rid: r for rid, r in runs.items() if r["job"].endswith("_sync_job")}
    batch_runs = {rid: r for rid, r in runs.items() if r["job"].endswith("_batch_job")}
    ticks = [t for t in extra["ticks"] if t["runs"] or t["status"] != "SKIPPED"]
    tick_start = min([t["created"] for t in ticks if t["runs"]], default=tick_real)
    ends = [r["end"] for r in sync_runs.values() if r["end"]] + [r["end"] for r in batch_runs.values() if r["end"]]
    last_end = max(ends) if ends else None
    wall = (last_end - tick_start) if last_end else None
    n = len(sync_runs)
    ok = sum(1 for r in sync_runs.values() if r["status"] == "SUCCESS")
    by_provider = {}
    for p in PROVIDERS:
        mine = [r for r in sync_runs.values() if r["job"] == f"{p}_sync_job"]
        intervals = [(r["start"], r["end"]) for r in mine if r["start"] and r["end"]]
        phases = [ph for r in mine if (ph := run_phases(r))]
        failed = [r for r in mine if r["status"] != "SUCCESS"]
        errors = sorted({(extra["sync"].get(rid, {}).get("error") or "")[:300] for rid, r in sync_runs.items()
                         if r in failed and extra["sync"].get(rid, {}).get("error")})
        by_provider[p] = {
            "integrations": counts[p], "runs": len(mine), "succeeded": len(mine) - len(failed), "failed": len(failed),
            "peak_concurrent_runs": peak_overlap(intervals),
            "run_s": summary([ph["run_s"] for ph in phases]),
            "failed_run_s": summary([ph["run_s"] for r in failed if (ph := run_phases(r))]),
            "sync_errors": errors[:3],
            "dagster_failures": sorted({r["failure"] for r in failed if r.get("failure")})[:3],
        }
        if mode == "batched":
            b = [r for r in batch_runs.values() if r["job"] == f"{p}_batch_job"]
            by_provider[p]["batch_runs"] = len(b)
            by_provider[p]["peak_concurrent_batches"] = peak_overlap([(r["start"], r["end"]) for r in b if r["start"] and r["end"]])
    phases = [ph for r in sync_runs.values() if (ph := run_phases(r))]
    by_step: dict[str, list[float]] = {}
    for r in sync_runs.values():
        for key, st in r["steps"].items():
            if "start" in st and "end" in st:
                by_step.setdefault(key, []).append(st["end"] - st["start"])
    steps_by_key = {k: {"n": len(v), "mean_s": round(sum(v) / len(v), 3), "total_s": round(sum(v), 1)}
                    for k, v in sorted(by_step.items(), key=lambda kv: -sum(kv[1]))}
    keys = ("queue_s", "launch_s", "setup_s", "steps_s", "between_steps_s", "teardown_s", "run_s")
    per_run = {k: summary([ph[k] for ph in phases if ph[k] is not None], digits=3) for k in keys}
    total_run = sum(ph["run_s"] for ph in phases)
    total_steps = sum(ph["steps_s"] for ph in phases)
    out = {
        "mode": mode,
        "integrations": sum(counts.values()),
        "sync_runs": n, "succeeded": ok, "failed": n - ok,
        "ticks": [{k: t[k] for k in ("schedule", "status", "runs", "skip_reason", "error")} |
                  {"evaluate_and_submit_s": round(t["updated"] - t["created"], 2), "scheduled_for": t["timestamp"]} for t in ticks],
        "wall_s": round(wall, 1) if wall else None,
        "integrations_per_min": round(n / wall * 60, 1) if wall else None,
        "first_run_start_after_tick_s": round(min(r["start"] for r in sync_runs.values() if r["start"]) - tick_start, 2)
        if any(r["start"] for r in sync_runs.values()) else None,
        "peak_concurrent_sync_runs": peak_overlap([(r["start"], r["end"]) for r in sync_runs.values() if r["start"] and r["end"]]),
        "by_provider": by_provider,
        "per_run": per_run,
        "useful_share_of_run_time": round(total_steps / total_run, 3) if total_run else None,
        "steps_by_key": steps_by_key,
        "sync_log_s_per_run": _mean([extra["sync"].get(rid, {}).get("seconds") for rid in sync_runs]),
        "cpu_s": cpu,
        "cpu_s_per_integration": {k: round(v / n, 3) for k, v in cpu.items()} if n else None,
        "peaks": peaks,
    }
    if mode == "batched":
        b_phases = [ph for r in batch_runs.values() if (ph := run_phases(r))]
        out["batch_runs"] = len(batch_runs)
        out["batch_run"] = {k: summary([ph[k] for ph in b_phases if ph[k] is not None], digits=3)
                            for k in ("queue_s", "launch_s", "setup_s", "run_s")}
        # what one integration costs beyond its steps: its inner run's own overhead plus its share of
        # the batch process's launch and setup
        inner_overhead = [ph["run_s"] - ph["steps_s"] for ph in phases]
        launch_share = sum((ph["launch_s"] or 0) + ph["setup_s"] for ph in b_phases) / max(1, n)
        out["overhead_s_per_integration"] = round(sum(inner_overhead) / max(1, n) + launch_share, 3)
    else:
        out["overhead_s_per_integration"] = round((total_run - total_steps) / max(1, n), 3)
    out["useful_s_per_integration"] = round(total_steps / max(1, n), 3)
    return out


# ---- one mode ---------------------------------------------------------------------------------
def run_mode(mode: str, args, bases: dict[str, str], emulators: dict[str, Child], tick: datetime, logdir: Path) -> dict:
    from dagster import DagsterInstance

    from hub import migrate
    from hub.crypto import Keyring, generate_key

    counts = split(args.integrations)
    companies = args.companies or max(3, args.integrations // 5)
    log(f"[{mode}] {args.integrations:,} integrations ({', '.join(f'{p} {n}' for p, n in counts.items())}) over {companies} companies")
    with ExitStack() as stack:
        hub_url = stack.enter_context(fresh_database("bench_fanout_hub"))
        dagster_db = stack.enter_context(fresh_database("bench_fanout_dagster"))
        migrate.upgrade(hub_url)
        key = generate_key()
        ids = seed(hub_url, Keyring([key]), bases, counts, companies, tick)

        home = logdir / f"dagster_home_{mode}"
        grpc_port = free_port()
        workspace = write_home(home, grpc_port, args.pool_granularity)
        dagster_pg = dagster_db.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_pg, "PYTHONPATH": str(ROOT),
               "HUB_DATABASE_URL": hub_url.render_as_string(hide_password=False), "HUB_SECRET_KEYS": key,
               "HUB_BENCH_BATCHES": str(args.batches), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
        os.environ["DAGSTER_PG_URL"] = dagster_pg
        target = ["-m", "pipelines.definitions"] if mode == "per-run" else ["-f", str(ROOT / "bench" / "fanout_batched.py")]
        code = Child("code server", [str(VENV_BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
                                     "--location-name", LOCATION, "--working-directory", str(ROOT), *target],
                     env, logdir / f"codeserver_{mode}.log")
        stack.callback(code.stop)
        log(f"[{mode}] code server up in {wait_grpc(grpc_port, code, 180):.1f} s")

        instance = stack.enter_context(DagsterInstance.from_config(str(home)))
        keys = {p: [f"{p}-{i}" for i in ids[p]] for p in PROVIDERS}
        instance.add_dynamic_partitions("integrations", [k for p in PROVIDERS for k in keys[p]])
        for p in PROVIDERS:
            instance.add_dynamic_partitions(f"{p}_integrations", keys[p])

        # the daemon's scheduler reaches the tick at a real minute boundary, after it has had
        # time to load the workspace and record the schedules' start (before the tick)
        now = time.time()
        boundary = math.ceil((now + args.tick_lead) / 60) * 60
        offset = tick.timestamp() - boundary
        daemon = Child("daemon", [sys.executable, str(Path(__file__).resolve()), "--child", "daemon", "--clock-offset", str(offset),
                                  "--workspace", str(workspace)], env, logdir / f"daemon_{mode}.log")
        stack.callback(daemon.stop)
        if args.outage:
            import httpx

            httpx.post(bases[args.outage] + "/_router/faults", json={"error_rate_5xx": 1.0}, timeout=30).raise_for_status()
            stack.callback(lambda: httpx.delete(bases[args.outage] + "/_router/faults", timeout=30))
            log(f"[{mode}] outage: every {args.outage} API call answers 503")
        log(f"[{mode}] daemon started; its scheduler reaches {tick.isoformat()} at {datetime.fromtimestamp(boundary).strftime('%H:%M:%S')} "
            f"(in {boundary - now:.0f} s)")

        import psycopg

        post = postmaster_pid()
        roots = {"runs_and_code_server": code.pid, "daemon": daemon.pid, **{f"emulator_{p}": c.pid for p, c in emulators.items()}}
        while time.time() < boundary - 1:
            if not daemon.alive():
                raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
            time.sleep(0.5)
        cpu0 = {name: tree_cpu(pid) for name, pid in roots.items()}
        pg0 = tree_cpu(post) if post else 0.0
        busy0, _ = system_busy()
        load_start = loadavg()
        t_start = time.time()

        expected_runs = sum(counts.values())
        peaks = {"run_processes": 0, "code_server_tree_rss_mb": 0.0, "load1": 0.0}
        last_print, last_change, last_done = 0.0, time.time(), -1
        with psycopg.connect(plain(dagster_db), autocommit=True) as conn:
            while True:
                time.sleep(2)
                counts_now = run_counts(conn)
                peaks["run_processes"] = max(peaks["run_processes"], run_processes(code.pid))
                peaks["code_server_tree_rss_mb"] = round(max(peaks["code_server_tree_rss_mb"], tree_rss_mb(code.pid)), 1)
                peaks["load1"] = max(peaks["load1"], loadavg()[0])
                done = sum(sum(counts_now.get(f"{p}_sync_job", {}).get(s, 0) for s in TERMINAL) for p in PROVIDERS)
                batches_open = sum(n for job, c in counts_now.items() if job.endswith("_batch_job")
                                   for s, n in c.items() if s not in TERMINAL)
                elapsed = time.time() - t_start
                if time.time() - last_print >= args.progress_every:
                    log(f"[{mode}] " + progress_line(counts_now, mode, elapsed, counts))
                    last_print = time.time()
                if done != last_done:
                    last_done, last_change = done, time.time()
                if done >= expected_runs and not batches_open:
                    break
                if not daemon.alive():
                    raise RuntimeError(f"the daemon exited:\n{daemon.tail()}")
                if not code.alive():
                    raise RuntimeError(f"the code server exited:\n{code.tail()}")
                if elapsed > 120 and done == 0 and not any(counts_now.get(f"{p}_sync_job") for p in PROVIDERS) \
                        and not any(j.endswith("_batch_job") for j in counts_now):
                    raise RuntimeError(f"no run was requested 120 s after the tick; daemon log:\n{daemon.tail(60)}")
                if time.time() - last_change > args.stall_s:
                    raise RuntimeError(f"no run finished for {args.stall_s:.0f} s ({done}/{expected_runs} done); "
                                       f"daemon log:\n{daemon.tail(40)}")
                if elapsed > args.timeout_min * 60:
                    raise RuntimeError(f"timed out after {args.timeout_min} min with {done}/{expected_runs} done")
        log(f"[{mode}] " + progress_line(run_counts(psycopg.connect(plain(dagster_db))), mode, time.time() - t_start, counts))
        cpu = {name: round(tree_cpu(pid) - cpu0[name], 1) for name, pid in roots.items()}
        cpu["postgresql_all_databases"] = round((tree_cpu(post) - pg0) if post else 0.0, 1)
        busy1, _ = system_busy()
        cpu["machine_total"] = round(busy1 - busy0, 1)
        cpu["other"] = round(cpu["machine_total"] - sum(v for k, v in cpu.items() if k != "machine_total"), 1)
        peaks["load_at_start"] = load_start
        peaks["load_at_end"] = loadavg()
        daemon.stop()
        code.stop()
        runs, extra = gather(plain(dagster_db), plain(hub_url))
        result = analyse(mode, runs, extra, counts, t_start, cpu, peaks)
        result["companies"] = companies
        result["tick_at"] = tick.isoformat()
        result["outage"] = args.outage
        return result


def import_calibration(repeats: int = 3) -> dict:
    """CPU and RSS of one fresh interpreter importing the code location (what every run process
    does before its first step), and the top-level packages it spends them on."""
    cpu, rss = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", "import resource, pipelines.definitions as d; r = resource.getrusage(resource.RUSAGE_SELF); "
                              "print(r.ru_utime + r.ru_stime, open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        c, kb = out.stdout.split()
        cpu.append(float(c))
        rss.append(int(kb) / 1024)
    prof = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pipelines.definitions"], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stderr
    parts = {}
    for line in prof.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        name = name.rstrip()
        depth = len(name) - len(name.lstrip())
        if name.strip() in ("dagster", "pipelines.assets.ai", "pipelines.assets.billing", "hub.ai.scoring", "sklearn", "scipy",
                            "pipelines.assets.sync", "pipelines.partitions", "pipelines.definitions") or depth <= 1:
            parts.setdefault(name.strip(), round(int(cumulative) / 1e6, 3))
    top = dict(sorted(parts.items(), key=lambda kv: -kv[1])[:12])
    ge = subprocess.run([sys.executable, "-c", "import resource, great_expectations; r = resource.getrusage(resource.RUSAGE_SELF); "
                         "print(r.ru_utime + r.ru_stime, open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"],
                        capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    return {"cpu_s": summary(cpu, digits=2), "peak_rss_mb": summary(rss, digits=0), "import_s_by_module": top,
            "great_expectations_import": {"cpu_s": round(float(ge[0]), 2), "peak_rss_mb": round(int(ge[1]) / 1024)}}


# ---- report -----------------------------------------------------------------------------------
def _f(v, digits=1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def report_lines(data: dict) -> list[str]:
    m = data["machine"]
    lines = [
        "# Nightly fan-out",
        "",
        f"`{data['command']}`, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m.get('postgresql')} (max_connections {m.get('pg_max_connections')}), Dagster {m.get('packages', {}).get('dagster')}. "
        f"Load average before: {data['load_before']}. Emulators, code server, run processes, daemon and PostgreSQL share these CPUs.",
        "",
        f"Tick: {data['tick_at']} (the daemon's scheduler clock moved; everything else real time). Production dagster.yaml "
        f"(24 runs at once, 1 per partition, 8 per sync schedule, pools of 8; pools granularity: "
        f"{data['settings'].get('pool_granularity')}).",
        "",
        "| mode | integrations | runs | failed | wall s | integrations/min | peak runs QB / Xero / Procore | run s p50 (p90) | "
        "overhead s / integration | useful s / integration | CPU s / integration (runs + daemon + emulators + PG) | peak RSS of runs MB | load1 peak |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|---:|---:|",
    ]
    for r in data["modes"].values():
        bp = r["by_provider"]
        peaks = " / ".join(str(bp[p]["peak_concurrent_runs"]) for p in PROVIDERS)
        cpi = r["cpu_s_per_integration"] or {}
        cpu_text = (f"{_f(cpi.get('runs_and_code_server'), 2)} + {_f(cpi.get('daemon'), 2)} + "
                    f"{_f(sum(v for k, v in cpi.items() if k.startswith('emulator_')), 2)} + {_f(cpi.get('postgresql_all_databases'), 2)}")
        lines.append(f"| {r['mode']} | {r['integrations']:,} | {r['sync_runs']:,} | {r['failed']} | {_f(r['wall_s'])} | "
                     f"**{_f(r['integrations_per_min'])}** | {peaks} | {_f(r['per_run']['run_s']['p50'], 2)} "
                     f"({_f(r['per_run']['run_s']['p90'], 2)}) | {_f(r['overhead_s_per_integration'], 2)} | "
                     f"{_f(r['useful_s_per_integration'], 2)} | {cpu_text} | {_f(r['peaks']['code_server_tree_rss_mb'], 0)} | "
                     f"{_f(r['peaks']['load1'])} |")
    lines += ["", "Per run (per inner run in batched mode), seconds, p50 / p90 / mean:", "",
              "| mode | queue wait | launch (new process, imports) | setup | in steps (useful) | between steps | teardown | run |",
              "|---|---|---|---|---|---|---|---|"]
    for r in data["modes"].values():
        pr = r["per_run"]
        cells = [f"{_f(pr[k]['p50'], 2)} / {_f(pr[k]['p90'], 2)} / {_f(pr[k]['mean'], 2)}" for k in
                 ("queue_s", "launch_s", "setup_s", "steps_s", "between_steps_s", "teardown_s", "run_s")]
        lines.append(f"| {r['mode']} | " + " | ".join(cells) + " |")
        if r["mode"] == "batched":
            br = r["batch_run"]
            lines.append(f"| batched: the {r['batch_runs']} batch runs | {_f(br['queue_s']['p50'], 2)} | {_f(br['launch_s']['p50'], 2)} | "
                         f"{_f(br['setup_s']['p50'], 2)} | | | | {_f(br['run_s']['p50'], 1)} / {_f(br['run_s']['max'], 1)} (max) |")
    lines += ["", "Where the time in steps goes (mean s per run, the 8 largest totals; checks import great-expectations "
              "in the first check with rows of each process):", ""]
    for r in data["modes"].values():
        top = list(r["steps_by_key"].items())[:8]
        lines.append(f"- {r['mode']}: " + ", ".join(f"{k} {v['mean_s']}" for k, v in top))
    lines += ["", "Ticks (evaluation and submission of every run request, through the code server):", ""]
    for r in data["modes"].values():
        for t in r["ticks"]:
            lines.append(f"- {r['mode']}: {t['schedule']} {t['status']}, {t['runs']} runs, {t['evaluate_and_submit_s']} s"
                         + (f" ({t['error'][:200]})" if t.get("error") else ""))
    lines += ["", "CPU seconds during the batch, by process group:", ""]
    for r in data["modes"].values():
        lines.append(f"- {r['mode']}: " + ", ".join(f"{k} {v}" for k, v in r["cpu_s"].items()))
    for r in data["modes"].values():
        for p, b in r["by_provider"].items():
            if b["failed"]:
                lines.append(f"- {r['mode']} {p}: {b['failed']} failed runs, run s p50 {b['failed_run_s']['p50']} max "
                             f"{b['failed_run_s']['max']}; sync_log errors: {'; '.join(b['sync_errors']) or '-'}; "
                             f"Dagster: {'; '.join(b['dagster_failures']) or '-'}")
    cal = data["import_calibration"]
    lines += ["", f"One run process imports the code location first: {cal['cpu_s']['p50']} CPU s, peak RSS {cal['peak_rss_mb']['p50']} MB "
              "(median of 3 fresh interpreters). Cumulative import s by module: "
              + ", ".join(f"{k} {v}" for k, v in cal["import_s_by_module"].items()) + ". "
              f"A QuickBooks or Xero run's first check with rows then imports great-expectations: "
              f"{cal['great_expectations_import']['cpu_s']} CPU s, {cal['great_expectations_import']['peak_rss_mb']} MB alone."]
    if data.get("verdict"):
        lines += ["", "## Verdict", "", data["verdict"]]
    return lines


def verdict(data: dict) -> str | None:
    modes = data["modes"]
    if "per-run" not in modes or "batched" not in modes:
        return None
    a, b = modes["per-run"], modes["batched"]
    if not a["integrations_per_min"] or not b["integrations_per_min"]:
        return None
    ratio = b["integrations_per_min"] / a["integrations_per_min"]
    ca = (a["cpu_s_per_integration"] or {}).get("machine_total")
    cb = (b["cpu_s_per_integration"] or {}).get("machine_total")
    return (f"batched / per-run throughput: {ratio:.2f}x ({b['integrations_per_min']} vs {a['integrations_per_min']} integrations/min); "
            f"machine CPU per integration {cb} vs {ca} s; per-run overhead {a['overhead_s_per_integration']} s vs "
            f"{b['overhead_s_per_integration']} s per integration beside {a['useful_s_per_integration']} / "
            f"{b['useful_s_per_integration']} s of useful work.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--integrations", type=int, default=1000, help="integrations in all, split evenly over the three providers (default 1,000)")
    ap.add_argument("--companies", type=int, default=0, help="companies (default: integrations / 5)")
    ap.add_argument("--mode", choices=("per-run", "batched", "both"), default="both")
    ap.add_argument("--batches", type=int, default=8, help="batched mode: runs per provider (default 8, the per-schedule limit)")
    ap.add_argument("--pool-granularity", choices=("op", "run"),
                    help="replace deploy/dagster.yaml's pools granularity (default: as deployed)")
    ap.add_argument("--outage", choices=PROVIDERS, help="this provider answers 503 to every API call during the batch")
    ap.add_argument("--tick-at", help="the schedules' tick, ISO time (default: the next 07:00 UTC)")
    ap.add_argument("--tick-lead", type=float, default=40.0, help="seconds between the daemon's start and the tick, at least")
    ap.add_argument("--progress-every", type=float, default=15.0)
    ap.add_argument("--stall-s", type=float, default=300.0, help="give up when no run finishes for this long")
    ap.add_argument("--timeout-min", type=float, default=90.0)
    ap.add_argument("--out", default=str(RESULTS / "nightly_fanout"), help="results path without extension")
    ap.add_argument("--child", choices=("emulator", "daemon"), help=argparse.SUPPRESS)
    ap.add_argument("--provider", help=argparse.SUPPRESS)
    ap.add_argument("--accounts", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--clock-offset", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--workspace", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "emulator":
        return child_emulator(args)
    if args.child == "daemon":
        return child_daemon(args)

    modes = ["per-run", "batched"] if args.mode == "both" else [args.mode]
    tick = next_tick_at(args.tick_at)
    command = "python bench/nightly_fanout.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    started = time.monotonic()
    load_before = loadavg()
    log(f"{args.integrations:,} integrations, modes {', '.join(modes)}, tick {tick.isoformat()}; load average {load_before}")
    data: dict = {"benchmark": "nightly_fanout", "command": command, "load_before": load_before, "tick_at": tick.isoformat(),
                  "settings": {"integrations": args.integrations, "split": split(args.integrations), "batches": args.batches,
                               "outage": args.outage, "pool_granularity": args.pool_granularity or "as deployed",
                               "emulator_sizes": None}, "modes": {}}
    import fanout_accounts

    data["settings"]["emulator_sizes"] = fanout_accounts.SIZES
    with signals_as_exceptions(), tempfile.TemporaryDirectory(prefix="bench_fanout_") as tmp, ExitStack() as stack:
        logdir = Path(tmp)
        with fresh_database("bench_fanout_info") as info_url:
            info = machine(info_url)
        info["pg_max_connections"] = info.pop("pg_max_connections", None)
        data["machine"] = info
        log("import calibration (3 fresh interpreters importing pipelines.definitions)")
        data["import_calibration"] = import_calibration()
        log(f"  {data['import_calibration']['cpu_s']['p50']} CPU s, {data['import_calibration']['peak_rss_mb']['p50']} MB")
        counts = split(args.integrations)
        bases, emulators = {}, {}
        for p in PROVIDERS:
            port = free_port()
            child = Child(f"{p} emulator", [sys.executable, str(Path(__file__).resolve()), "--child", "emulator", "--provider", p,
                                            "--accounts", str(counts[p]), "--port", str(port)], dict(os.environ), logdir / f"emulator_{p}.log")
            stack.callback(child.stop)
            bases[p], emulators[p] = f"http://127.0.0.1:{port}", child
        for p in PROVIDERS:
            wait_http(bases[p] + "/_router/health", emulators[p], 300, f"the {p} emulator")
        log("emulators up: " + ", ".join(f"{p} {counts[p]} accounts" for p in PROVIDERS))
        try:
            for mode in modes:
                data["modes"][mode] = run_mode(mode, args, bases, emulators, tick, logdir)
                r = data["modes"][mode]
                log(f"[{mode}] {r['sync_runs']} runs ({r['failed']} failed) in {r['wall_s']} s: {r['integrations_per_min']} integrations/min")
        except BaseException:
            for f in sorted(logdir.glob("*.log")):
                log(f"--- tail of {f.name}")
                print("\n".join(f.read_text(errors="replace").splitlines()[-25:]))
            raise
        data["emulator_stats"] = {p: __import__("httpx").get(bases[p] + "/_router/stats", timeout=30).json() for p in PROVIDERS}
    data["verdict"] = verdict(data)
    data["elapsed_s"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    out.with_suffix(".md").write_text("\n".join(report_lines(data)) + "\n")
    print()
    print("\n".join(report_lines(data)))
    log(f"wrote {out.with_suffix('.json')} and .md in {data['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; processes stopped, databases dropped")
        sys.exit(130)
