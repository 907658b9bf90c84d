"""The SSRF guard: the address rules, and the guard at connect time in real deliveries
(the receiver really listens on 127.0.0.1, so a guard that failed open would deliver)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from hub.errors import ValidationError
from hub.outbound import emit
from hub.outbound import ssrf
from hub.outbound.ssrf import AddressPolicy, blocked_reason
from tests.test_outbound_support import LOOPBACK, attempts, company, endpoint, receiver, running, wait_until


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fc00::7", "private"),
        ("100.64.0.1", "not globally routable"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_rules(address, reason):
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def test_allow_list_admits_only_its_networks():
    policy = AddressPolicy.parse("127.0.0.1/32,::1")
    assert policy.check(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.check(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # the same address, mapped
    assert policy.check(ipaddress.ip_address("::1")) is None
    assert policy.check(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.check(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert AddressPolicy.from_env({"HUB_OUTBOUND_ALLOW": ""}).allow == ()
    with pytest.raises(ValueError, match="HUB_OUTBOUND_ALLOW"):
        AddressPolicy.parse("localhost")


@pytest.fixture
def db(clean_db, secret_keys):
    return clean_db


def _fire(engine, company_id):
    with engine.begin() as conn:
        emit(conn, company_id, "task.assigned", {"task_id": "t-1"})


def _settled(engine, endpoint_ids):
    return all(attempts(engine, e) and attempts(engine, e)[0].status != "pending" for e in endpoint_ids)


def test_loopback_private_link_local_metadata_and_mapped_addresses_are_blocked_at_connect(db):
    acme = company(db)
    with receiver() as r:
        port = r.url.rsplit(":", 1)[1]
        urls = {
            "loopback": f"http://127.0.0.1:{port}/hook",
            "ipv6-loopback": f"http://[::1]:{port}/hook",
            "mapped": f"http://[::ffff:127.0.0.1]:{port}/hook",
            "private": "http://10.255.255.1:9/hook",
            "link-local": "http://169.254.10.10:9/hook",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }
        everything = AddressPolicy.parse("0.0.0.0/0,::/0")  # saved while allowed; the worker is stricter
        ids = {name: endpoint(db, acme, url, name=name, address_policy=everything, retry_policy={"schedule": [0.1]})[0]
               for name, url in urls.items()}
        _fire(db, acme)
        started = time.monotonic()
        with running(db, address_policy=AddressPolicy()):
            wait_until(lambda: _settled(db, ids.values()), what="all attempts")
            time.sleep(0.3)
        assert time.monotonic() - started < 5  # refused before any connection: nothing waited for a timeout
    assert not r.seen  # nothing reached the receiver, although it listens on 127.0.0.1
    for name, endpoint_id in ids.items():
        rows = attempts(db, endpoint_id)
        assert len(rows) == 1, (name, rows)  # blocked is final: no retry
        assert rows[0].status == "failed" and rows[0].error.startswith("blocked: "), (name, rows[0].error)
        assert "HUB_OUTBOUND_ALLOW" in rows[0].error and "/hook" not in rows[0].error
    assert "a cloud metadata address" in attempts(db, ids["metadata"])[0].error
    assert "(loopback)" in attempts(db, ids["mapped"])[0].error


def test_allow_listed_loopback_is_delivered_including_the_mapped_form(db):
    acme = company(db)
    with receiver() as r:
        port = r.url.rsplit(":", 1)[1]
        plain, _ = endpoint(db, acme, f"http://127.0.0.1:{port}/plain", name="plain")
        mapped, _ = endpoint(db, acme, f"http://[::ffff:127.0.0.1]:{port}/mapped", name="mapped")
        _fire(db, acme)
        with running(db, address_policy=LOOPBACK):
            wait_until(lambda: r.on("/plain") and r.on("/mapped"), what="deliveries")


def test_a_hostname_resolving_to_a_private_address_is_blocked(db, monkeypatch):
    async def fake_resolve(host, port):
        assert host == "hooks.customer.test"
        return [ipaddress.ip_address("10.1.2.3")]

    monkeypatch.setattr(ssrf, "resolve", fake_resolve)
    acme = company(db)
    private, _ = endpoint(db, acme, "http://hooks.customer.test/hook", name="private")
    _fire(db, acme)
    with running(db, address_policy=LOOPBACK):
        wait_until(lambda: _settled(db, [private]), what="attempt")
    row = attempts(db, private)[0]
    assert row.status == "failed" and "resolves to 10.1.2.3 (private)" in row.error


def test_every_resolved_address_is_checked(db, monkeypatch):
    async def fake_resolve(host, port):
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("169.254.169.254")]

    monkeypatch.setattr(ssrf, "resolve", fake_resolve)
    acme = company(db)
    endpoint_id, _ = endpoint(db, acme, "http://rebind.customer.test/hook")
    _fire(db, acme)
    with running(db, address_policy=LOOPBACK):
        wait_until(lambda: _settled(db, [endpoint_id]), what="attempt")
    assert "resolves to 169.254.169.254 (a cloud metadata address)" in attempts(db, endpoint_id)[0].error


def test_connection_goes_to_the_checked_address_not_a_second_lookup(db, monkeypatch):
    """DNS rebinding: the first answer is checked; any later lookup would say 10.0.0.1.
    The name does not exist in real DNS, so the delivery only succeeds if the connection
    uses the checked address."""
    calls = []

    async def fake_resolve(host, port):
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1" if len(calls) == 1 else "10.0.0.1")]

    monkeypatch.setattr(ssrf, "resolve", fake_resolve)
    acme = company(db)
    with receiver() as r:
        port = r.url.rsplit(":", 1)[1]
        endpoint(db, acme, f"http://receiver.customer.test:{port}/hook")
        _fire(db, acme)
        with running(db, address_policy=LOOPBACK):
            wait_until(lambda: r.on("/hook"), what="delivery")
    assert calls == ["receiver.customer.test"]
    assert r.on("/hook")[0].headers["host"] == f"receiver.customer.test:{port}"


def test_blocked_ip_literal_is_refused_when_the_endpoint_is_saved(db):
    acme = company(db)
    for url in ("http://169.254.169.254/", "http://[::ffff:10.0.0.1]/x", "http://127.0.0.1:8080/x"):
        with pytest.raises(ValidationError, match="blocked"):
            endpoint(db, acme, url, address_policy=AddressPolicy())
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "http://user:pw@example.com/x", "http:///x"):
        with pytest.raises(ValidationError):
            endpoint(db, acme, url, address_policy=AddressPolicy())
