"""`python -m emulators`: `run` starts every emulator and prints where each listens, `wait`
waits for them, `drive-orders` places orders on the delivery emulators; the `hub` CLI no
longer has these commands."""

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from emulators.registry import EMULATORS, run_all

EMULATORS_CLI = [sys.executable, "-m", "emulators"]
HUB = os.path.join(os.path.dirname(sys.executable), "hub")


def test_run_all_on_free_ports():
    with run_all(base_port=0) as running:
        assert set(running) == set(EMULATORS)
        for name, (emulator, url) in running.items():
            health = httpx.get(f"{url}/_emulator/health").json()
            assert (health["provider"], health["ok"]) == (name, True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job of a script inherits it


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_run_prints_ports_and_stops_on_interrupt(stop):
    """Ctrl-C or kill stops it cleanly, even started with SIGINT ignored (`cmd &` in a script)."""
    process = subprocess.Popen([*EMULATORS_CLI, "run", "--port-base", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_ignore_sigint)
    try:
        lines = [process.stdout.readline() for _ in EMULATORS]
        urls = {line.split()[0]: re.search(r"http://127\.0\.0\.1:\d+", line).group(0) for line in lines}
        assert set(urls) == set(EMULATORS)
        for name, url in urls.items():
            assert httpx.get(f"{url}/_emulator/health", timeout=5).json()["provider"] == name
        process.send_signal(stop)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopping emulators" in process.stderr.read()


def test_unknown_emulator_name_is_one_line_error():
    known = "quickbooks, xero, procore, ubereats, doordash, slack, sendgrid, twilio, webhook_sink, stripe, openai_chat"
    for command in ("run", "wait"):
        result = subprocess.run([*EMULATORS_CLI, command, "--only", "myspace"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.strip() == f"Error: unknown emulator(s) myspace; known: {known}"


def test_port_in_use_is_one_line_error():
    with run_all(["xero"], base_port=0) as running:
        port = running["xero"][1].rsplit(":", 1)[1]
        result = subprocess.run([*EMULATORS_CLI, "run", "--only", "xero", "--port-base", port],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: OSError: ") and "in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (the demo's own may be in use)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def test_wait_prints_each_running_emulator_and_fails_on_a_silent_service():
    first = _free_ports(2)
    with run_all(["xero", "webhook_sink"], base_port=first) as running:
        only = ["--only", "xero,webhook_sink", "--port-base", str(first)]
        ok = subprocess.run([*EMULATORS_CLI, "wait", *only, f"--also=xero again={running['xero'][1]}/_emulator/health"],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.splitlines() == [f"{name:<11} {url}" for name, (_, url) in running.items()] + [
            f"xero again  {running['xero'][1]}"]

        silent = subprocess.run([*EMULATORS_CLI, "wait", *only, "--timeout", "0.5",
                                 f"--also=hub web app={running['xero'][1]}/healthz"],  # 404: not the web app
                                capture_output=True, text=True, timeout=60)
    assert silent.returncode == 1
    assert silent.stderr == f"Error: hub web app did not answer at {running['xero'][1]}/healthz within 0.5 s\n"


def test_drive_orders_places_the_count_on_the_targets_in_turn():
    with run_all(["ubereats", "doordash"], base_port=0) as running:
        targets = ",".join(url for _, url in running.values())
        result = subprocess.run([*EMULATORS_CLI, "drive-orders", "--per-minute", "600", "--count", "4", "--targets", targets],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [f"placing about 600 orders/minute on {targets.replace(',', ', ')}; Ctrl-C to stop",
                                              "4 order(s) placed"]
        for name, (emulator, url) in running.items():
            assert len(httpx.get(f"{url}/_emulator/orders", timeout=5).json()["orders"]) == 2, name


def test_drive_orders_without_running_emulators_is_one_line_error():
    with run_all(["ubereats"], base_port=0) as running:
        gone = running["ubereats"][1]  # a port that was just free and is free again below
    result = subprocess.run([*EMULATORS_CLI, "drive-orders", "--count", "1", "--targets", gone],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ConnectError: ")


def test_the_hub_cli_has_no_emulator_commands():
    for command in (["emulators", "run", "--help"], ["demo", "orders", "--help"]):
        result = subprocess.run([HUB, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, command
        assert "No such command" in result.stderr, command
