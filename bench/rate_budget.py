"""What the shared rate budget costs per provider call (hub/providers/shared_budget.py).

    .venv/bin/python bench/rate_budget.py [--acquires 2000] [--processes 4]

On a fresh migrated database, with limits high enough that nobody ever waits (so only the
bookkeeping is timed), it times one `acquire()`:
- `per process (RateBudget)`: the in-memory sliding window, the old path;
- `SELECT 1 (floor)`: one round trip through the same pooled engine, autocommit: the least any
  database-kept budget costs;
- `shared, 1 window` (QuickBooks: minute) and `shared, 2 windows` (Xero: minute and day);
- `shared, N processes, one account`: N processes spending from one realm at once (they queue
  on the account's row lock): latency per acquire and acquires/s in all;
- `shared, N processes, N accounts`: the same on separate accounts (no shared row).
Writes bench/results/rate_budget.json and .md. A QuickBooks call takes tens to hundreds of
milliseconds; the figures here say what fraction of that the budget adds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fresh_database, log, machine, signals_as_exceptions, summary, write_json  # noqa: E402

HUGE = 10**9  # a limit nobody reaches: no waiting, only the bookkeeping


def _limits(windows: int):
    from hub.providers.ratebudget import Limit

    return (Limit(HUGE, 60, "minute"), Limit(HUGE, 86400, "day"))[:windows]


def timed_acquires(budget, n: int) -> list[float]:
    for _ in range(50):  # warm the pool and the function's plan
        budget.acquire()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        budget.acquire()
        times.append(time.perf_counter() - t0)
    return times


def _worker(url: str, account: str, windows: int, n: int, start_at: float) -> tuple[list[float], float]:
    from hub import db
    from hub.providers.shared_budget import SharedRateBudget

    budget = SharedRateBudget("quickbooks", _limits(windows), engine=db.engine(url), account=account)
    budget.acquire()
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    times = timed_acquires(budget, n)
    return times, time.perf_counter() - t0


def concurrent(url: str, processes: int, n: int, same_account: bool) -> dict:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        start_at = time.time() + 3.0
        jobs = [pool.apply_async(_worker, (url, "realm-1" if same_account else f"realm-{i}", 1, n, start_at))
                for i in range(processes)]
        results = [job.get(timeout=600) for job in jobs]
    times = [t for worker, _ in results for t in worker]
    wall = max(elapsed for _, elapsed in results)
    return {**summary(times, 1000, 3), "acquires_per_s": round(len(times) / wall)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--acquires", type=int, default=2000)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--out", default=str(RESULTS / "rate_budget"))
    args = ap.parse_args()
    n, p = args.acquires, args.processes

    import sqlalchemy as sa

    from hub import db, migrate
    from hub.providers.ratebudget import RateBudget
    from hub.providers.shared_budget import SharedRateBudget

    results: dict[str, dict] = {}
    with signals_as_exceptions(), fresh_database("hub_bench_budget") as url:
        info = machine(url)
        migrate.upgrade(url)
        engine = db.engine(url)
        text_url = url.render_as_string(hide_password=False)

        def record(name: str, figures: dict) -> None:
            results[name] = figures
            log(f"{name:<40} {figures}")

        record("per process (RateBudget)", summary(timed_acquires(RateBudget("quickbooks", _limits(1)), n), 1000, 4))

        class Floor:
            def acquire(self):
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("SELECT 1")).one()

        record("SELECT 1 (floor)", summary(timed_acquires(Floor(), n), 1000, 3))
        for windows, name in ((1, "shared, 1 window"), (2, "shared, 2 windows")):
            budget = SharedRateBudget("quickbooks", _limits(windows), engine=engine, account=f"solo-{windows}")
            record(name, summary(timed_acquires(budget, n), 1000, 3))
        record(f"shared, {p} processes, one account", concurrent(text_url, p, n, True))
        record(f"shared, {p} processes, {p} accounts", concurrent(text_url, p, n, False))
        engine.dispose()

    out = Path(args.out)
    write_json(out.with_suffix(".json"), {"machine": info, "acquires": n, "processes": p, "results_ms": results})
    lines = [
        "# Shared rate budget: cost per acquire",
        "",
        f"{n} acquires per row (per process in the concurrent rows), limits never reached; milliseconds. "
        f"Machine: {info['nproc']} CPUs, PostgreSQL {info.get('postgresql')} on {info.get('pg_host')}, {info['date']}.",
        "",
        "| path | p50 | p90 | p99 | max | mean | acquires/s (all processes) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50']} | {r['p90']} | {r['p99']} | {r['max']} | {r['mean']} | {r.get('acquires_per_s', '')} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out.with_suffix('.json')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
