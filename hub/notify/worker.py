"""The notification worker: the outbound dispatcher with the notification senders, and the
delivery-status tracker beside it, in one process.

Why the tracker runs here and not as a Dagster job: a status report is a small UPDATE, and
people look at "delivered / bounced" right after sending; a sensor-launched run costs
seconds and a run record per batch (bench/README.md). The tracker is a loop in the same
event loop as the dispatcher: every `interval` seconds it applies what the web app stored
(`status.apply_pending`, in a thread, one transaction per batch). A Dagster sensor can
still watch `status.pending_count` for a backlog.

`senders()` is also what ``hub webhooks dispatch`` needs to deliver notification routes:
pass it as ``Dispatcher(..., senders=...)``; a dispatcher without it fails their deliveries
with "no sender for this URL scheme".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from sqlalchemy.engine import Engine

from hub.crypto import Keyring
from hub.notify.sender import NotificationSender
from hub.notify.status import TrackReport, apply_pending
from hub.outbound.senders import Sender
from hub.outbound.ssrf import AddressPolicy
from hub.outbound.webhook_sender import WebhookSender
from hub.providers import registry
from hub.redact import describe_error

__all__ = ["senders", "StatusTracker", "run"]

log = logging.getLogger("hub.notify")


def senders(engine: Engine, keyring: Keyring, *, address_policy: AddressPolicy | None = None,
            public_url: str | None = None, **options: Any) -> dict[str, Sender]:
    """Every sender kind: HTTP webhooks, and one `NotificationSender` for every messaging
    provider (slack, sendgrid, twilio: the registry's capability "messaging")."""
    notify = NotificationSender(engine, keyring, public_url=public_url, **options)
    return {"webhook": WebhookSender(address_policy), **{name: notify for name in registry.with_capability("messaging")}}


class StatusTracker:
    """Applies delivery reports every `interval` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float = 1.0, batch: int = 500):
        self.engine, self.interval, self.batch = engine, interval, batch
        self.applied = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, on_pass: Callable[[TrackReport], None] | None = None) -> None:
        while not self._stop.is_set():
            try:
                report = await asyncio.to_thread(apply_pending, self.engine, self.batch)
                self.applied += report.applied
                if on_pass is not None:
                    on_pass(report)
                if report.applied + report.recorded + report.unmatched >= self.batch:
                    continue  # a full batch: there may be more
            except Exception as exc:  # the database went away: try again next pass
                log.warning("status tracker: %s", describe_error(exc))
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass


async def run(dispatcher: Any, tracker: StatusTracker, **dispatcher_options: Any) -> None:
    """Run both until the dispatcher stops (Ctrl-C, `dispatcher.stop()`), then the tracker.
    `dispatcher_options` go to `Dispatcher.run` (progress reporting)."""
    tracking = asyncio.create_task(tracker.run(), name="status-tracker")
    try:
        await dispatcher.run(**dispatcher_options)
    finally:
        tracker.stop()
        await tracking
