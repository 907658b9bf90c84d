"""Workers as separate processes (`python -m hub.commands.webhooks dispatch`): killed
mid-delivery, two side by side; and one slow endpoint beside fast ones."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from hub.outbound import emit
from tests.test_outbound_support import Reply, attempts, company, endpoint, receiver, running, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_OUTBOUND_ALLOW": "127.0.0.1/32,::1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "hub.commands.webhooks", "dispatch", "--poll", "0.1", "--progress-every", "0", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_worker_killed_mid_delivery_delivers_again_with_the_same_webhook_id(db):
    acme = company(db)
    with receiver() as r:
        # the first request hangs (the worker is killed while waiting for it); later ones succeed
        r.rules["/hook"] = lambda n: Reply(200, delay=5.0) if n == 1 else Reply(200)
        endpoint_id, secret = endpoint(db, acme, r.url + "/hook", retry_policy={"timeout": 1.5})
        with db.begin() as conn:
            emit(conn, acme, "order.status_changed", {"order_id": "o-1", "status": "ready"})
        first = _worker("--lease", "4")
        try:
            wait_until(lambda: r.on("/hook"), timeout=20, what="first attempt to arrive")
            os.killpg(first.pid, signal.SIGKILL)  # mid-delivery: the request is open, nothing recorded
            first.wait(10)
        finally:
            _stop(first, signal.SIGKILL)
        row = attempts(db, endpoint_id)[0]
        assert row.status == "pending" and row.response_code is None  # the attempt was never recorded
        killed_at = time.time()
        second = _worker("--lease", "4")
        try:
            wait_until(lambda: attempts(db, endpoint_id)[0].status == "succeeded", timeout=20, what="re-delivery")
        finally:
            err = _stop(second)
    seen = r.on("/hook")
    assert len(seen) == 2
    assert seen[0].headers["webhook-id"] == seen[1].headers["webhook-id"] == row.message_id
    assert seen[1].at - killed_at >= 2.0  # not before the lease ran out
    for s in seen:
        Webhook(secret).verify(s.body, s.headers)
    rows = attempts(db, endpoint_id)
    assert len(rows) == 1 and rows[0].attempt == 1  # the same attempt, made again
    assert "stopped: 1 sent" in err


def test_two_workers_do_not_double_send(db):
    acme = company(db)
    with receiver() as r:
        ids = []
        for i in range(3):
            r.rules[f"/h{i}"] = Reply(200, delay=0.02)
            ids.append(endpoint(db, acme, r.url + f"/h{i}", name=f"h{i}", retry_policy={"concurrency": 2})[0])
        workers = [_worker(), _worker()]
        try:
            time.sleep(2.0)  # both connected and listening
            with db.begin() as conn:
                for n in range(100):
                    emit(conn, acme, "task.assigned", {"task_id": f"t-{n}"})
            wait_until(lambda: len(r.seen) >= 300 and sum(a.status == "succeeded" for a in attempts(db)) == 300,
                       timeout=60, what="300 deliveries")
            time.sleep(0.5)
        finally:
            errors = [_stop(w) for w in workers]
    counts = Counter(s.headers["webhook-id"] for s in r.seen)
    assert len(counts) == 300 and set(counts.values()) == {1}, counts.most_common(3)
    rows = attempts(db)
    assert len(rows) == 300 and all(a.attempt == 1 and a.status == "succeeded" for a in rows)
    sent = [int(re.search(r"stopped: (\d+) sent", e).group(1)) for e in errors]
    assert sum(sent) == 300 and all(n > 0 for n in sent), (sent, errors)


def test_a_slow_failing_endpoint_does_not_delay_the_others(db):
    acme = company(db)
    with receiver() as r:
        r.rules["/slow"] = Reply(500, b"slow failure", delay=2.0)
        slow, _ = endpoint(db, acme, r.url + "/slow", name="slow", retry_policy={"timeout": 5.0, "concurrency": 2})
        for i in range(3):
            endpoint(db, acme, r.url + f"/fast{i}", name=f"fast{i}")
        with running(db):
            for n in range(40):
                with db.begin() as conn:
                    emit(conn, acme, "schedule.changed", {"n": n})
                time.sleep(0.01)
            wait_until(lambda: all(len(r.on(f"/fast{i}")) == 40 for i in range(3)), timeout=20, what="fast deliveries")
            slow_seen = len(r.on("/slow"))
    assert slow_seen < 40  # the slow endpoint was still far behind ...
    lags = []
    for i in range(3):
        for s in r.on(f"/fast{i}"):
            emitted = dt.datetime.fromisoformat(json.loads(s.body)["timestamp"].replace("Z", "+00:00")).timestamp()
            lags.append(s.at - emitted)
    assert max(lags) < 1.0, max(lags)  # ... and the others were not held up by it
