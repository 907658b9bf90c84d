"""`hub emulators run` starts every emulator and prints where each listens."""

import os
import re
import signal
import subprocess
import sys

import httpx

from emulators.registry import EMULATORS, run_all


def test_run_all_on_free_ports():
    with run_all(base_port=0) as running:
        assert set(running) == set(EMULATORS)
        for name, (emulator, url) in running.items():
            health = httpx.get(f"{url}/_emulator/health").json()
            assert (health["provider"], health["ok"]) == (name, True)


def test_cli_prints_ports_and_stops_on_interrupt():
    hub = os.path.join(os.path.dirname(sys.executable), "hub")
    process = subprocess.Popen([hub, "emulators", "run", "--port-base", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in EMULATORS]
        urls = {line.split()[0]: re.search(r"http://127\.0\.0\.1:\d+", line).group(0) for line in lines}
        assert set(urls) == set(EMULATORS)
        for name, url in urls.items():
            assert httpx.get(f"{url}/_emulator/health", timeout=5).json()["provider"] == name
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopping emulators" in process.stderr.read()


def test_unknown_emulator_name_is_one_line_error():
    hub = os.path.join(os.path.dirname(sys.executable), "hub")
    result = subprocess.run([hub, "emulators", "run", "--only", "myspace"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: unknown emulator(s) myspace; known: quickbooks, xero, procore, ubereats, doordash, slack, sendgrid, twilio, webhook_sink"
