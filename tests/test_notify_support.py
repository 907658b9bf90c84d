"""Shared helpers of the notification tests (no tests here): the Slack, SendGrid and Twilio
emulators and the hub web app served on loopback, one company with an integration for each
(pointed at its emulator), the dispatcher running with the notification senders, and
small database helpers."""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import sqlalchemy as sa

from emulators import sendgrid as sg_emulator
from emulators import slack as slack_emulator
from emulators import twilio as tw_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.notify import callbacks, worker
from hub.notify.routes import Route, add_route
from hub.outbound.dispatcher import Dispatcher
from hub.schema import notification_message
from hub.web.app import create_app
from tests.test_outbound_support import LOOPBACK, attempts, dsn, running, wait_until  # noqa: F401 (re-exported)

FROM_EMAIL, FROM_NUMBER = "noreply@acme-builders.example", "+15005550006"
SG_TEMPLATE = "d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"  # "Invoice status changed" in the emulator


@dataclass
class World:
    engine: Any
    keyring: Keyring
    company_id: int
    hub: str  # the hub web app's base URL (its public URL here)
    slack: Any
    slack_url: str
    sendgrid: Any
    sendgrid_url: str
    twilio: Any
    twilio_url: str
    slack_id: int
    sendgrid_id: int
    twilio_id: int

    def route(self, kind: str, events=("order.status_changed",), **kwargs: Any) -> Route:
        route, _warnings = add_route(self.engine, self.keyring, company_id=self.company_id, kind=kind, events=list(events), **kwargs)
        return route

    def sendgrid_events_to_hub(self) -> str:
        """Point the SendGrid emulator's signed event webhook at the hub (an operator does
        this once in SendGrid's settings; `hub notify check` prints the URL)."""
        with self.engine.connect() as conn:
            url = callbacks.status_url(self.hub, "sendgrid", callbacks.inbound_endpoint_id(conn, self.sendgrid_id))
        assert url, "the SendGrid integration has no inbound endpoint"
        self.sendgrid.set_event_webhook(url)
        return url


@contextmanager
def world(engine, *, slack: dict | None = None, sendgrid: dict | None = None, twilio: dict | None = None,
          from_email: str = FROM_EMAIL, from_number: str = FROM_NUMBER, company: str = "Acme") -> Iterator[World]:
    """Emulators, the hub web app and one company (default 'Acme') with the three integrations."""
    keyring = Keyring.from_env()
    slack_emu = slack_emulator.create_emulator(**(slack or {}))
    sg_emu = sg_emulator.create_emulator(**{"batch_window_s": 0.02, "deliver_delay_s": 0.05, "retry_schedule_s": (0.1, 0.2),
                                            **(sendgrid or {})})
    tw_emu = tw_emulator.create_emulator(**{"mps": 100, "send_delay_s": 0.02, "deliver_delay_s": 0.05, **(twilio or {})})
    with ExitStack() as stack:
        slack_url, sg_url, tw_url = (stack.enter_context(serve(e.app)) for e in (slack_emu, sg_emu, tw_emu))
        for emu in (sg_emu, tw_emu):
            stack.callback(emu.close)
        hub = stack.enter_context(serve(create_app(engine)))
        for emu in (sg_emu, tw_emu):  # callbacks in flight reach the hub before it stops
            stack.callback(emu.wait_idle, 1.0)
        with engine.begin() as conn:
            company_id = store.create_company(conn, company)
            slack_id = store.add_integration(conn, keyring, company_id=company_id, provider="slack",
                                             config={"base_url": slack_url, "default_channel": "#ops"},
                                             credentials={"bot_token": slack_emulator.DEFAULT_BOT_TOKEN, "signing_secret": "s"}, active=True)
            sendgrid_id = store.add_integration(conn, keyring, company_id=company_id, provider="sendgrid",
                                                config={"base_url": sg_url, "from_email": from_email},
                                                credentials={"api_key": sg_emulator.DEFAULT_API_KEY,
                                                             "webhook_public_key": sg_emu.public_key}, active=True)
            twilio_id = store.add_integration(conn, keyring, company_id=company_id, provider="twilio",
                                              config={"base_url": tw_url, "from_number": from_number},
                                              credentials={"account_sid": tw_emulator.DEFAULT_ACCOUNT_SID,
                                                           "auth_token": tw_emulator.DEFAULT_AUTH_TOKEN}, active=True)
        yield World(engine, keyring, company_id, hub, slack_emu, slack_url, sg_emu, sg_url, tw_emu, tw_url, slack_id,
                    sendgrid_id, twilio_id)


@contextmanager
def notifying(w: World, **sender_options: Any) -> Iterator[Any]:
    """The dispatcher with the notification senders, in a background thread."""
    senders = worker.senders(w.engine, w.keyring, address_policy=LOOPBACK, public_url=w.hub, **sender_options)
    with running(w.engine, senders=senders) as dispatcher:
        yield dispatcher


@contextmanager
def notify_worker(w: World, tracker_interval: float = 0.2) -> Iterator[Any]:
    """What `hub notify dispatch` runs: the dispatcher and the status tracker in one event
    loop (here in a background thread), stopped at the end."""
    dispatcher = Dispatcher(dsn(w.engine), w.keyring, senders=worker.senders(w.engine, w.keyring, address_policy=LOOPBACK,
                                                                             public_url=w.hub),
                            address_policy=LOOPBACK, poll_interval=0.1, shutdown_grace=3.0)
    tracker = worker.StatusTracker(w.engine, interval=tracker_interval)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(dispatcher, tracker)), daemon=True, name="notify-worker")
    thread.start()
    assert dispatcher.ready.wait(15), "worker did not start"
    try:
        yield tracker
    finally:
        dispatcher.stop()
        thread.join(20)
        assert not thread.is_alive(), "worker did not stop"


def messages(engine, endpoint_id: int | None = None) -> list[sa.Row]:
    query = sa.select(notification_message).order_by(notification_message.c.id)
    if endpoint_id is not None:
        query = query.where(notification_message.c.endpoint_id == endpoint_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def by_recipient(engine, endpoint_id: int) -> dict[str, sa.Row]:
    return {m.recipient: m for m in messages(engine, endpoint_id)}
