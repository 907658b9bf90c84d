"""The settings pages' foundation without a browser: the session key, relative times, and
that the webhook receiver's path stays free of the pages' middleware."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from emulators.serve import serve
from hub.crypto import generate_key
from hub.web import times
from hub.web.app import create_app
from hub.web.session import WebSettings, session_secret

ROOT = Path(__file__).resolve().parent.parent


def test_the_session_key_is_explicit_or_derived_from_the_encryption_keys():
    first, second = generate_key(), generate_key()
    assert session_secret({"HUB_SESSION_SECRET": "explicit", "HUB_SECRET_KEYS": first}) == "explicit"
    derived = session_secret({"HUB_SECRET_KEYS": f"{first},{second}"})
    assert derived == session_secret({"HUB_SECRET_KEYS": first})  # stable: restarts and workers agree
    assert derived != session_secret({"HUB_SECRET_KEYS": second}) and first not in derived and len(derived) == 64
    random_one = session_secret({})
    assert random_one != session_secret({}) and len(random_one) == 64
    assert WebSettings.from_env(None, {"HUB_SECRET_KEYS": first, "HUB_SESSION_IDLE_MINUTES": "5"}).idle_seconds == 300
    assert "hidden-value" not in repr(WebSettings.from_env(None, {"HUB_SESSION_SECRET": "hidden-value"}))


@pytest.mark.parametrize("ago, text", [
    (timedelta(seconds=10), "just now"), (timedelta(minutes=1), "1 minute ago"), (timedelta(minutes=5), "5 minutes ago"),
    (timedelta(hours=3), "3 hours ago"), (timedelta(days=2), "2 days ago"), (timedelta(days=400), "1 year ago"),
    (-timedelta(minutes=10), "in 10 minutes"),
])
def test_relative_times(ago, text):
    now = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    assert times.relative(now - ago, now) == text


def test_exact_times_are_in_the_company_timezone():
    when = datetime(2026, 12, 7, 17, 30, tzinfo=timezone.utc)
    assert times.exact(when, "America/New_York") == "2026-12-07 12:30:00 EST"
    assert times.exact(when, "Not/AZone") == "2026-12-07 17:30:00 UTC"
    assert times.iso(when) == "2026-12-07T17:30:00+00:00"


def test_the_webhook_path_and_healthz_do_not_pass_through_the_pages_middleware(clean_db, secret_keys):
    with serve(create_app(clean_db, settings=WebSettings(secret="s"))) as url:
        health = httpx.get(url + "/healthz")
        webhook = httpx.post(url + "/webhooks/ubereats/999", content=b"{}")
        wrong_method = httpx.get(url + "/webhooks/ubereats/999")
        page = httpx.get(url + "/login")
    for answer in (health, webhook, wrong_method):
        assert "content-security-policy" not in answer.headers and "set-cookie" not in answer.headers
    assert health.json() == {"ok": True} and webhook.status_code == 404 and wrong_method.status_code == 405
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"] and "hub_session=" in page.headers["set-cookie"]


def test_the_vendored_static_files_are_the_ones_the_script_names():
    vendor = ROOT / "hub" / "web" / "static" / "vendor"
    script = (ROOT / "scripts" / "vendor-static.sh").read_text()
    versions = dict(line.split(" ") for line in (vendor / "VERSIONS").read_text().splitlines())
    assert f"HTMX_VERSION={versions['htmx.org']}" in script and f"PICO_VERSION={versions['@picocss/pico']}" in script
    assert f"UPLOT_VERSION={versions['uplot']}" in script and len(versions) == 3
    copied = set(re.findall(r'"\$dest/([^"]+)"', script)) - {"VERSIONS"}
    assert {"htmx.min.js", "pico.min.css", "uPlot.iife.min.js"} <= copied
    assert {p.name for p in vendor.iterdir()} == copied | {"VERSIONS"}  # nothing vendored by hand, nothing missing


def test_the_served_app_imports_the_checks_library_in_the_background_at_start(database_url, secret_keys):
    """The first export preview must not wait seconds for great-expectations' import: the
    served app (app_from_env) imports it in a thread when it starts. In a fresh process, so
    that another test's import cannot make this pass."""
    script = (
        "import sys, threading\n"
        "from starlette.testclient import TestClient\n"
        "from hub.web.app import app_from_env\n"
        "assert 'great_expectations' not in sys.modules\n"
        "with TestClient(app_from_env()) as client:\n"
        "    assert client.get('/healthz').status_code == 200\n"
        "    [t.join(120) for t in threading.enumerate() if t.name == 'warm-checks']\n"
        "    print('great_expectations' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
