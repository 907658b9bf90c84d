"""Outbound webhook dispatch: deliveries/s and emitted-to-received lag, with 1 and with 50
subscribed endpoints (one of them failing slowly).

    .venv/bin/python bench/outbound_dispatch.py                      # defaults, about 3 min
    .venv/bin/python bench/outbound_dispatch.py --drain-events 5000 --seconds 10
    .venv/bin/python bench/outbound_dispatch.py --index              # with the proposed partial index

Processes (each in its own process group, stopped at the end):
- the **worker**: `python -m hub.commands.webhooks dispatch` (= `hub webhooks dispatch`), one
  process, default settings (per-endpoint concurrency 8, lease 150 s, poll 0.5 s), on a fresh
  migrated database, with `HUB_OUTBOUND_ALLOW=127.0.0.1/32`;
- the **receiver**: a minimal HTTP/1.1 server on asyncio/uvloop (this file, `--receiver`), so
  that the receiver costs little of the 2 CPUs. It answers 200 at once on every path, except
  `/slow`, which answers 503 after `--slow-delay` seconds (the failing, slow endpoint). It
  records the arrival time, `webhook-id` and the event's `timestamp` of every request;
- the **emitter**: a thread of this process calling `hub.outbound.emit`, one event per
  transaction, on its own psycopg connection.

Scenarios, each with its own company, endpoints and a new worker:
- `drain-1`: `--drain-events` events are emitted to 1 endpoint while no worker runs; then the
  worker starts. Throughput = deliveries / (last arrival - first arrival).
- `steady-1`: the worker runs; events are emitted at `--rate-1` per second for `--seconds`.
- `drain-50`: the same drain with 50 endpoints (49 answer at once, `/slow` fails slowly), so
  every event makes 50 deliveries; throughput counts the 49 healthy endpoints.
- `steady-50`: `--rate-50` events/s to the 50 endpoints for `--seconds`.

Lag is `arrival at the receiver - outbox_event.created_at` (the emitting transaction's
`now()`, in the payload's `timestamp`), for first attempts: it covers commit, NOTIFY,
fan-out, claim, signing and the HTTP request, so it is an upper bound of scheduled-to-sent.

Writes bench/results/outbound_dispatch.json and .md. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, Child, cpu_seconds, cpu_split, fresh_database, free_port, log, machine,  # noqa: E402
                     plain, process_cpu, signals_as_exceptions, summary, system_busy, wait_http, write_json)

_TIMESTAMP = re.compile(rb'"timestamp":"([^"]+)"')


# ---- receiver (runs as its own process) ----------------------------------------------------
def run_receiver(port: int, slow_delay: float) -> None:
    """A tiny HTTP/1.1 server: records (arrival, path, webhook-id, event timestamp)."""
    import uvloop

    records: list[tuple[float, str, str, str]] = []

    class Conn(asyncio.Protocol):
        def connection_made(self, transport):
            self.t, self.buf = transport, bytearray()

        def data_received(self, data):
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).split(b"\r\n")
                length, msg_id = 0, ""
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"webhook-id":
                        msg_id = value.strip().decode()
                if len(self.buf) < end + 4 + length:
                    return
                body = bytes(self.buf[end + 4: end + 4 + length])
                del self.buf[: end + 4 + length]
                method, path = head[0].split(b" ")[:2]
                self.request(method, path.decode(), msg_id, body)

        def request(self, method, path, msg_id, body):
            if method == b"GET" and path == "/_records":
                payload = json.dumps(records).encode()
                records.clear()
                self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
                return
            if method == b"GET":
                self.t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                return
            match = _TIMESTAMP.search(body)
            records.append((time.time(), path, msg_id, match.group(1).decode() if match else ""))
            if path == "/slow":
                asyncio.get_running_loop().call_later(slow_delay, self._reply, b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nslow")
            else:
                self._reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

        def _reply(self, data):
            if not self.t.is_closing():
                self.t.write(data)

    async def main():
        server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


# ---- the benchmark -------------------------------------------------------------------------
def _records(base: str) -> list[tuple[float, str, str, str]]:
    import httpx

    return [tuple(r) for r in httpx.get(base + "/_records", timeout=60).json()]


def _lag(record) -> float:
    emitted = dt.datetime.fromisoformat(record[3].replace("Z", "+00:00")).timestamp()
    return record[0] - emitted


class Emitter(threading.Thread):
    """Emits `count` events at `rate` per second (`per_tx` per transaction), on its own connection."""

    def __init__(self, dsn: str, company_id: int, count: int, rate: float, per_tx: int = 1):
        super().__init__(daemon=True)
        self.dsn, self.company_id, self.count, self.rate, self.per_tx = dsn, company_id, count, rate, per_tx
        self.emitted = 0
        self.elapsed = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        import psycopg

        from hub.outbound import emit

        try:
            with psycopg.connect(self.dsn) as conn:
                start = time.perf_counter()
                for first in range(0, self.count, self.per_tx):
                    pause = start + first / self.rate - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    with conn.transaction():
                        for n in range(first, min(first + self.per_tx, self.count)):
                            emit(conn, self.company_id, "order.status_changed", {"order_id": f"o-{n}", "status": "ready", "n": n})
                            self.emitted += 1
                self.elapsed = time.perf_counter() - start
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _setup(engine, keyring, name: str, base: str, endpoints: int) -> tuple[int, list[int]]:
    import sqlalchemy as sa

    from hub import integrations as store
    from hub.outbound import endpoints as ep
    from hub.outbound.ssrf import AddressPolicy

    allow = AddressPolicy.parse("127.0.0.1/32")
    with engine.begin() as conn:
        company_id = store.create_company(conn, name)
        ids = []
        for i in range(endpoints):
            path = "/slow" if endpoints > 1 and i == endpoints - 1 else f"/{name}/{i}"
            endpoint_id, _ = ep.add_endpoint(conn, keyring, company_id=company_id, name=f"ep{i}", url=base + path,
                                             events=["order.status_changed"], address_policy=allow)
            ids.append(endpoint_id)
        conn.execute(sa.text("SELECT 1"))
    return company_id, ids


def _worker(env: dict, logs: Path, name: str) -> Child:
    child = Child(f"worker-{name}", [sys.executable, "-m", "hub.commands.webhooks", "dispatch", "--progress-every", "5"],
                  env, logs / f"worker-{name}.log")
    return child


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _count_sent(engine, endpoint_ids: list[int]) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM webhook_delivery WHERE endpoint_id = ANY(:ids) AND status = 'succeeded'"),
                           {"ids": endpoint_ids})


def wait_quiet(limit: float = 0.15, most: float = 30.0) -> float:
    """Wait (at most `most` s) until the machine's CPUs are less than `limit` busy over 1 s,
    so another workload does not skew a scenario; returns the last busy fraction seen."""
    deadline = time.monotonic() + most
    while True:
        b0, t0 = system_busy()
        time.sleep(1.0)
        b1, t1 = system_busy()
        busy = (b1 - b0) / max(t1 - t0, 1e-9)
        if busy < limit or time.monotonic() > deadline:
            return round(busy, 3)
        log(f"machine {busy:.0%} busy; waiting for it to quieten")


def scenario(kind: str, n_endpoints: int, *, engine, keyring, dsn, env, base, logs, args, db_name) -> dict:
    name = f"{kind}-{n_endpoints}"
    company_id, ids = _setup(engine, keyring, name.replace("-", "_"), base, n_endpoints)
    healthy = ids[:-1] if n_endpoints > 1 else ids
    _records(base)  # reset
    worker: Child | None = None
    emitter: Emitter | None = None
    result: dict = {"scenario": name, "endpoints": n_endpoints, "healthy_endpoints": len(healthy), "busy_before": wait_quiet()}
    try:
        if kind == "drain":
            emitter = Emitter(dsn, company_id, count=args.drain_events, rate=1e9, per_tx=500)
            emitter.run()
            if emitter.error:
                raise emitter.error
            expected = emitter.emitted * len(healthy)
            log(f"{name}: {emitter.emitted} events emitted ({expected} healthy deliveries); starting the worker")
            before = process_cpu()
            worker = _worker(env, logs, name)
            started = time.time()
            _wait_for(lambda: _count_sent(engine, healthy) >= expected, args.timeout, f"{expected} deliveries ({name})")
        else:
            rate = args.rate_1 if n_endpoints == 1 else args.rate_50
            worker = _worker(env, logs, name)
            wait_http(base + "/health", None, 10, "receiver")
            time.sleep(3.0)  # the worker connects and LISTENs
            before = process_cpu()
            emitter = Emitter(dsn, company_id, count=int(rate * args.seconds), rate=rate)
            started = time.time()
            emitter.start()
            emitter.join()
            if emitter.error:
                raise emitter.error
            expected = emitter.emitted * len(healthy)
            log(f"{name}: {emitter.emitted} events in {emitter.elapsed:.1f} s ({emitter.emitted / emitter.elapsed:.0f}/s asked {rate}/s)")
            _wait_for(lambda: _count_sent(engine, healthy) >= expected, args.timeout, f"{expected} deliveries ({name})")
        time.sleep(0.5)
        after = process_cpu()
        worker_cpu = cpu_seconds(worker.pid)
        records = _records(base)
    finally:
        if worker is not None:
            worker.stop()
    good = [r for r in records if r[1] != "/slow"]
    slow = [r for r in records if r[1] == "/slow"]
    ids_seen = [r[2] for r in good]
    first, last = min(r[0] for r in good), max(r[0] for r in good)
    window = max(last - first, 1e-9)
    split = cpu_split(before, after, {os.getpid(), worker.pid}, {db_name})
    result.update({
        "events": emitter.emitted if emitter else None,
        "healthy_deliveries": len(good),
        "duplicates": len(ids_seen) - len(set(ids_seen)),
        "slow_endpoint_requests": len(slow),
        "deliveries_per_s": round(len(good) / window, 1),
        "first_to_last_s": round(window, 2),
        "from_worker_start_s": round(last - started, 2) if kind == "drain" else None,
        "lag_ms": summary([_lag(r) for r in good], scale=1000, digits=1),
        "slow_lag_ms": summary([_lag(r) for r in slow], scale=1000, digits=1) if slow else None,
        "cpu_s": {"worker": round(worker_cpu, 2), **{k: round(v, 2) for k, v in split.items()}},
        "worker_cpu_ms_per_delivery": round(worker_cpu * 1000 / max(1, len(good) + len(slow)), 3),
    })
    log(f"{name}: {result['deliveries_per_s']} deliveries/s, lag p50 {result['lag_ms']['p50']} ms p99 {result['lag_ms']['p99']} ms, "
        f"duplicates {result['duplicates']}, slow endpoint got {len(slow)}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--slow-delay", type=float, default=2.0, help="seconds /slow waits before its 503")
    ap.add_argument("--drain-events", type=int, default=20000, help="events in drain-1 (drain-50 uses a fiftieth)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the steady scenarios")
    ap.add_argument("--rate-1", type=float, default=500.0, help="events/s in steady-1")
    ap.add_argument("--rate-50", type=float, default=10.0, help="events/s in steady-50 (x50 deliveries)")
    ap.add_argument("--scenarios", default="drain-1,steady-1,drain-50,steady-50")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a scenario's deliveries")
    ap.add_argument("--index", action="store_true", help="create the partial index proposed for migration 0003 first")
    ap.add_argument("--out", default=str(RESULTS / "outbound_dispatch"), help="results path without extension")
    args = ap.parse_args()
    if args.receiver:
        run_receiver(args.receiver, args.slow_delay)
        return 0

    from hub import db, migrate
    from hub.crypto import Keyring, generate_key

    results = []
    with signals_as_exceptions(), fresh_database("bench_outbound") as url, tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        migrate.upgrade(url)
        engine = db.engine(url)
        if args.index:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE INDEX ix_webhook_delivery_due ON webhook_delivery (next_attempt_at) WHERE status = 'pending'")
        key = generate_key()
        keyring = Keyring([key])
        dsn = plain(url)
        env = {**os.environ, "HUB_DATABASE_URL": dsn, "HUB_SECRET_KEYS": key, "HUB_OUTBOUND_ALLOW": "127.0.0.1/32",
               "PYTHONUNBUFFERED": "1"}
        port = free_port()
        receiver = Child("receiver", [sys.executable, __file__, "--receiver", str(port), "--slow-delay", str(args.slow_delay)],
                         env, logs / "receiver.log")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/health", receiver, 10, "receiver")
            for item in args.scenarios.split(","):
                kind, n = item.strip().split("-")
                n = int(n)
                saved = args.drain_events
                if kind == "drain" and n > 1:
                    args.drain_events = max(1, saved // n)
                try:
                    results.append(scenario(kind, n, engine=engine, keyring=keyring, dsn=dsn, env=env, base=base, logs=logs,
                                            args=args, db_name=url.database))
                finally:
                    args.drain_events = saved
        finally:
            receiver.stop()
            engine.dispose()
        info = machine(url)
    data = {"machine": info, "settings": {k: v for k, v in vars(args).items() if k not in ("receiver", "out")}, "results": results}
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    out.with_suffix(".md").write_text(_markdown(data))
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def _markdown(data: dict) -> str:
    m, s = data["machine"], data["settings"]
    lines = [
        "# Outbound webhook dispatch", "",
        f"`python bench/outbound_dispatch.py{' --index' if s['index'] else ''}`, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), "
        f"Python {m['python']}, PostgreSQL {m.get('postgresql')} on {m.get('pg_host')} (synchronous_commit={m.get('pg_synchronous_commit')}). "
        "One worker process, the receiver, the emitter and PostgreSQL share these CPUs.", "",
        f"Partial index on pending deliveries: {'yes (proposed migration)' if s['index'] else 'no (schema as migrated)'}. "
        f"Slow endpoint: 503 after {s['slow_delay']} s. Lag = arrival - event created_at, first attempts, healthy endpoints.", "",
        "| scenario | events | healthy deliveries | deliveries/s | lag p50 ms | p90 ms | p99 ms | max ms | duplicates | slow endpoint requests | worker CPU ms/delivery | CPU s worker / postgres / other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["results"]:
        lag, cpu = r["lag_ms"], r["cpu_s"]
        lines.append(f"| {r['scenario']} | {r['events']:,} | {r['healthy_deliveries']:,} | {r['deliveries_per_s']:,} | {lag['p50']} | {lag['p90']} | "
                     f"{lag['p99']} | {lag['max']} | {r['duplicates']} | {r['slow_endpoint_requests']} | {r['worker_cpu_ms_per_delivery']} | "
                     f"{cpu['worker']} / {cpu['postgres']} / {cpu['other']} |")
    lines.append("")
    by = {r["scenario"]: r for r in data["results"]}
    for name in ("drain-1", "drain-50"):
        if name in by:
            rate = by[name]["deliveries_per_s"]
            lines.append(f"- Throughput {name}: {rate:,} deliveries/s: target 'at least 500/s' {'MET' if rate >= 500 else 'NOT MET'}.")
    if "steady-50" in by:
        p99 = by["steady-50"]["lag_ms"]["p99"]
        lines.append(f"- Lag p99 of the 49 healthy endpoints beside the slow failing one (steady-50): {p99} ms: "
                     f"target 'under 1 s' {'MET' if p99 is not None and p99 < 1000 else 'NOT MET'}.")
    if "steady-1" in by:
        lag = by["steady-1"]["lag_ms"]
        lines.append(f"- Lag with 1 endpoint at {data['settings']['rate_1']:g} events/s (steady-1): p50 {lag['p50']} ms, p99 {lag['p99']} ms.")
    lines.append(f"- Duplicates (a webhook-id received twice): {sum(r['duplicates'] for r in data['results'])}.")
    lines.append("- In drains the lag is mostly queueing behind the backlog (all events exist before the worker starts); "
                 "in steady runs deliveries/s equals the emit rate.")
    for r in data["results"]:
        if r["scenario"].startswith("drain"):
            lines.append(f"- {r['scenario']}: first to last arrival {r['first_to_last_s']} s; from worker start {r['from_worker_start_s']} s "
                         f"(includes start-up and fan-out of the backlog).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
