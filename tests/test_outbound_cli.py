"""`hub webhooks ...` through CliRunner against the test database: the secret is shown
once (add, rotate-secret) and never again; errors are one clean line."""

from __future__ import annotations

import re

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from hub.commands.webhooks import app
from tests.test_outbound_support import attempts, company, receiver, running, wait_until

runner = CliRunner()


def hub(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def acme(clean_db, secret_keys, monkeypatch):
    monkeypatch.setenv("HUB_OUTBOUND_ALLOW", "127.0.0.1/32")
    company(clean_db, "Acme")
    return clean_db


def _secret(output: str) -> str:
    match = re.search(r"(whsec_[A-Za-z0-9+/=]+)", output)
    assert match, output
    return match.group(1)


def test_add_show_list_rotate_disable_enable_emit_and_deliveries(acme):
    with receiver() as r:
        result = hub("add", "--company", "Acme", "--name", "orders", "--url", r.url + "/hook?token=abc123secret",
                     "--events", "order.status_changed,webhook.test", "--retry-policy", '{"schedule": [1, 2]}')
        assert result.exit_code == 0, result.output
        secret = _secret(result.output)
        endpoint_id = re.search(r"endpoint (\d+)", result.output).group(1)

        for args in (("show", endpoint_id), ("list",), ("list", "--company", "Acme")):
            out = hub(*args)
            assert out.exit_code == 0, out.output
            assert secret not in out.output and secret[6:20] not in out.output
            assert "abc123secret" not in out.output  # URL credentials are masked too
        show = hub("show", endpoint_id).output
        assert "whsec_****" + secret[-4:] in show and "now, 1 s, 2 s" in show

        rotated = hub("rotate-secret", endpoint_id, "--grace", "600")
        assert rotated.exit_code == 0, rotated.output
        new = _secret(rotated.output)
        assert new != secret and "both signatures until" in rotated.output
        assert new not in hub("show", endpoint_id).output

        emitted = hub("emit", "--company", "Acme")
        assert emitted.exit_code == 0 and "webhook.test" in emitted.output, emitted.output
        with running(acme):
            wait_until(lambda: r.on("/hook"), what="delivery")
            wait_until(lambda: attempts(acme)[0].status == "succeeded", what="recorded")
        seen = r.on("/hook")[0]
        Webhook(secret).verify(seen.body, seen.headers)
        Webhook(new).verify(seen.body, seen.headers)

        log = hub("deliveries", "--endpoint", endpoint_id)
        assert log.exit_code == 0 and "succeeded" in log.output and "webhook.test" in log.output, log.output
        assert secret not in log.output and new not in log.output

        off = hub("disable", endpoint_id, "--reason", "receiver maintenance")
        assert off.exit_code == 0 and "disabled" in off.output
        assert "no (receiver maintenance)" in hub("show", endpoint_id).output
        refused = hub("replay", "--endpoint", endpoint_id, "--since", "1h")
        assert refused.exit_code == 1 and refused.output.startswith("Error: ") and "enable it" in refused.output
        assert hub("enable", endpoint_id).exit_code == 0
        replayed = hub("replay", "--endpoint", endpoint_id, "--since", "1h")
        assert replayed.exit_code == 0 and "0 deliveries scheduled again" in replayed.output, replayed.output


def test_errors_are_one_clean_line(acme):
    cases = [
        (("add", "--company", "Acme", "--name", "x", "--url", "http://127.0.0.1:9/x", "--events", "nope"), "unknown event type"),
        (("add", "--company", "Acme", "--name", "x", "--url", "http://169.254.169.254/", "--events", "*"), "blocked"),
        (("add", "--company", "Acme", "--name", "x", "--url", "ftp://example.com/", "--events", "*"), "http://"),
        (("add", "--company", "Acme", "--name", "x", "--url", "http://127.0.0.1:9/", "--events", "*", "--retry-policy", '{"tries": 3}'), "unknown retry policy key"),
        (("emit", "--company", "Acme", "--type", "order.created"), "unknown event type"),
        (("show", "999"), "no outbound webhook endpoint 999"),
        (("replay", "--endpoint", "1", "--since", "yesterday"), "neither an ISO 8601 time"),
    ]
    for args, message in cases:
        result = hub(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and message in result.output, (args, result.output)
        assert result.output.strip().count("\n") == 0, result.output
