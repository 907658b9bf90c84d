"""The emulators the hub ships, their default ports, and running them all at once
(`python -m emulators run`)."""

from __future__ import annotations

import importlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from emulators.serve import serve


@dataclass(frozen=True)
class EmulatorEntry:
    name: str
    module: str
    default_port: int
    demo_size: dict[str, Any]

    def create(self, **size: Any):
        return importlib.import_module(self.module).create_emulator(**(size or self.demo_size))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.default_port}"


EMULATORS: dict[str, EmulatorEntry] = {
    e.name: e
    for e in (
        EmulatorEntry("quickbooks", "emulators.quickbooks", 8101, {"vendors": 25, "bills": 300, "invoices": 10, "accounts": 23}),
        EmulatorEntry("xero", "emulators.xero", 8102, {"contacts": 25, "invoices": 40, "accounts": 20}),
        EmulatorEntry("procore", "emulators.procore", 8103, {"projects": 3, "rfis_per_project": 12, "submittals_per_project": 8, "daily_logs_per_project": 10}),
        EmulatorEntry("ubereats", "emulators.ubereats", 8104, {}),
        EmulatorEntry("doordash", "emulators.doordash", 8105, {}),
        EmulatorEntry("slack", "emulators.slack", 8106, {}),
        EmulatorEntry("sendgrid", "emulators.sendgrid", 8107, {}),
        EmulatorEntry("twilio", "emulators.twilio", 8108, {}),
        EmulatorEntry("webhook_sink", "emulators.webhook_sink", 8109, {}),  # a customer's endpoint (demo)
        EmulatorEntry("stripe", "emulators.stripe", 8110, {}),  # platform billing (the hub's own Stripe account)
        EmulatorEntry("openai_chat", "emulators.openai_chat", 8111, {}),  # the AI assist's optional external model
    )
}
DELIVERY = ("ubereats", "doordash")
MESSAGING = ("slack", "sendgrid", "twilio")


@contextmanager
def run_all(names: list[str] | None = None, host: str = "127.0.0.1", base_port: int | None = None) -> Iterator[dict[str, tuple[Any, str]]]:
    """Start the named emulators (all by default); yield name -> (emulator, base URL)."""
    running: dict[str, tuple[Any, str]] = {}
    with ExitStack() as stack:
        for offset, name in enumerate(names or list(EMULATORS)):
            entry = EMULATORS[name]
            emulator = entry.create()
            # base_port None: each emulator's own port; 0: any free port; N: N, N+1, ...
            port = entry.default_port if base_port is None else (0 if base_port == 0 else base_port + offset)
            url = stack.enter_context(serve(emulator.app, host=host, port=port))
            if hasattr(emulator, "base_url"):
                emulator.base_url = url  # links in webhooks (Uber's resource_href) point back here
            if hasattr(emulator, "close"):
                stack.callback(emulator.close)  # webhook delivery threads
            running[name] = (emulator, url)
        yield running
