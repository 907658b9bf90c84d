"""Where the hub receiver's CPU goes, per request, without HTTP (a companion to webhook_ingest.py).

    .venv/bin/python bench/receiver_profile.py [--requests 2000]

In one process, on a fresh migrated database, for signed Uber Eats `orders.notification`
bodies with unique event ids, it times (wall and CPU per request, sequentially):
- `verify + parse`: `hub.webhooks.verify.verify` and `hub.orders.events.parse`;
- `hub store`: `hub.webhooks.ingest.store_batch` for one request in its own transaction, on
  a plain psycopg 3 connection, i.e. what the receiver's group-commit writer does when
  requests arrive one at a time;
- `hub store, 16 per commit`: the same with 16 requests sharing one transaction (the writer
  under 16 concurrent senders), per request;
- `same rows, plain psycopg`: the two INSERTs the hub makes (inbound_event, external_order,
  ON CONFLICT DO NOTHING) in one transaction with hand-written SQL;
then a cProfile of the hub store.
Writes bench/results/receiver_profile.json and .md.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fresh_database, log, machine, plain, signals_as_exceptions, write_json  # noqa: E402
from webhook_ingest import UE_CREDENTIALS, _body, setup_hub_database  # noqa: E402


def timed(fn, n: int) -> dict:
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return {"wall_ms": round((time.perf_counter() - t0) / n * 1000, 3), "cpu_ms": round((time.process_time() - c0) / n * 1000, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--out", default=str(RESULTS / "receiver_profile"))
    args = ap.parse_args()
    n = args.requests

    import psycopg

    from hub.crypto import Keyring
    from hub.orders.events import parse
    from hub.webhooks.endpoints import load_inbound
    from hub.webhooks.ingest import Delivery, store_batch
    from hub.webhooks.verify import InboundRequest, verify

    secret = UE_CREDENTIALS["client_secret"].encode()
    results: dict[str, dict] = {}
    with signals_as_exceptions(), fresh_database("hub_bench_profile") as url:
        info = machine(url)
        keys, integration_id, endpoint_id = setup_hub_database(url)
        os.environ["HUB_SECRET_KEYS"] = keys
        conn = psycopg.connect(plain(url))
        import sqlalchemy as sa

        lookup = sa.create_engine(url)
        with lookup.connect() as sa_conn:
            endpoint = load_inbound(sa_conn, Keyring.from_env(), endpoint_id)
        lookup.dispose()
        run = uuid.uuid4().hex[:6]

        def request(tag: str, i: int):
            body = _body(f"{run}-{tag}-{i}")
            return body, InboundRequest(body=body, headers={"x-uber-signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
                                                            "content-type": "application/json"},
                                        url="http://127.0.0.1/", content_type="application/json")

        def verify_parse(i):
            body, inbound = request("v", i)
            verify(endpoint.scheme, inbound, endpoint.secret)
            return parse("ubereats", json.loads(body), body)

        def delivery(tag: str, i: int) -> Delivery:
            body, _ = request(tag, i)
            return Delivery(endpoint.integration_id, endpoint.provider, parse("ubereats", json.loads(body), body))

        def hub_store(i, tag="h"):
            with conn.transaction():
                store_batch(conn, [delivery(tag, i)])

        def hub_store_16(i):
            if i % 16 == 0:  # 16 requests per commit; timed per request
                with conn.transaction():
                    store_batch(conn, [delivery("g", i + k) for k in range(16)])

        def plain_store(i):
            body, _ = request("p", i)
            event_ = parse("ubereats", json.loads(body), body)[0]
            payload = body.decode()
            with conn.transaction():
                conn.execute("INSERT INTO inbound_event (integration_id, provider, event_id, event_type, payload, processed_at) "
                             "VALUES (%s, 'ubereats', %s, %s, %s::jsonb, now()) ON CONFLICT (integration_id, event_id) DO NOTHING "
                             "RETURNING id", (integration_id, event_.event_id, event_.event_type, payload))
                conn.execute("INSERT INTO external_order (integration_id, external_id, raw_data, status, status_history) "
                             "VALUES (%s, %s, %s::jsonb, 'received', '[]'::jsonb) "
                             "ON CONFLICT (integration_id, external_id) DO NOTHING RETURNING id",
                             (integration_id, event_.order_id, payload))

        for name, fn in (("verify + parse", verify_parse), ("hub store", hub_store),
                         ("hub store, 16 per commit", hub_store_16), ("same rows, plain psycopg", plain_store)):
            fn(-16)
            for i in range(0, 160):  # warm caches and prepared statements
                fn(10_000_000 + i)
            results[name] = timed(fn, n)
            log(f"{name:<26} {results[name]}")

        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            hub_store(30_000_000 + i)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        conn.close()

    top = "\n".join(line for line in text.getvalue().splitlines() if line.strip())
    data = {"benchmark": "receiver_profile", "machine": info, "requests": n, "per_request": results,
            "cprofile_top_tottime": top}
    out = Path(args.out)
    write_json(out.with_suffix(".json"), data)
    m = info
    md = ["# Hub receiver: CPU per request, without HTTP", "",
          f"`python bench/receiver_profile.py`, {m['date']}: {m['nproc']} CPUs, Python {m['python']}, PostgreSQL {m.get('postgresql')}. "
          f"{n} sequential requests per line, in one process.", "",
          "| step | wall ms / request | CPU ms / request |", "|---|---:|---:|",
          *[f"| {k} | {v['wall_ms']} | {v['cpu_ms']} |" for k, v in results.items()], "",
          "cProfile of the hub store (top 15 by own time; psycopg `wait` is time blocked on the server):", "",
          "```", top, "```", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    log(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; database dropped")
        sys.exit(130)
