"""Server-side request forgery guard for outgoing deliveries, applied at connect time.

A customer's endpoint URL is untrusted input: pointed at ``http://169.254.169.254/`` it
would make the hub fetch cloud credentials, at ``http://10.0.0.5:5432`` it would probe the
internal network. Checking the URL's host when the endpoint is saved is not enough,
because a hostname can resolve to a public address then and to a private one later (DNS
rebinding), or to several addresses of which only some are private.

So the check sits inside the HTTP client's connection step (`GuardedResolver`, the
resolver of aiohttp's connector), like Svix's ``NonLocalDnsResolver``:

1. resolve the host (`resolve`, one place tests can monkeypatch);
2. canonicalise every address (an IPv4-mapped IPv6 address ``::ffff:127.0.0.1``, NAT64
   ``64:ff9b::/96``, 6to4 and Teredo addresses are judged by the IPv4 address inside);
3. refuse the connection if **any** resolved address is blocked and not allow-listed;
4. connect to one of the checked IP addresses, never to the name, so a second resolution
   cannot hand out a different answer. TLS still verifies the certificate against the
   hostname (aiohttp passes the URL's host as SNI / server_hostname).

Blocked: everything Python's `ipaddress` does not call global (private, loopback,
link-local, shared/CGNAT 100.64/10, documentation, benchmarking, reserved, unspecified,
IPv6 unique-local and site-local), plus multicast and the cloud metadata addresses named in
`METADATA`. Redirects are never followed (``allow_redirects=False``), so a 302 cannot lead
around the guard; aiohttp itself refuses legacy numeric IPv4 hosts (``http://2130706433/``).

The allow-list (`AddressPolicy.allow`, from ``HUB_OUTBOUND_ALLOW``, e.g.
``127.0.0.1/32,::1``) admits blocked addresses inside its networks; tests and the demo
deliver to receivers on loopback this way. Nothing is allowed by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import typing
from dataclasses import dataclass
from typing import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "ALLOW_VAR",
    "AddressPolicy",
    "BlockedAddressError",
    "GuardedResolver",
    "check_literal",
    "METADATA",
    "blocked_reason",
    "resolve",
    "resolve_now",
]

ALLOW_VAR = "HUB_OUTBOUND_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddressError(Exception):
    """The destination resolved to an address the guard refuses. The message names the
    address and why, never the URL (which may carry credentials in its query)."""


def canonical(address: IPAddress) -> IPAddress:
    """The address that will really be reached: the IPv4 inside mapped/NAT64/6to4/Teredo."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` must not be connected to; None if it is a public unicast address."""
    address = canonical(address)
    if address in METADATA:
        return "a cloud metadata address"
    for attribute, label in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_unspecified", "unspecified"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, attribute):
            return label
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if not address.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses deliveries may connect to: public ones, plus `allow`."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> "AddressPolicy":
        parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else (text or ())) if p and p.strip()]
        networks = []
        for part in parts:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{ALLOW_VAR}: {part!r} is not an IP network (e.g. 127.0.0.1/32 or ::1)") from None
        return cls(tuple(networks))

    @classmethod
    def from_env(cls, environ: typing.Mapping[str, str] | None = None) -> "AddressPolicy":
        return cls.parse((environ if environ is not None else os.environ).get(ALLOW_VAR, ""))

    def check(self, address: IPAddress) -> str | None:
        """None if connecting to `address` is allowed, else the reason it is not."""
        reason = blocked_reason(address)
        if reason is None:
            return None
        real = canonical(address)
        for net in self.allow:
            if any(candidate.version == net.version and candidate in net for candidate in (real, address)):
                return None
        return reason

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.allow) or "(none)"


def _addresses(infos) -> list[IPAddress]:
    seen: dict[IPAddress, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen[ipaddress.ip_address(sockaddr[0].split("%", 1)[0])] = None
    return list(seen)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself). Tests replace
    this function to simulate DNS answers; the guard looks it up at each connection."""
    loop = asyncio.get_running_loop()
    return _addresses(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))


def resolve_now(host: str, port: int) -> list[IPAddress]:
    """`resolve`, blocking, for a check when an endpoint is saved (not the guard): every
    address `host` resolves to, or none when it does not resolve."""
    try:
        return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
    except (OSError, UnicodeError):
        return []


class GuardedResolver(AbstractResolver):
    """aiohttp's connector asks this resolver for the addresses of a host name and connects
    to exactly the addresses returned (never to the name): resolve, check every address,
    return only checked ones.

    aiohttp does not ask a resolver about IP literals (``http://10.0.0.1/``); those are
    checked by `check_literal` before the request (the sender calls it), which is the same
    check on the address that will be connected to.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[ResolveResult]:
        addresses = await resolve(host, port)  # looked up at each call: tests replace it
        if not addresses:
            raise OSError("the endpoint's host resolved to no address")
        for address in addresses:
            reason = self.policy.check(address)
            if reason is not None:
                raise BlockedAddressError(f"blocked: the endpoint resolves to {address} ({reason}); allow it with {ALLOW_VAR}")
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def check_literal(host: str | None, policy: AddressPolicy) -> None:
    """Raise `BlockedAddressError` if `host` is an IP literal the policy refuses."""
    if not host:
        return
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    reason = policy.check(address)
    if reason is not None:
        raise BlockedAddressError(f"blocked: the endpoint is {address} ({reason}); allow it with {ALLOW_VAR}")
