"""`python -m emulators`: run the provider emulators, wait until they answer, drive demo orders.

The emulators are the hub's test doubles, so their commands live here and not in the `hub`
CLI: the product never imports them (an import-linter contract in pyproject.toml checks it).
An expected failure (an unknown emulator name, a port in use, an emulator that does not
answer) prints one `Error:` line and exits 1, like the `hub` commands.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import List, Optional

import httpx
import typer
from typer.core import TyperGroup

from emulators.order_driver import OrderDriver
from emulators.registry import DELIVERY, EMULATORS, run_all


class UsageError(Exception):
    """A failure the user can fix from the command line; shown as one `Error:` line."""


class _OneLineErrors(TyperGroup):
    """Turns expected failures into `Error: <one line>` and exit code 1 (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `... | head` closed the pipe: not an error worth a line
            # Python's recipe: point stdout at devnull so the exit flush cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=1) from None
        except UsageError as exc:
            message = str(exc)
        except (OSError, ValueError, httpx.HTTPError) as exc:  # port in use, bad rate, emulator not running
            lines = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(code=1)


app = typer.Typer(help="Provider emulators (QuickBooks, Xero, Procore, Uber Eats, DoorDash, Slack, SendGrid, Twilio, Stripe, "
                       "a customer's webhook sink, an OpenAI-compatible chat API) on loopback ports.",
                  cls=_OneLineErrors, no_args_is_help=True, pretty_exceptions_show_locals=False)


def _stop_on_signals() -> None:
    """Ctrl-C and `kill` both stop a long-running command cleanly (KeyboardInterrupt).

    Set explicitly because a process started in the background by a non-interactive shell
    inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt for it.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _names(only: Optional[str]) -> list[str]:
    names = [n.strip() for n in only.split(",")] if only else list(EMULATORS)
    unknown = [n for n in names if n not in EMULATORS]
    if unknown:
        raise UsageError(f"unknown emulator(s) {', '.join(unknown)}; known: {', '.join(EMULATORS)}")
    return names


@app.command("run")
def run(
    only: Optional[str] = typer.Option(None, help="comma-separated names (default: all)"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port_base: Optional[int] = typer.Option(None, help="first port (default: each emulator's own; 0: free ports)"),
) -> None:
    """Run the emulators in the foreground until Ctrl-C; print where each listens."""
    _stop_on_signals()
    with run_all(_names(only), host=host, base_port=port_base) as running:
        for name, (emulator, url) in running.items():
            typer.echo(f"{name:<11} {url}   (OAuth client hub-demo / hub-demo-secret; admin {url}/_emulator/health)", color=False)
        sys.stdout.flush()
        typer.echo("emulators running; Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping emulators", err=True)


@app.command("wait")
def wait(
    only: Optional[str] = typer.Option(None, help="comma-separated names (default: all)"),
    port_base: Optional[int] = typer.Option(None, min=1, help="first port, as given to `run` (default: each emulator's own)"),
    also: List[str] = typer.Option([], help="LABEL=HEALTH_URL of another service to wait for (e.g. the hub web app's /healthz)"),
    timeout: float = typer.Option(30.0, help="seconds to wait for all of them"),
) -> None:
    """Wait until the emulators (and any --also service) answer; print each one's base URL.

    Pass the --only/--port-base that `run` was given (`make demo` waits for all, and the web app).
    """
    checks = []
    for offset, name in enumerate(_names(only)):
        base = EMULATORS[name].url if port_base is None else f"http://127.0.0.1:{port_base + offset}"
        checks.append((name, f"{base}/_emulator/health"))
    for item in also:
        label, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise UsageError(f"--also {item!r}: expected LABEL=http://host:port/health-path")
        checks.append((label, url))
    deadline = time.monotonic() + timeout
    for name, url in checks:
        while True:
            try:
                httpx.get(url, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise UsageError(f"{name} did not answer at {url} within {timeout:g} s") from None
                time.sleep(0.2)
        base = url.rsplit("/", 2)[0] if url.endswith("/_emulator/health") else url.rsplit("/", 1)[0]
        typer.echo(f"{name:<11} {base}")


@app.command("drive-orders")
def drive_orders(
    per_minute: float = typer.Option(6.0, help="orders per minute, spread over the delivery emulators"),
    count: Optional[int] = typer.Option(None, help="stop after this many orders (default: run until Ctrl-C)"),
    targets: Optional[str] = typer.Option(None, help="comma-separated base URLs of running delivery emulators "
                                                     "(default: Uber Eats and DoorDash on their own ports)"),
) -> None:
    """Place orders on the running DoorDash and Uber Eats emulators, as hungry customers would."""
    _stop_on_signals()
    urls = [u.strip() for u in targets.split(",")] if targets else [EMULATORS[name].url for name in DELIVERY]
    driver = OrderDriver(urls, per_minute / 60.0, count=count)
    shown = urls if targets else DELIVERY
    typer.echo(f"placing about {per_minute:g} orders/minute on {', '.join(shown)}; Ctrl-C to stop", err=True)
    driver.start()
    try:
        driver.join()
    except KeyboardInterrupt:
        driver.stop()
    typer.echo(f"{driver.placed} order(s) placed", err=True)


def main() -> None:
    app(prog_name="python -m emulators")
