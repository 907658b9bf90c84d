"""Where the hub receiver's CPU goes, per request, without HTTP (a companion to webhook_ingest.py).

    .venv/bin/python bench/receiver_profile.py [--requests 2000]

In one process, on a fresh migrated database, for signed Uber Eats `orders.notification`
bodies with unique event ids, it times (wall and CPU per request, sequentially):
- `verify + parse`: `hub.inbound.verify.verify` and `hub.inbound.events.parse`;
- `hub store`: `hub.inbound.ingest.store_batch` for one request in its own transaction, on
  a plain psycopg 3 connection, i.e. what the receiver's group-commit writer does when
  requests arrive one at a time;
- `hub store, 16 per commit`: the same with 16 requests sharing one transaction (the writer
  under 16 concurrent senders), per request;
- `same rows, plain psycopg`: the two INSERTs the hub makes (inbound_event, external_order,
  ON CONFLICT DO NOTHING) in one transaction with hand-written SQL, one statement each;
- `receiver app (ASGI), 1 at a time` and `..., 16 concurrent`: the whole web app
  (`hub.web.app.create_app`: routing, endpoint cache, verify, parse, group commit) called as
  ASGI in this process's event loop (uvloop when installed, as uvicorn), without the HTTP
  parser and sockets; CPU per request is what the receiver adds to the server's HTTP stack;
then a cProfile of the receiver app with 16 concurrent requests.
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


async def drive_app(app, path: str, bodies: list[tuple[bytes, str]], concurrency: int) -> dict:
    """Send the signed bodies through the ASGI app, `concurrency` at a time; statuses counted."""
    import asyncio

    statuses: dict[int, int] = {}
    pending = list(reversed(bodies))

    async def one(body: bytes, signature: str) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                             (b"x-uber-signature", signature.encode()), (b"content-length", str(len(body)).encode())],
                 "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def sender() -> None:
        while pending:
            await one(*pending.pop())

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--out", default=str(RESULTS / "receiver_profile"))
    args = ap.parse_args()
    n = args.requests

    import psycopg

    from hub.crypto import Keyring
    from hub.inbound.events import parse
    from hub.inbound.provider_endpoints import load_inbound
    from hub.inbound.ingest import Delivery, store_batch
    from hub.inbound.verify import InboundRequest, verify

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
        conn.close()

        import asyncio

        from hub.web.app import create_app

        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        app_engine = sa.create_engine(url)
        app = create_app(app_engine)
        path = f"/webhooks/ubereats/{endpoint_id}"

        def signed(tag: str, count: int) -> list[tuple[bytes, str]]:
            return [(body, inbound.headers["x-uber-signature"]) for body, inbound in (request(tag, i) for i in range(count))]

        loop.run_until_complete(drive_app(app, path, signed("warm", 320), 16))
        profiler = cProfile.Profile()
        for name, concurrency in (("receiver app (ASGI), 1 at a time", 1), ("receiver app (ASGI), 16 concurrent", 16)):
            bodies = signed(f"a{concurrency}", n)  # signed beforehand: the sender's work is not the receiver's
            c0, t0 = time.process_time(), time.perf_counter()
            statuses = loop.run_until_complete(drive_app(app, path, bodies, concurrency))
            results[name] = {"wall_ms": round((time.perf_counter() - t0) / n * 1000, 3),
                             "cpu_ms": round((time.process_time() - c0) / n * 1000, 3)}
            if statuses != {200: n}:
                raise RuntimeError(f"{name}: statuses {statuses}, expected {n} x 200")
            log(f"{name:<26} {results[name]}")
        bodies = signed("prof", n)  # a separate run under the profiler (its cost is not in the figures above)
        profiler.enable()
        loop.run_until_complete(drive_app(app, path, bodies, 16))
        profiler.disable()
        loop.run_until_complete(app.state.committer.close())
        loop.close()
        app_engine.dispose()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)

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
          "Wall time of the receiver app lines is the whole run divided by the requests (16 concurrent: throughput, "
          "not latency); the 1-at-a-time line includes each group commit's round trip and flush.", "",
          "cProfile of the receiver app, 16 concurrent (top 15 by own time; the profiler's own cost inflates "
          "the small functions):", "",
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
