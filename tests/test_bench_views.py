"""bench/views.py runs end to end on a tiny dataset: it seeds, serves the hub web app, signs
in through the login form, times the pages beside /healthz, explains their statements,
writes its results and drops its database. No timing is asserted (benchmarks are not
tests); the figures come from a run on the full dataset (bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


def test_views_bench_runs_on_a_tiny_dataset(server_url, tmp_path):
    env = {**os.environ, "HUB_BENCH_DATABASE_URL": server_url.render_as_string(hide_password=False),
           "PYTHONPATH": str(ROOT)}
    out = tmp_path / "views"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "views.py"), "--integrations", "20", "--companies", "2", "--rows", "2000",
         "--requests", "5", "--warmup", "1", "--cpu-requests", "5", "--profile-requests", "3", "--quiet-wait", "0",
         "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    result = json.loads(out.with_suffix(".json").read_text())
    data = result["dataset"]
    assert (data["companies"], data["integrations"], data["sync_log_rows"]) == (2, 20, 2000)
    assert data["company_integrations"] == 10
    assert data["integration_sync_log_rows"] > 0  # the measured integration is one that syncs
    measured = result["latency"]
    assert {"/healthz", "hub page", "overview tab"} <= set(measured)
    assert all(s["n"] == 5 and 0 < s["p50_ms"] <= s["p95_ms"] for s in measured.values())
    # the history tab is measured when the app has it, and said to be absent otherwise
    assert ("history tab" in measured) == result["history"].startswith("history page present")
    hub_page = result["explain"]["hub page"]
    assert hub_page["statements"] >= 1 and hub_page["connections"] >= 1  # the page's SQL was recorded and explained
    assert hub_page["app_cpu_ms"] > 0 and "function calls" in result["profiles"]["hub page"]
    assert "| hub page |" in out.with_suffix(".md").read_text()
    assert "hub page: p95" in done.stdout

    admin = sa.create_engine(server_url.set(database="postgres"))
    try:
        with admin.connect() as conn:
            left = conn.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": result["database"]})
    finally:
        admin.dispose()
    assert left == 0  # the script dropped its database
