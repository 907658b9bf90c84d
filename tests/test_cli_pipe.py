"""`hub … | head` (issue 15 item 8): the real `hub` console script, its stdout a pipe the reader
closes early, ends quietly: nothing on stderr (no `Error:` line, no traceback), exit code 1 as
Python's own recipe for SIGPIPE gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub import integrations as store

HUB = Path(sys.executable).with_name("hub")  # the console script pip made: `hub.cli:app`


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # this checkout's code
    return env


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """`hub ARGS` writing into a pipe whose reader is already gone: every write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([str(HUB), *args], stdout=write_end, stderr=subprocess.PIPE, env=_env(), timeout=120)
    finally:
        os.close(write_end)


@pytest.fixture
def many_integrations(clean_db):
    """More rows than a pipe holds (64 KiB), so `| head -1` closes it while hub still writes."""
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Pipe & Co")
        conn.execute(sa.text(
            "INSERT INTO integration (company_id, name, integration_type, provider, config, credentials) "
            "SELECT :c, 'Stripe ' || g, 'payment', 'stripe', '{}'::jsonb, '{}'::jsonb FROM generate_series(1, 2000) g"),
            {"c": company_id})
    return clean_db


@pytest.mark.parametrize("args", [["providers"], ["--help"], ["integration", "list"], ["webhooks", "dead-letters"]],
                         ids=" ".join)
def test_a_pipe_closed_before_hub_writes_is_quiet(many_integrations, args):
    done = run_into_closed_pipe(*args)
    assert done.stderr.decode() == "" and done.returncode == 1, done.stderr.decode()


def test_hub_integration_list_piped_into_head_prints_one_line_and_no_error(many_integrations):
    """As a person types it: head reads one line and exits; hub is still writing."""
    done = subprocess.run(f"'{HUB}' integration list | head -1; echo \"hub exit ${{PIPESTATUS[0]}}\" >&2",
                          shell=True, executable="/bin/bash", capture_output=True, env=_env(), timeout=120)
    assert done.stdout.decode().splitlines() == [done.stdout.decode().splitlines()[0]]
    assert done.stdout.decode().split()[:2] == ["id", "provider"]
    assert done.stderr.decode() in ("hub exit 1\n", "hub exit 0\n"), done.stderr.decode()
