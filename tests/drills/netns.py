"""Hosts on one machine: a Linux bridge and one network namespace per host, each with a veth
"cable" to the bridge and an address on it (root only; `ip` from iproute2).

Why namespaces: the drills kill and cut off hosts (kill -9 every process of web1, pull
worker2's cable), which needs each service in its own network stack with its own address,
and this machine has no container engine. The test process stays in the root namespace,
which holds the bridge's own address, so it reaches every host directly.

Every name carries a random run id (bridge `hd<id>`, namespaces `hub<id>-<host>`, cables
`hv<id><n>`) and the /24 is one no route of the machine uses yet, so a run that crashed
before its teardown leaves nothing the next run trips over; `sweep()` removes such leftovers.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Sequence

PREFIX = "hub"  # namespaces: hub<id>-<host>


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no address or route of the machine overlaps."""
    used = [ipaddress.ip_network(word, strict=False) for word in (ip("-4", "route").split() + ip("-4", "-o", "addr").split())
            if "/" in word and word[0].isdigit()]
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(160, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the drill network")


def sweep() -> None:
    """Remove what crashed earlier runs left: their namespaces (and processes) and bridges."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if re.fullmatch(PREFIX + r"[0-9a-f]{6}-[a-z0-9]+", name):
            _kill_all(name)
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show", "type", "bridge").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if re.fullmatch(r"hd[0-9a-f]{6}", name):
            ip("link", "del", name, check=False)


def _pids(namespace: str) -> list[int]:
    out = ip("netns", "pids", namespace, check=False)
    return [int(p) for p in out.split()]


def _kill_all(namespace: str) -> list[int]:
    pids = _pids(namespace)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class Network:
    """The bridge and the hosts; `up()` builds them, `down()` removes everything (also
    every process still running in a namespace)."""

    def __init__(self, hosts: Sequence[str], workdir: Path):
        self.run_id = uuid.uuid4().hex[:6]
        self.hosts = list(hosts)
        self.bridge = f"hd{self.run_id}"
        self.subnet = _free_subnet()
        addresses = list(self.subnet.hosts())
        self.gateway = str(addresses[0])  # the bridge's own address: the test process
        self.address = {host: str(addresses[10 + n]) for n, host in enumerate(self.hosts)}
        self.cable = {host: f"hv{self.run_id}{n:02d}" for n, host in enumerate(self.hosts)}
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []

    def namespace(self, host: str) -> str:
        return f"{PREFIX}{self.run_id}-{host}"

    def up(self) -> "Network":
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            ns, outer, inner = self.namespace(host), self.cable[host], f"hi{self.run_id}{self.hosts.index(host):02d}"
            ip("netns", "add", ns)
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", ns)
            ip("-n", ns, "link", "set", inner, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{self.address[host]}/{self.subnet.prefixlen}", "dev", "eth0")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("link", "set", outer, "master", self.bridge)
            ip("link", "set", outer, "up")
        return self

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for host in self.hosts:
            ns = self.namespace(host)
            _kill_all(ns)
            ip("netns", "del", ns, check=False)
        ip("link", "del", self.bridge, check=False)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    # processes ---------------------------------------------------------------------------

    def spawn(self, host: str, argv: Sequence[str], log_name: str, env: dict | None = None,
              user: str | None = None, cwd: str | Path | None = None) -> subprocess.Popen:
        """Start `argv` inside `host`'s namespace (as `user` if given), output to a log file
        in the work directory; in a session of its own so it can be signalled as a group."""
        command = ["ip", "netns", "exec", self.namespace(host)]
        if user:
            command += ["runuser", "-u", user, "--"]
        log = open(self.workdir / f"{log_name}.log", "ab")
        proc = subprocess.Popen([*command, *argv], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], user: str | None = None, **kwargs) -> subprocess.CompletedProcess:
        command = ["ip", "netns", "exec", self.namespace(host)] + (["runuser", "-u", user, "--"] if user else [])
        return subprocess.run([*command, *argv], capture_output=True, text=True, check=True, **kwargs)

    def pids(self, host: str) -> list[int]:
        return _pids(self.namespace(host))

    def kill_host(self, host: str) -> list[int]:
        """kill -9 every process of the host, as when the machine dies; the pids killed."""
        return _kill_all(self.namespace(host))

    def cut(self, host: str) -> None:
        """Pull the host's cable at the switch: its side stays up, nothing gets through."""
        ip("link", "set", self.cable[host], "down")

    def reconnect(self, host: str) -> None:
        ip("link", "set", self.cable[host], "up")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_for(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not up yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def tcp_open(address: str, port: int, timeout: float = 0.5) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((address, port)) == 0
